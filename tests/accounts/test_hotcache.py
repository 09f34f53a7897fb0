"""The request cache in Redis: a reader that loaded a row before a change cannot put it back
after the change's forget, whichever process either runs in."""

from windflow import hotcache


def test_it_caches_what_it_loaded(db):
    loads = []

    def load():
        loads.append(1)
        return {"role": "viewer"}

    assert hotcache.remember("test:a", load) == {"role": "viewer"}
    assert hotcache.remember("test:a", load) == {"role": "viewer"}
    assert len(loads) == 1


def test_it_never_caches_a_miss(db):
    assert hotcache.remember("test:none", lambda: None) is None
    assert hotcache.remember("test:none", lambda: "now there") == "now there"


def test_it_loads_again_after_a_forget(db):
    hotcache.remember("test:b", lambda: "old")
    hotcache.forget("test:b")
    assert hotcache.remember("test:b", lambda: "new") == "new"
    assert hotcache.remember("test:b", lambda: "newer") == "new"


def test_it_does_not_store_a_row_loaded_before_a_concurrent_forget(db):
    """A request loads the old row; meanwhile another process commits a change and forgets
    the key. The request answers with what it read, but must not cache it."""

    def load_old_then_someone_forgets():
        hotcache.forget("test:c")  # the writer, between this reader's load and its store
        return "stale"

    assert hotcache.remember("test:c", load_old_then_someone_forgets) == "stale"
    assert hotcache.remember("test:c", lambda: "fresh") == "fresh"


def test_it_does_not_store_over_a_forget_that_follows_an_earlier_forget(db):
    hotcache.remember("test:d", lambda: "v1")
    hotcache.forget("test:d")  # the writer's forget before its commit

    def load_then_commit_forget():
        hotcache.forget("test:d")  # the same writer's forget after its commit
        return "read before the commit"

    hotcache.remember("test:d", load_then_commit_forget)
    assert hotcache.remember("test:d", lambda: "after the commit") == "after the commit"


def test_it_keeps_lockout_counters_in_one_namespace_for_every_host(acme):
    from django.core.cache import cache
    from django.db import connection

    cache.set("allauth:rl:allauth.account:login_failed:probe", [1.0], 60)
    cache.set("handoff:probe", 1, 60)
    connection.set_tenant(acme)
    try:
        assert cache.get("allauth:rl:allauth.account:login_failed:probe") == [1.0]
        assert cache.get("handoff:probe") is None  # everything else stays per organisation
    finally:
        connection.set_schema_to_public()


def test_it_forgets_a_host_whose_domain_is_deleted_anywhere(owner, acme):
    from apps.tenants.models import Domain
    from tests.base import client_for

    browser = client_for(owner, acme)
    assert browser.get("/").status_code == 200  # acme's host is now cached
    Domain.objects.filter(tenant=acme).delete()  # as the admin's delete does
    assert browser.get("/").status_code == 404


def redis_commands() -> int:
    """Commands the test run's Redis has processed so far (every database, every client)."""
    from django_redis import get_redis_connection

    return int(get_redis_connection("default").info("stats")["total_commands_processed"])


def test_it_answers_a_warm_token_request_with_three_redis_round_trips(owner, acme):
    """The host, then the token with its holder's membership (one cache entry), and the
    throttle's one pipeline: the membership the token was checked against is the request's
    (no second lookup), and the token's last use is asked about once a minute per process,
    not per request."""
    from tests.base import api_client

    client = api_client(owner, acme, scope="read")
    assert client.get("/api/v1/environments/").status_code == 200  # warms the cache
    assert client.get("/api/v1/environments/").status_code == 200
    before = redis_commands()
    assert client.get("/api/v1/environments/").status_code == 200
    # Redis counts each command of a pipeline (MULTI, INCR, EXPIRE, EXEC: one round trip),
    # and the INFO that reads the count.
    host, token_and_membership, throttle_pipeline, info = 1, 1, 4, 1
    assert redis_commands() - before == host + token_and_membership + throttle_pipeline + info
