"""Secret values never reach what WindFlow stores or shows about a deployment (issue 9):
real deployments on the real Docker engine whose containers print a secret, in clear and as
base64, or fail with it (in an image name, in a failing healthcheck). Log lines, service
messages, reason, diagnosis, notifications and audit events hold the mask instead."""

import base64
import json
import uuid

import pytest

from apps.audit.models import AuditEvent
from apps.deployments import journal, runner, services
from apps.deployments.choices import DeploymentStatus
from apps.deployments.models import Deployment
from apps.notifications.models import Notification
from apps.secrets import services as secrets
from tests.deploying import add_revision
from windflow.redaction import MASK


@pytest.fixture
def canary(membership):
    value = f"canary{uuid.uuid4().hex}"
    secrets.create_secret(membership, name="API_TOKEN", value=value)
    return value


def forms_of(value: str) -> list[str]:
    return [value, base64.b64encode(value.encode()).decode()]


def deploy(membership, stack, revision=None) -> Deployment:
    deployment = services.request_deployment(membership, stack, revision)
    runner.run(deployment.pk)
    deployment.refresh_from_db()
    return deployment


def stored_text(deployment: Deployment) -> str:
    """Everything stored about the deployment, as one text."""
    parts = [deployment.reason, json.dumps(deployment.diagnosis)]
    parts += deployment.lines.values_list("message", flat=True)
    parts += deployment.services.values_list("message", flat=True)
    parts += Notification.objects.values_list("text", flat=True)
    for event in AuditEvent.objects.all():
        parts += [json.dumps(event.changes), event.object_label]
    return "\n".join(parts)


def assert_masked(deployment: Deployment, value: str, where: str) -> None:
    text = stored_text(deployment)
    for form in forms_of(value):
        assert form not in text
    assert MASK in where


def test_it_masks_a_secret_a_crashing_container_prints_in_clear_and_base64(
    membership, make_stack, test_images, canary
):
    stack = make_stack(grace_period=2)
    revision = add_revision(
        stack,
        f"""
services:
  app:
    image: {test_images["busybox:1"]}
    environment:
      TOKEN: ${{API_TOKEN}}
    command: ["sh", "-c", "echo token=$$TOKEN; printf %s $$TOKEN | base64; sleep 0.5; exit 3"]
""",
        secrets=["API_TOKEN"],
    )
    deployment = deploy(membership, stack, revision)
    assert deployment.status == DeploymentStatus.FAILED, deployment.reason
    shown = json.dumps(deployment.diagnosis) + "\n".join(
        deployment.lines.values_list("message", flat=True)
    )
    assert f"token={MASK}" in shown
    assert_masked(deployment, canary, shown)
    told = Notification.objects.get(recipient=membership.user, verb="deployment.failed")
    assert canary not in told.text


def test_it_masks_a_secret_in_an_image_name_in_the_reason_and_the_audit_trail(
    membership, make_stack, image_registry, canary
):
    stack = make_stack()
    revision = add_revision(
        stack,
        f"services:\n  web:\n    image: {image_registry.url}/windflow-test/${{API_TOKEN}}:1\n",
        secrets=["API_TOKEN"],
    )
    deployment = deploy(membership, stack, revision)
    assert deployment.status == DeploymentStatus.FAILED
    assert MASK in deployment.reason
    failed = AuditEvent.objects.get(action="deployment.failed", object_id=str(deployment.pk))
    assert MASK in failed.changes["reason"]
    assert_masked(deployment, canary, deployment.reason)
    from apps.audit.services import verify

    assert verify()[1] is None


def test_it_masks_a_secret_a_failing_healthcheck_prints_and_rolls_back(
    membership, make_stack, test_images, canary
):
    web = test_images["web:1"]
    stack = make_stack(f"services:\n  web:\n    image: {web}\n", health_timeout=20)
    assert deploy(membership, stack).status == DeploymentStatus.SUCCEEDED
    bad = add_revision(
        stack,
        f"""
services:
  web:
    image: {test_images["web:2"]}
    environment:
      TOKEN: ${{API_TOKEN}}
    healthcheck:
      test: ["CMD", "sh", "-c", "echo bad token $$TOKEN $$(printf %s $$TOKEN | base64); exit 1"]
      interval: 1s
      retries: 1
""",
        secrets=["API_TOKEN"],
    )
    deployment = deploy(membership, stack, bad)
    assert deployment.status == DeploymentStatus.ROLLED_BACK, deployment.reason
    assert deployment.diagnosis["code"] == "healthcheck_failing"
    assert f"bad token {MASK}" in deployment.reason
    assert_masked(deployment, canary, deployment.reason)
    told = Notification.objects.filter(verb="deployment.rolled_back").get()
    assert MASK in told.text


def test_it_keeps_the_values_in_scope_for_rollback_and_outcome(membership, make_stack, canary):
    """What the runner writes after the deploy itself (restore, outcome) is masked even when
    a text reaches `finish` directly."""
    stack = make_stack()
    deployment = services.request_deployment(membership, stack)
    journal.append_log(deployment, f"printed {canary}")
    journal.set_service(deployment, "web", phase="failed", progress=0, message=canary)
    journal.finish(
        deployment,
        DeploymentStatus.FAILED,
        f"reason {canary}",
        {"code": "x", "summary": canary, "detail": f"b64 {forms_of(canary)[1]}", "hint": ""},
    )
    deployment.refresh_from_db()
    assert deployment.reason == f"reason {MASK}"
    assert deployment.diagnosis["summary"] == MASK
    assert_masked(deployment, canary, deployment.diagnosis["detail"])
