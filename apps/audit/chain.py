"""The hash chain: pure functions over plain dicts (no database), so the rule is in one
place and easy to check by hand.

    hash = SHA-256( prev_hash + canonical JSON of the event's fields )
"""

import hashlib
import json

GENESIS = "0" * 64

HASHED_FIELDS = (
    "id",
    "timestamp",
    "organization",
    "actor_type",
    "actor_id",
    "actor_label",
    "action",
    "object_type",
    "object_id",
    "object_label",
    "changes",
    "ip",
    "user_agent",
    "request_id",
)


def canonical(event: dict) -> str:
    body = {field: event.get(field) for field in HASHED_FIELDS}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def event_hash(prev_hash: str, event: dict) -> str:
    return hashlib.sha256((prev_hash + canonical(event)).encode()).hexdigest()


def first_break(events, start_hash: str = GENESIS):
    """Walk events in chain order; return (event, reason) for the first one that does not
    verify, or None when the whole chain holds."""
    expected_prev = start_hash
    for event in events:
        if event["prev_hash"] != expected_prev:
            return event, "its predecessor is missing or was changed"
        if event_hash(event["prev_hash"], event) != event["hash"]:
            return event, "its content was changed"
        expected_prev = event["hash"]
    return None
