"""Short-lived cache for the lookups every request makes (host -> organisation, token,
membership). Positive results only, so that anything new is seen at once; the services that
change or remove such a row call `forget()`, and the TTL bounds anything they cannot see."""

from collections.abc import Callable
from typing import TypeVar

from django.core.cache import caches

T = TypeVar("T")
TTL_SECONDS = 30


def _cache():
    return caches["shared"]


def remember(key: str, load: Callable[[], T | None], ttl: int = TTL_SECONDS) -> T | None:
    value = _cache().get(key)
    if value is None:
        value = load()
        if value is not None:
            _cache().set(key, value, ttl)
    return value


def store(key: str, value, ttl: int = TTL_SECONDS) -> None:
    _cache().set(key, value, ttl)


def forget(*keys: str) -> None:
    if keys:
        _cache().delete_many(list(keys))


def host_key(hostname: str) -> str:
    return f"host:{hostname}"


def token_key(token_hash: str) -> str:
    return f"token:{token_hash}"


def membership_key(user_id, organization_id) -> str:
    return f"member:{user_id}:{organization_id}"


def forget_on_commit(*keys: str) -> None:
    """Forget now, and again once the transaction commits (a request in between may have
    cached the old row)."""
    from django.db import transaction

    forget(*keys)
    transaction.on_commit(lambda: forget(*keys))
