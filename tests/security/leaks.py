"""Where a secret value could have landed, scanned: every text / varchar / char / json /
jsonb column of every table in every schema of the database, every key and value of every
logical Redis database, and every text a test saw (pages, API answers, websocket messages,
e-mails, log records). Each scan returns the places found, as readable strings; a test
expects an empty list.

The value is looked for in every form `windflow.redaction.variants` knows (itself, its
lines, JSON and URL escaping, base64 standard and URL-safe, alone or inside longer base64)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from django.db import connection

from windflow.redaction import variants

TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb")


def forms_of(value: str) -> list[str]:
    """The value and its encodings, longest first."""
    return sorted(variants(value), key=len, reverse=True)


def found_in(text: str, value: str) -> list[str]:
    return [form for form in forms_of(value) if form in text]


def scan_database(value: str) -> list[str]:
    """'schema.table.column (n rows)' for every column holding the value in any form."""
    forms = forms_of(value)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns"
            " JOIN information_schema.tables USING (table_catalog, table_schema, table_name)"
            " WHERE data_type = ANY(%s) AND table_type = 'BASE TABLE'"
            " AND table_schema NOT IN ('pg_catalog', 'information_schema')"
            " ORDER BY table_schema, table_name, column_name",
            [list(TEXT_TYPES)],
        )
        tables: dict[tuple[str, str], list[str]] = {}
        for schema, table, column in cursor.fetchall():
            tables.setdefault((schema, table), []).append(column)
        places = []
        for (schema, table), columns in tables.items():
            # Names come from the catalogue, values are bound.
            counts = ", ".join(
                "count(*) FILTER (WHERE EXISTS (SELECT 1 FROM unnest(%s::text[]) AS form"  # noqa: S608
                f' WHERE strpos("{column}"::text, form) > 0))'
                for column in columns
            )
            cursor.execute(
                f'SELECT {counts} FROM "{schema}"."{table}"',  # noqa: S608 (catalogue names)
                [forms] * len(columns),
            )
            for column, count in zip(columns, cursor.fetchone(), strict=True):
                if count:
                    places.append(f"db {schema}.{table}.{column} ({count} rows)")
    return places


def _redis_values(client, key) -> list[bytes]:
    kind = client.type(key).decode()
    if kind == "string":
        return [client.get(key) or b""]
    if kind == "hash":
        return [b for pair in client.hgetall(key).items() for b in pair]
    if kind == "list":
        return client.lrange(key, 0, -1)
    if kind == "set":
        return list(client.smembers(key))
    if kind == "zset":
        return client.zrange(key, 0, -1)
    if kind == "stream":
        return [b for _id, entry in client.xrange(key) for pair in entry.items() for b in pair]
    return []


def scan_redis(value: str) -> list[str]:
    """'redis db<n> <key>' for every key whose name or value holds the value in any form."""
    import redis

    forms = [form.encode() for form in forms_of(value)]
    base = redis.Redis.from_url(os.environ["REDIS_URL"])
    try:
        databases = int(base.config_get("databases")["databases"])
    finally:
        base.close()
    places = []
    for db in range(databases):
        client = redis.Redis.from_url(os.environ["REDIS_URL"], db=db)
        try:
            for key in client.scan_iter(count=500):
                blobs = [key, *_redis_values(client, key)]
                if any(form in blob for blob in blobs for form in forms):
                    places.append(f"redis db{db} {key.decode(errors='replace')}")
        finally:
            client.close()
    return places


@dataclass
class Transcript:
    """Every text a test fetched, under a label (its URL, socket path...), to scan later."""

    texts: list[tuple[str, str]] = field(default_factory=list)

    def add(self, label: str, text: str) -> str:
        self.texts.append((label, text))
        return text

    def add_response(self, label: str, response) -> object:
        if getattr(response, "streaming", False):
            body = b"".join(response.streaming_content)
        else:
            body = response.content
        response.body = body  # a streamed body stays readable by the test
        headers = "\n".join(f"{k}: {v}" for k, v in response.items())
        self.add(
            f"{label} [{response.status_code}]", headers + "\n" + body.decode(errors="replace")
        )
        return response

    def scan(self, value: str) -> list[str]:
        places = []
        for label, text in self.texts:
            if found := found_in(text, value):
                places.append(f"{label}: {len(found)} form(s), e.g. {_context(text, found[0])}")
        return places


def _context(text: str, form: str, width: int = 60) -> str:
    at = text.find(form)
    return repr(text[max(0, at - width) : at + len(form) + width])
