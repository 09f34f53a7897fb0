"""`manage.py mask_stored_secrets` (issue 9): values stored in clear before every text went
through redaction are masked in log lines, reasons, diagnoses, service messages,
notifications and audit events; the audit chain is re-anchored and verifies; a second run
changes nothing; a dry run changes nothing."""

import base64
import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.accounts.models import Membership
from apps.audit import services as audit
from apps.audit.models import AuditEvent
from apps.deployments.models import Deployment, DeploymentLogLine, DeploymentService
from apps.environments.models import Environment
from apps.notifications.models import Notification
from apps.secrets import services as secrets
from apps.stacks.models import Stack, StackRevision
from apps.targets.models import Target
from windflow.redaction import MASK

VALUE = "pre-issue9-secret-value"
ENCODED = base64.b64encode(VALUE.encode()).decode()


@pytest.fixture
def seeded(owner, acme, in_acme):
    """Rows written in clear, as before this change (straight through the ORM)."""
    membership = Membership.objects.get(user=owner, organization=acme)
    secrets.create_secret(membership, name="API_TOKEN", value=VALUE)
    environment = Environment.objects.create(name="staging", slug="staging")
    target = Target.objects.create(name="web-1", slug="web-1", kind="ssh", host="10.0.0.1")
    stack = Stack.objects.create(name="shop", environment=environment, target=target)
    revision = StackRevision.objects.create(stack=stack, number=1, compose="services: {}\n")
    deployment = Deployment.objects.create(
        stack=stack,
        number=1,
        revision=revision,
        target=target,
        environment=environment,
        status="failed",
        reason=f"image not found: registry/{VALUE}:1",
        diagnosis={"code": "exited", "detail": f"token={VALUE}\n{ENCODED}"},
    )
    DeploymentLogLine.objects.create(
        deployment=deployment, seq=1, created_at=timezone.now(), message=f"echo {ENCODED}"
    )
    DeploymentService.objects.create(deployment=deployment, service="app", message=VALUE)
    Notification.objects.create(recipient=owner, verb="deployment.failed", text=f"({VALUE})")
    audit.record("deployment.failed", object_type="deployment", changes={"reason": VALUE})
    audit.record("stack.update", object_type="stack", changes={"n": 1})
    return deployment


def stored() -> str:
    parts = [
        *Deployment.objects.values_list("reason", flat=True),
        *(str(d) for d in Deployment.objects.values_list("diagnosis", flat=True)),
        *DeploymentLogLine.objects.values_list("message", flat=True),
        *DeploymentService.objects.values_list("message", flat=True),
        *Notification.objects.values_list("text", flat=True),
        *(str(c) for c in AuditEvent.objects.values_list("changes", flat=True)),
    ]
    return "\n".join(parts)


def run(*args) -> str:
    out = io.StringIO()
    call_command("mask_stored_secrets", "--org", "acme", *args, stdout=out)
    return out.getvalue()


def test_it_masks_values_stored_in_clear_and_reanchors_the_chain(seeded):
    assert VALUE in stored() and ENCODED in stored()
    head = AuditEvent.objects.order_by("-id").first().hash
    output = run()
    text = stored()
    assert VALUE not in text and ENCODED not in text
    assert text.count(MASK) >= 7
    seeded.refresh_from_db()
    assert seeded.reason == f"image not found: registry/{MASK}:1"
    assert seeded.diagnosis["detail"] == f"token={MASK}\n{MASK}"
    assert "acme: masked 5 value(s)" in output
    assert f"old head {head}" in output
    anchor = audit.reanchors().get()
    assert anchor.changes["old_head"] == head and anchor.changes["events_changed"] == 1
    assert audit.verify()[1] is None
    verify = io.StringIO()
    call_command("audit_verify", "--org", "acme", stdout=verify)
    assert "All audit chains verify" in verify.getvalue()

    again = run()
    assert "acme: masked 0 value(s)" in again and "audit: 0 of" in again
    assert audit.reanchors().count() == 1


def test_it_only_counts_on_a_dry_run(seeded):
    output = run("--dry-run")
    assert "acme: would mask 5 value(s)" in output
    assert VALUE in stored()
    assert not audit.reanchors().exists()


def test_it_names_an_unknown_organisation(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="nope"):
        call_command("mask_stored_secrets", "--org", "nope")
