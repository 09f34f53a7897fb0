"""The admin's task list (issue 11: it showed nothing although deployments ran): every job
given to the workers is recorded when queued, started and ended (windflow.workers.
JobTrackingMiddleware), with its organisation, and nothing that could be a capability or a
secret. Real Redis queues; a real worker process for the end-to-end case."""

import dramatiq
from django.db import connection
from django_dramatiq.models import Task
from dramatiq import Message
from dramatiq.broker import MessageProxy

from apps.accounts import services as accounts
from apps.accounts.models import User
from apps.accounts.tasks import purge_expired_invitations
from apps.deployments import services as deployments
from apps.targets.tasks import sweep_targets
from tests.base import PASSWORD, client_for, queued_messages
from tests.deploying import wait_for
from tests.live import worker_process
from windflow import scheduler
from windflow.workers import TENANT_OPTION, JobTrackingMiddleware


def waiting_message(actor_name: str) -> Message:
    """The message of `actor_name` waiting in the real Redis queues."""
    broker = dramatiq.get_broker()
    for queue in broker.get_declared_queues():
        for data in broker.client.hvals(f"{broker.namespace}:{queue}.msgs"):
            message = Message.decode(data)
            if message.actor_name == actor_name:
                return message
    raise AssertionError(f"no {actor_name} message queued")


def test_it_lists_the_jobs_given_to_the_workers_in_the_admin(
    membership, make_stack, django_capture_on_commit_callbacks
):
    stack = make_stack()
    with django_capture_on_commit_callbacks(execute=True):
        deployment = deployments.request_deployment(membership, stack)
    connection.set_schema_to_public()
    task = Task.tasks.get(actor_name="run_deployment")
    assert task.status == "enqueued"
    assert list(task.message.args) == [deployment.pk]
    assert task.message.options[TENANT_OPTION] == "acme"

    # The worker's side: the job starts, then fails (the hooks a worker calls around it,
    # with the proxy a worker hands them).
    broker, tracking = dramatiq.get_broker(), JobTrackingMiddleware()
    message = MessageProxy(waiting_message("run_deployment"))
    tracking.before_process_message(broker, message)
    assert Task.tasks.get(pk=task.pk).status == "running"
    tracking.after_process_message(broker, message, exception=RuntimeError("pw=hunter2-xyz"))
    task = Task.tasks.get(pk=task.pk)
    assert (task.status, task.message.options["error"]) == ("failed", "RuntimeError")
    assert b"hunter2" not in bytes(task.message_data)  # the type only, never the message
    # Queued again late (a slow enqueue after the worker's start): the outcome stays.
    tracking.after_enqueue(broker, message, 0)
    assert Task.tasks.get(pk=task.pk).status == "failed"

    staff = User.objects.create_superuser("ops@windflow.test", PASSWORD)
    page = client_for(staff).get("/admin/django_dramatiq/task/").content.decode()
    assert f"run_deployment({deployment.pk})" in page
    assert ">acme<" in page and "Failed" in page and "RuntimeError" in page
    detail = client_for(staff).get(f"/admin/django_dramatiq/task/{task.pk}/change/")
    assert detail.status_code == 200 and "RuntimeError" in detail.content.decode()


def test_it_keeps_no_capability_in_the_task_list(
    membership, acme, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _invitation, accept_url = accounts.invite(
            membership, email="sam@example.com", role="viewer"
        )
    task = Task.tasks.get(actor_name="send_invitation_email")
    token = accept_url.rstrip("/").rsplit("/", 1)[1]
    assert token.encode() not in bytes(task.message_data)
    assert task.message.args[1] == "<str>"  # the accept link, shown as its type only
    assert waiting_message("send_invitation_email").args[1] == accept_url  # the job has it


def test_it_leaves_the_scheduler_s_housekeeping_out_of_the_task_list(acme, globex):
    scheduler.enqueue_in_every_organization(sweep_targets)
    assert {actor for actor, _args, _schema in queued_messages()} == {"sweep_targets"}
    assert not Task.tasks.exists()


def test_it_records_what_a_worker_process_ran(live_db):
    message = purge_expired_invitations.send()
    try:
        assert Task.tasks.get(pk=message.message_id).status == "enqueued"
        with worker_process(threads=1):
            assert wait_for(
                lambda: Task.tasks.filter(pk=message.message_id, status="done").exists(),
                timeout=60,
            )
    finally:
        Task.tasks.filter(pk=message.message_id).delete()
