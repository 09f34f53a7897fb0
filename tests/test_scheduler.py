"""The scheduler and its Redis lock: of two schedulers, the one holding the lock enqueues the
periodic jobs and the other stays idle, until the holder's lock expires and it takes over.
Real Redis, real queues; both schedulers run here, one tick at a time, so the order of
events is the test's, never the clock's."""

from collections import Counter

from django_redis import get_redis_connection

from tests.base import queued_messages
from tests.deploying import wait_for
from windflow import scheduler


def enqueued() -> Counter:
    return Counter(actor for actor, _args, _schema in queued_messages())


def test_it_lets_only_the_scheduler_holding_the_lock_enqueue(acme, globex):
    redis = get_redis_connection("default")
    assert enqueued() == Counter()

    scheduler.run(redis, "scheduler-a", tick=0, max_ticks=1)
    first = enqueued()
    # One job per organisation where jobs run per organisation, one for the platform.
    organisations = first["sweep_targets"]
    assert organisations >= 2  # acme and globex at least
    assert first["requeue_forgotten_deployments"] == organisations
    assert first["purge_expired_invitations"] == 1
    assert redis.get(scheduler.LOCK_KEY) == b"scheduler-a"

    scheduler.run(redis, "scheduler-b", tick=0, max_ticks=3)
    assert enqueued() == first  # b found the lock taken: nothing more
    assert redis.get(scheduler.LOCK_KEY) == b"scheduler-a"

    scheduler.run(redis, "scheduler-a", tick=0, max_ticks=1)  # the holder extends its lock
    assert redis.get(scheduler.LOCK_KEY) == b"scheduler-a"
    assert redis.ttl(scheduler.LOCK_KEY) > 0


def test_it_hands_the_lock_over_when_the_holder_stops(acme, globex):
    redis = get_redis_connection("default")
    scheduler.run(redis, "scheduler-a", tick=0, lock_ttl=1, max_ticks=1)
    first = enqueued()
    assert first and redis.get(scheduler.LOCK_KEY) == b"scheduler-a"
    # a stops (killed: nothing releases the lock); its lock expires on its own.
    assert wait_for(lambda: not redis.exists(scheduler.LOCK_KEY), timeout=30)

    scheduler.run(redis, "scheduler-b", tick=0, max_ticks=1)
    assert redis.get(scheduler.LOCK_KEY) == b"scheduler-b"
    assert enqueued() == first + first  # b enqueued the same jobs in its turn
    scheduler.run(redis, "scheduler-a", tick=0, max_ticks=1)  # a is back: b holds it now
    assert enqueued() == first + first
