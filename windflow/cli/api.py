"""The public REST API (/api/v1/) over urllib: bearer token, JSON in and out, the API's
error shape turned into a CliError with its exit code, NDJSON streams read line by line."""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlencode, urlsplit, urlunsplit

from .config import Credentials
from .errors import FAILED, REFUSED, CliError

TIMEOUT_SECONDS = 60
# Refused: validation (400), authentication (401), permission (403), missing (404),
# conflict (409), too large (413).
REFUSED_STATUSES = {400, 401, 403, 404, 405, 409, 413, 415}


class Api:
    def __init__(self, credentials: Credentials):
        self.url = credentials.url
        self.token = credentials.token

    # --- requests ------------------------------------------------------------------------------

    def get(self, path: str, **query) -> dict:
        return self._json("GET", path, query=query)

    def post(self, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body or {}).encode()
        return self._json("POST", path, data=data, content_type="application/json")

    def upload(self, path: str, fields: dict[str, str], files: dict[str, tuple[str, bytes]]):
        """A multipart/form-data POST: `files` maps a field to (file name, content)."""
        boundary = f"windflow-{secrets.token_hex(16)}"
        data = multipart(boundary, fields, files)
        return self._json(
            "POST", path, data=data, content_type=f"multipart/form-data; boundary={boundary}"
        )

    def stream(self, path: str, **query) -> Iterator[dict]:
        """The rows of an NDJSON answer, as they come."""
        response = self._open("GET", path, query=query, timeout=None)
        with response:
            try:
                for line in response:
                    line = line.strip()
                    if line:
                        yield json.loads(line)
            except OSError as exc:
                raise CliError(f"The stream from {self.url} broke: {exc}", FAILED) from None

    def pages(self, path: str, **query) -> list[dict]:
        """Every item of a paginated list."""
        items, page = [], 1
        while True:
            answer = self.get(path, page=page, page_size=200, **query)
            items.extend(answer.get("results", []))
            if not answer.get("next"):
                return items
            page += 1

    # --- plumbing ------------------------------------------------------------------------------

    def _json(self, method, path, *, query=None, data=None, content_type=None):
        with self._open(method, path, query=query, data=data, content_type=content_type) as r:
            try:
                body = r.read()
            except OSError as exc:
                raise CliError(f"{self.url} stopped answering: {exc}", FAILED) from None
        return json.loads(body) if body else {}

    def _open(self, method, path, *, query=None, data=None, content_type=None, timeout=0):
        url = f"{self.url}/api/v1/{path.lstrip('/')}"
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        url, host = _loopback(url)
        if host:
            headers["Host"] = host
        request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
        try:
            return urllib.request.urlopen(  # noqa: S310 (the user's server, http or https)
                request, timeout=TIMEOUT_SECONDS if timeout == 0 else timeout
            )
        except urllib.error.HTTPError as exc:
            raise api_error(exc) from None
        except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CliError(f"Cannot reach {self.url}: {reason}", FAILED) from None


def _loopback(url: str) -> tuple[str, str | None]:
    """Names under .localhost are loopback (RFC 6761) even where the resolver does not say
    so: connect to 127.0.0.1 and name the host in the Host header."""
    parts = urlsplit(url)
    name = parts.hostname or ""
    if not name.endswith(".localhost"):
        return url, None
    host = parts.netloc.rsplit("@", 1)[-1]
    netloc = "127.0.0.1" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc)), host


def api_error(exc: urllib.error.HTTPError) -> CliError:
    """The API's {"error": {"code", "message", "fields"?, "problems"?}} as one line."""
    try:
        error = json.loads(exc.read() or b"{}").get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    message = error.get("message") or exc.reason or f"HTTP {exc.code}"
    details = [
        f"{name}: {' '.join(map(str, errors)) if isinstance(errors, list) else errors}"
        for name, errors in (error.get("fields") or {}).items()
    ]
    for problem in error.get("problems") or []:
        details.append(problem_line(problem))
    code = error.get("code") or exc.code
    line = f"{message} ({code})" + (": " + "; ".join(details) if details else "")
    return CliError(line, REFUSED if exc.code in REFUSED_STATUSES else FAILED)


def problem_line(problem: dict) -> str:
    """file:line: severity rule message."""
    where = problem.get("file") or ""
    if problem.get("line"):
        where += f":{problem['line']}"
    rule = f" [{problem['rule']}]" if problem.get("rule") else ""
    prefix = f"{where}: " if where else ""
    return f"{prefix}{problem.get('severity', 'error')}{rule} {problem.get('message', '')}"


def multipart(boundary: str, fields: dict[str, str], files: dict[str, tuple[str, bytes]]):
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + str(value).encode()
            + b"\r\n"
        )
    for name, (filename, content) in files.items():
        parts.append(
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
            ).encode()
            + content
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts)
