"""The scheduler and its Redis lock: of two schedulers, the one holding the lock enqueues the
periodic jobs and the other stays idle, until the holder's lock expires and it takes over.
Real Redis, real queues; both schedulers run here, one tick at a time, so the order of
events is the test's, never the clock's."""

import os
import signal
import threading
from collections import Counter
from pathlib import Path

from django_redis import get_redis_connection

from tests.base import queued_messages
from tests.deploying import wait_for
from tests.live import worker_process
from windflow import scheduler
from windflow.workers import last_heartbeat


def process_tree(pid: int) -> set[int]:
    """`pid` and its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        found.add(current)
        todo += children.get(current, [])
    return found


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


def test_it_lets_its_lock_go_when_told_to_stop_and_only_its_own(acme):
    redis = get_redis_connection("default")
    stopping = threading.Event()
    stopping.set()  # stop after the first tick
    scheduler.run(redis, "scheduler-a", tick=0, stopping=stopping)
    assert not redis.exists(scheduler.LOCK_KEY)  # a successor need not wait for it to expire

    redis.set(scheduler.LOCK_KEY, "scheduler-b", ex=30)
    scheduler.run(redis, "scheduler-a", tick=0, stopping=stopping)
    assert redis.get(scheduler.LOCK_KEY) == b"scheduler-b"  # not a's to let go
    redis.delete(scheduler.LOCK_KEY)


def test_it_runs_the_scheduler_on_a_thread_of_the_worker_process(live_db):
    """As the Procfile runs it: no scheduler process, the worker holds the lock and runs the
    jobs; a worker that shuts down lets the lock go for the next one."""
    redis = get_redis_connection("default")
    redis.delete(scheduler.LOCK_KEY)
    with worker_process(scheduler=True) as worker:
        assert wait_for(lambda: redis.exists(scheduler.LOCK_KEY), timeout=60), "no lock taken"
        _host, pid, where = redis.get(scheduler.LOCK_KEY).decode().rsplit(":", 2)
        assert where == "worker"
        assert int(pid) in process_tree(worker.pid)
        # A graceful stop, as `make run` or systemd give it: SIGTERM to the process group.
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
        assert redis.get(scheduler.LOCK_KEY) is None


def test_it_runs_no_scheduler_in_a_worker_told_it_runs_separately(live_db):
    redis = get_redis_connection("default")
    redis.delete(scheduler.LOCK_KEY)
    with worker_process(scheduler=False):
        assert wait_for(last_heartbeat, timeout=60)  # the worker is up and beating
        assert redis.get(scheduler.LOCK_KEY) is None
