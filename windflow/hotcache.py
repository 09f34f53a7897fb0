"""Short-lived cache for the lookups every request makes (host -> organisation, token,
membership, token family), kept in Redis and shared by every process.

Positive results only, so that anything new is seen at once. Whatever changes or removes such
a row (services, and the model signals of apps.accounts.signals for every other write path:
the Django admin, a queryset delete, a cascade) calls `forget_on_commit()`.

Correct with many processes: `forget()` does not merely delete a key, it leaves a tombstone
(a unique marker). A reader that missed stores what it loaded only if the key still holds
what the reader saw before going to the database (nothing, or that same tombstone): a forget
that happened in between, e.g. the one after a commit, wins, so a row read before a change
committed is never put back in the cache. The TTL bounds anything no code path can see (raw
SQL, `QuerySet.update()` outside the services).

Redis away: every lookup goes to the database (the request is served, a little slower), and
a forget that cannot be written is logged; what Redis held before it went away expires
within the TTL, as anything unseen does.
"""

from __future__ import annotations

import logging
import pickle
import secrets
from collections.abc import Callable
from typing import TypeVar

from django.core.cache import caches
from django.core.signals import setting_changed

logger = logging.getLogger(__name__)

T = TypeVar("T")
TTL_SECONDS = 30
ALIAS = "shared"
TOMBSTONE = b"\x00wf-forgotten:"

# KEYS[1]: the key. ARGV: what the reader saw ("" for nothing), the value, the TTL.
_STORE_IF_UNCHANGED = """
local current = redis.call('GET', KEYS[1])
if (ARGV[1] == '' and not current) or (current and current == ARGV[1]) then
    redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
    return 1
end
return 0
"""
_script = None


# One cache object per alias for the whole process. `caches[alias]` is one per request context
# under ASGI (each request runs in a thread of its own), so every request would build a new
# cache backend and a new Redis client (which copies redis-py's table of reply parsers):
# about 0.3 ms, twice per API request. These are thread-safe and share one connection pool.
_process_caches: dict = {}


def _forget_process_caches(setting, **kwargs) -> None:
    if setting == "CACHES":  # tests that point a cache elsewhere (override_settings)
        _process_caches.clear()
        global _script
        _script = None


setting_changed.connect(_forget_process_caches, dispatch_uid="windflow.hotcache.caches")


def process_cache(alias: str = ALIAS):
    """The process-wide cache backend of `alias`."""
    cache = _process_caches.get(alias)
    if cache is None:
        cache = _process_caches[alias] = caches.create_connection(alias)
    return cache


def redis_client(alias: str = ALIAS):
    """The process-wide Redis client of cache `alias` (what django_redis'
    get_redis_connection returns, built once)."""
    return process_cache(alias).client.get_client(write=True)


def _cache():
    return process_cache(ALIAS)


def _redis():
    return redis_client(ALIAS)


def _raw_key(key: str) -> str:
    return _cache().make_key(key)


def _store_if_unchanged(raw_key: str, seen: bytes | None, value: bytes, ttl: int) -> bool:
    global _script
    redis = _redis()
    if _script is None:
        _script = redis.register_script(_STORE_IF_UNCHANGED)
    return bool(_script(keys=[raw_key], args=[seen or b"", value, ttl], client=redis))


def _redis_down(exc: Exception, doing: str) -> bool:
    from windflow.resilience import REDIS, dependency_of

    if dependency_of(exc) != REDIS:
        return False
    logger.warning("hot cache: %s without Redis (%s)", doing, type(exc).__name__)
    return True


def remember(key: str, load: Callable[[], T | None], ttl: int = TTL_SECONDS) -> T | None:
    """The cached value of `key`, else what `load()` returns (cached when not None). With
    Redis away, `load()` answers."""
    raw_key = _raw_key(key)
    try:
        seen = _redis().get(raw_key)
    except Exception as exc:
        if not _redis_down(exc, "reading"):
            raise
        return load()
    if seen is not None and not seen.startswith(TOMBSTONE):
        return pickle.loads(seen)  # noqa: S301 - our own values, in our own Redis
    value = load()
    if value is not None:
        try:
            _store_if_unchanged(raw_key, seen, pickle.dumps(value), ttl)
        except Exception as exc:
            if not _redis_down(exc, "storing"):
                raise
    return value


def mark_once(key: str, ttl: int) -> bool:
    """Set a short-lived marker; True only for the caller that set it (False while Redis is
    away: the marked work is skipped, never repeated on every request)."""
    try:
        return bool(_cache().add(key, 1, ttl))
    except Exception as exc:
        if not _redis_down(exc, "marking"):
            raise
        return False


def forget(*keys: str) -> None:
    """Every reader after this loads from the database; a reader already on its way there
    cannot store what it finds (its view may predate the change)."""
    if not keys:
        return
    try:
        pipeline = _redis().pipeline(transaction=False)
        for key in keys:
            pipeline.set(_raw_key(key), TOMBSTONE + secrets.token_bytes(12), ex=TTL_SECONDS)
        pipeline.execute()
    except Exception as exc:  # what Redis holds expires within TTL_SECONDS
        if not _redis_down(exc, "forgetting"):
            raise


def forget_on_commit(*keys: str) -> None:
    """Forget now, and again once the transaction commits (a request in between may have
    loaded the old row; the second tombstone keeps it from being stored)."""
    from django.db import transaction

    if not keys:
        return
    forget(*keys)
    transaction.on_commit(lambda: forget(*keys))


def host_key(hostname: str) -> str:
    return f"host:{hostname}"


def token_key(token_hash: str) -> str:
    return f"token:{token_hash}"


def membership_key(user_id, organization_id) -> str:
    return f"member:{user_id}:{organization_id}"


def family_key(family_id) -> str:
    return f"jwtfamily:{family_id}"


def tenant_cache_key(key: str, key_prefix: str, version) -> str:
    """The default cache's key function: django_tenants' (one namespace per schema), except
    for django-allauth's rate limits. The sign-in lockout counts failures per person and per
    address, whichever host (public or organisation) and route (sign-in form or JWT endpoint)
    they were tried on, so those counters live in one namespace."""
    from django.conf import settings
    from django_tenants.cache import make_key

    if key.startswith("allauth:rl:"):
        return f"{settings.PUBLIC_SCHEMA_NAME}:{key_prefix}:{version}:{key}"
    return make_key(key, key_prefix, version)
