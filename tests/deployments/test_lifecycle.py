"""What happens around a deployment rather than inside it: the queue of a stack draining as
each deployment finishes, a lost message sent again, automatic rollback switched off, and a
cancel that puts the last good revision back. Real engine, real Redis queues."""

import secrets

from django.db import connection
from django.utils import timezone

from apps.accounts.models import Membership
from apps.deployments import runner, services, tasks
from apps.deployments.choices import DeploymentStatus
from apps.deployments.models import Deployment
from devtools import free_port, remove_compose_project
from tests.base import queued_messages, run_queued_jobs
from tests.deploying import (
    FAILING_HEALTHCHECK,
    NEVER_HEALTHY,
    add_revision,
    deploy,
    live_stack,
    log_text,
    page,
    run_in_worker_thread,
    wait_for,
    web_stack,
)
from tests.live import live_organization


def deployments_queued() -> list[tuple]:
    """The run_deployment messages waiting in Redis: [(deployment id,), schema]."""
    return [
        (args, schema) for actor, args, schema in queued_messages() if actor == "run_deployment"
    ]


def busybox(test_images) -> str:
    return f"services:\n  app:\n    image: {test_images['busybox:1']}\n"


def test_it_starts_the_next_queued_deployment_when_one_finishes(
    membership, make_stack, test_images, acme, django_capture_on_commit_callbacks
):
    stack = make_stack(busybox(test_images), grace_period=0)
    first = services.request_deployment(membership, stack)
    second = services.request_deployment(membership, stack)
    # Their own messages go at commit, and this test's transaction never commits: whatever
    # is queued below was sent by the end of the first deployment.
    assert deployments_queued() == []
    runner.run(second.pk)  # the second's message, handled while the first waits: no effect
    second.refresh_from_db()
    assert second.status == DeploymentStatus.QUEUED
    assert deployments_queued() == []

    with django_capture_on_commit_callbacks(execute=True):
        runner.run(first.pk)
    first.refresh_from_db()
    assert first.status == DeploymentStatus.SUCCEEDED, first.reason
    assert deployments_queued() == [((second.pk,), acme.schema_name)]

    assert "run_deployment" in run_queued_jobs()
    second.refresh_from_db()
    assert second.status == DeploymentStatus.SUCCEEDED, second.reason
    assert second.started_at >= first.finished_at


def test_it_starts_the_next_one_after_a_cancel_too(
    membership, make_stack, test_images, acme, django_capture_on_commit_callbacks
):
    stack = make_stack(busybox(test_images), grace_period=0)
    first = services.request_deployment(membership, stack)
    second = services.request_deployment(membership, stack)
    with django_capture_on_commit_callbacks(execute=True):
        services.cancel_deployment(membership, first)
    first.refresh_from_db()
    assert first.status == DeploymentStatus.CANCELLED
    assert deployments_queued() == [((second.pk,), acme.schema_name)]


def test_it_sends_a_lost_message_again_when_nothing_runs_ahead(
    membership, make_stack, test_images, acme, django_capture_on_commit_callbacks
):
    long_ago = timezone.now() - timezone.timedelta(minutes=10)
    # Its message was lost (never sent here: the transaction does not commit).
    lost = services.request_deployment(membership, make_stack(busybox(test_images), name="lost"))
    # Behind a deployment that runs: it is woken when that one finishes, not before.
    busy = make_stack(busybox(test_images), name="busy")
    running = services.request_deployment(membership, busy)
    behind = services.request_deployment(membership, busy)
    # Asked for a moment ago: its message may still be on its way.
    fresh = services.request_deployment(membership, make_stack(busybox(test_images), name="fresh"))
    Deployment.objects.filter(pk__in=[lost.pk, running.pk, behind.pk]).update(created_at=long_ago)
    Deployment.objects.filter(pk=running.pk).update(
        status=DeploymentStatus.RUNNING, started_at=timezone.now(), heartbeat_at=timezone.now()
    )

    with django_capture_on_commit_callbacks(execute=True):
        tasks.requeue_forgotten()
    assert deployments_queued() == [((lost.pk,), acme.schema_name)]

    run_queued_jobs()
    lost.refresh_from_db()
    assert lost.status == DeploymentStatus.SUCCEEDED, lost.reason
    for waiting in (behind, fresh):
        waiting.refresh_from_db()
        assert waiting.status == DeploymentStatus.QUEUED


def test_it_leaves_a_failed_revision_in_place_when_automatic_rollback_is_off(
    membership, make_stack, test_images
):
    port = free_port()
    stack = make_stack(web_stack(test_images["web:1"], port), health_timeout=20)
    stack.auto_rollback = False
    stack.save(update_fields=["auto_rollback"])
    assert deploy(membership, stack).status == DeploymentStatus.SUCCEEDED
    bad = add_revision(stack, web_stack(test_images["web:2"], port, extra=FAILING_HEALTHCHECK))

    deployment = deploy(membership, stack, bad)
    assert deployment.status == DeploymentStatus.FAILED
    assert deployment.rolled_back_to is None
    assert deployment.diagnosis["code"] == "healthcheck_failing"
    text = log_text(deployment)
    assert "Automatic rollback is off for this stack" in text
    assert "Rolling back" not in text
    stack.refresh_from_db()
    assert stack.current_revision.number == 1  # the last good one, on record
    assert page(port) == "windflow test web 2\n"  # left as it is, for the team to look at


def test_it_restores_the_last_good_revision_when_a_deployment_is_cancelled(live_db, test_images):
    project = f"wf-cancel-restore-{secrets.token_hex(3)}"
    port = free_port()
    with live_organization() as world:
        connection.set_tenant(world.organization)
        schema = world.organization.schema_name
        try:
            stack = live_stack(
                world, web_stack(test_images["web:1"], port), name=project, health_timeout=600
            )
            membership = Membership.objects.get(user=world.owner, organization=world.organization)
            good = services.request_deployment(membership, stack)
            run_in_worker_thread(schema, good.pk).join(timeout=120)
            good.refresh_from_db()
            assert good.status == DeploymentStatus.SUCCEEDED, good.reason

            slow = add_revision(stack, web_stack(test_images["web:2"], port, extra=NEVER_HEALTHY))
            deployment = services.request_deployment(membership, stack, slow)
            worker = run_in_worker_thread(schema, deployment.pk)
            # Cancel once it waits in the health gate of revision 2 (its container replaced).
            started = f"started {project}-web-1"
            in_gate = wait_for(lambda: deployment.lines.filter(message=started).exists(), 120)
            services.cancel_deployment(membership, deployment)
            worker.join(timeout=120)
            assert in_gate, log_text(deployment)
            assert not worker.is_alive()

            deployment.refresh_from_db()
            assert deployment.status == DeploymentStatus.CANCELLED
            assert deployment.rolled_back_to.number == 1
            text = log_text(deployment)
            assert text.index("Cancelled.") < text.index("Rolling back to revision 1")
            assert "Revision 1 restored." in text
            stack.refresh_from_db()
            assert stack.current_revision.number == 1
            assert page(port) == "windflow test web 1\n"
        finally:
            remove_compose_project(project)
