"""The operators' health page (admin, public host, staff only): worker heartbeats, queue depth
per queue, failed and retried jobs, the scheduler's lock holder and its jobs' last runs, a
link to /healthz. Real Redis queues and job rows; Redis away is a dead port."""

import dramatiq
from django_dramatiq.models import Task
from django_redis import get_redis_connection
from dramatiq import Message
from dramatiq.broker import MessageProxy

from apps.accounts.models import User
from apps.targets.tasks import sweep_targets
from tests.base import PASSWORD, client_for, support_client
from tests.faults.test_degraded import redis_away
from windflow import scheduler
from windflow.workers import JobTrackingMiddleware, write_heartbeat

HEALTH = "/admin/health/"


def staff_user():
    return User.objects.create_user("ops@windflow.test", PASSWORD, is_staff=True)


def failing_job(*, retries: int = 0) -> Message:
    """A job the worker ran and that failed (its Task row says so), optionally sent again by
    Dramatiq's Retries."""
    broker, tracking = dramatiq.get_broker(), JobTrackingMiddleware()
    message = sweep_targets.message()
    tracking.after_enqueue(broker, message, None)
    proxy = MessageProxy(message)
    tracking.before_process_message(broker, proxy)
    tracking.after_process_message(broker, proxy, exception=TimeoutError("slow"))
    if retries:
        again = message.copy(options={**message.options, "retries": retries})
        tracking.after_enqueue(broker, again, 15_000)
    return message


def test_it_records_a_job_sent_again_by_retries_as_waiting_with_its_count(db):
    message = failing_job(retries=1)

    task = Task.tasks.get(pk=message.message_id)
    assert task.status == "delayed"
    assert task.message.options["retries"] == 1


def test_it_shows_the_platform_health_to_staff(db, acme):
    write_heartbeat("worker-host:4242", ttl=30)
    redis = get_redis_connection("default")
    redis.set(scheduler.LOCK_KEY, "worker-host:4242:worker", ex=15)
    jobs = [
        scheduler.PeriodicJob("reap_stale_deployments", 5, scheduler.reap_in_every_organization),
        scheduler.PeriodicJob(
            "sweep_targets", 300, lambda: scheduler.enqueue_in_every_organization(sweep_targets)
        ),
    ]
    scheduler.run_due(jobs, redis=redis)
    failing_job()
    failing_job(retries=2)

    response = client_for(staff_user()).get(HEALTH)

    assert response.status_code == 200
    page = response.content.decode()
    workers = page.split('data-testid="health-workers"')[1].split("data-testid=")[0]
    assert "worker-host:4242" in workers and " ago<" in workers
    queues = page.split('data-testid="health-queues"')[1].split("data-testid=")[0]
    # The sweep of each organisation (acme, globex) waits in its queue.
    assert "<td>default</td><td>2</td><td>0</td><td>0</td>" in queues
    jobs_part = page.split('data-testid="health-jobs"')[1].split("data-testid=")[0]
    assert "1 failed job</a>" in jobs_part and "1 retried." in jobs_part, jobs_part
    assert "TimeoutError" in jobs_part
    assert "The lock is held by worker-host:4242:worker" in page
    assert '<tr data-job="reap_stale_deployments"><td>reap_stale_deployments</td>' in page
    assert '<tr data-job="sweep_targets">' in page and "Failed (" not in page
    assert 'href="/healthz"' in page


def test_it_says_when_a_scheduled_job_failed(db):
    def broken():
        raise ConnectionRefusedError("no")

    scheduler.run_due([scheduler.PeriodicJob("sweep_targets", 300, broken)], redis=None)
    scheduler.run_due(
        [scheduler.PeriodicJob("sweep_targets", 300, broken)], redis=get_redis_connection()
    )

    page = client_for(staff_user()).get(HEALTH).content.decode()

    assert "Failed (ConnectionRefusedError)" in page
    assert "No scheduler holds the lock" in page
    assert "No worker has sent a heartbeat recently" in page


def test_it_links_the_health_page_from_the_admin_index(db):
    page = client_for(staff_user()).get("/admin/").content.decode()

    assert f'<a href="{HEALTH}">Platform health</a>' in page


def test_it_refuses_the_health_page_to_anyone_but_staff(db, owner, acme):
    write_heartbeat("worker-host:4242", ttl=30)
    for client in (client_for(owner), client_for(None)):
        response = client.get(HEALTH)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
    # Not on an organisation's host either (its admin, reached through a support access).
    assert support_client(staff_user(), acme).get(HEALTH).status_code == 404


def test_it_says_redis_is_unavailable_rather_than_failing(db):
    staff = staff_user()
    with redis_away():
        response = client_for(staff).get(HEALTH)

    assert response.status_code == 200
    page = response.content.decode()
    workers = page.split('data-testid="health-workers"')[1].split("data-testid=")[0]
    assert "Redis is unavailable: this part cannot be read now." in workers
    assert "The lock is held" not in page


def test_it_reads_in_french_for_a_french_operator(db):
    write_heartbeat("worker-host:4242", ttl=30)
    staff = staff_user()
    staff.language = "fr"
    staff.save(update_fields=["language"])

    page = client_for(staff).get(HEALTH).content.decode()

    assert "Santé de la plateforme" in page and "Files d\u2019attente" in page
    assert "Dernier signal de vie" in page and "il y a " in page
    assert "Last heartbeat" not in page and "No scheduler holds the lock" not in page
