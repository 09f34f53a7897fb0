"""The operator index (issue 12): the services keep it true as they change things (a failed
deployment appears and a later success resolves it, an offline server appears and leaves
when it answers, lockouts, policy refusals and revocations are security events, counters
follow creations and deletions), the rebuild command repairs it from the schemas, and an
organisation's deletion takes its rows along."""

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from apps.accounts import services as accounts
from apps.deployments import services as deployments
from apps.deployments.choices import DeploymentStatus
from apps.deployments.models import Deployment
from apps.stacks import services as stacks
from apps.stacks.services import ComposeInvalid
from apps.targets import connect
from apps.targets import services as targets
from apps.tenants import index
from apps.tenants.models import (
    IndexedDeployment,
    OfflineServer,
    Organization,
    OrganizationUsage,
    SecurityEvent,
)
from tests.base import PASSWORD, api_client, client_for, member
from tests.deploying import add_revision, deploy


@pytest.fixture
def operator_staff(db):
    from apps.accounts.models import User

    return User.objects.create_superuser("ops@windflow.test", PASSWORD)


def usage(organization) -> dict:
    row = OrganizationUsage.objects.filter(organization=organization).first()
    if row is None:
        return {"servers": 0, "stacks": 0, "deployments": 0, "last_activity_at": None}
    return {
        "servers": row.servers,
        "stacks": row.stacks,
        "deployments": row.deployments,
        "last_activity_at": row.last_activity_at,
    }


def indexed(organization, deployment):
    return IndexedDeployment.objects.filter(
        organization=organization, deployment_id=deployment.pk
    ).first()


def events(kind, organization=None):
    return list(
        SecurityEvent.objects.filter(kind=kind, organization=organization).order_by("created_at")
    )


def busybox(test_images) -> str:
    return f"services:\n  app:\n    image: {test_images['busybox:1']}\n"


def crashing(test_images) -> str:
    return f"services:\n  app:\n    image: {test_images['crash:1']}\n"


def test_it_indexes_a_failed_deployment_until_a_redeploy_succeeds(
    membership, make_stack, test_images, acme, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        stack = make_stack(crashing(test_images), name="broken", grace_period=3)  # seen to exit
    before = usage(acme)
    with django_capture_on_commit_callbacks(execute=True):
        failed = deploy(membership, stack)
    assert failed.status == DeploymentStatus.FAILED, failed.reason
    row = indexed(acme, failed)
    assert (row.stack, row.target, row.status) == ("broken", "web-1", "failed")
    assert row.reason and row.reason == failed.reason[:200].replace("\n", " ").strip()
    assert row.finished_at == failed.finished_at and row.resolved_at is None
    assert index.failed_deployments().filter(pk=row.pk).exists()
    assert index.recent_failures().filter(organization=acme).count() == 1
    after = usage(acme)
    assert after["deployments"] == before["deployments"] + 1
    assert after["last_activity_at"] >= failed.finished_at

    good = add_revision(stack, busybox(test_images))
    with django_capture_on_commit_callbacks(execute=True):
        redeployed = deploy(membership, stack, good)
    assert redeployed.status == DeploymentStatus.SUCCEEDED, redeployed.reason
    assert indexed(acme, redeployed) is None  # a success is nobody's problem
    assert not index.failed_deployments().filter(organization=acme).exists()
    # Still one failure in the last 24 h (the organisation list counts it).
    assert index.recent_failures().filter(organization=acme).count() == 1
    assert indexed(acme, failed).resolved_at == redeployed.finished_at


def test_it_indexes_a_queued_deployment_and_says_when_it_is_stuck(
    membership, make_stack, acme, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        queued = deployments.request_deployment(membership, make_stack())
    row = indexed(acme, queued)
    assert row.status == "queued" and row.created_at == queued.created_at
    assert not index.stuck_deployments().filter(pk=row.pk).exists()
    later = timezone.now() + index.STUCK_QUEUED + timezone.timedelta(seconds=1)
    assert index.stuck_deployments(later).filter(pk=row.pk).exists()
    with django_capture_on_commit_callbacks(execute=True):
        deployments.cancel_deployment(membership, queued)
    assert indexed(acme, queued) is None


def test_it_indexes_an_offline_server_until_it_answers(
    settings, membership, local_target, acme, docker_socket, django_capture_on_commit_callbacks
):
    mode = settings.WINDFLOW_LOCAL_TARGETS
    settings.WINDFLOW_LOCAL_TARGETS = "off"  # the server stops connecting
    with django_capture_on_commit_callbacks(execute=True):
        assert connect.check_target(local_target).status == "offline"
    offline = OfflineServer.objects.get(organization=acme, server_id=local_target.pk)
    assert offline.name == "web-1" and offline.failed_check
    with django_capture_on_commit_callbacks(execute=True):
        connect.check_target(local_target)  # still offline: since the first check
    assert OfflineServer.objects.get(pk=offline.pk).since == offline.since

    settings.WINDFLOW_LOCAL_TARGETS = mode
    with django_capture_on_commit_callbacks(execute=True):
        assert connect.check_target(local_target).status == "online"
    assert not OfflineServer.objects.filter(organization=acme).exists()


def test_it_counts_servers_and_stacks_as_they_come_and_go(
    membership, staging, acme, django_capture_on_commit_callbacks
):
    before = usage(acme)
    with django_capture_on_commit_callbacks(execute=True):
        target = targets.create_target(membership, name="web-9", kind="local")
        stack = stacks.create_stack(
            membership, name="shop", environment=staging, target=target, compose=_compose()
        )
    assert usage(acme)["servers"] == before["servers"] + 1
    assert usage(acme)["stacks"] == before["stacks"] + 1
    OfflineServer.objects.create(
        organization=acme, server_id=target.pk, name="web-9", since=timezone.now()
    )
    with django_capture_on_commit_callbacks(execute=True):
        stacks.delete_stack(membership, stack)
        targets.delete_target(membership, target)
    assert usage(acme)["servers"] == before["servers"]
    assert usage(acme)["stacks"] == before["stacks"]
    assert not OfflineServer.objects.filter(organization=acme).exists()


def _compose() -> str:
    from tests.base import COMPOSE

    return COMPOSE


def test_it_records_a_lockout_once_per_person_and_burst(
    owner, acme, django_capture_on_commit_callbacks
):
    browser = client_for(None, acme)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(8):
            browser.post("/accounts/login/", {"login": owner.email, "password": "wrong"})
    [lockout] = events("lockout", acme)
    assert lockout.actor == owner.email
    assert "127.0.0.1" in lockout.summary and "wrong" not in lockout.summary
    # The JWT endpoint goes through the same lockout: the same burst, no second event.
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client(None, acme).post(
            "/api/v1/auth/token/", {"email": owner.email, "password": PASSWORD}, format="json"
        )
    assert response.status_code == 429
    assert len(events("lockout", acme)) == 1


def test_it_records_revocations(owner, admin, acme, in_acme, django_capture_on_commit_callbacks):
    mine = member(owner, acme)
    token, _raw = accounts.create_api_token(mine, name="ci", scope="read")
    with django_capture_on_commit_callbacks(execute=True):
        accounts.revoke_api_token(mine, token)
    [revoked] = events("revocation", acme)
    assert revoked.actor == owner.email
    assert revoked.summary == f"API token ci ({token.prefix}…) of {owner.email}"

    connection.set_schema_to_public()
    with django_capture_on_commit_callbacks(execute=True):
        accounts.deactivate_user(owner, admin)
    [deactivated] = events("revocation", None)
    assert deactivated.summary == f"account {admin.email} deactivated"


def test_it_records_a_policy_refusal_on_save_and_on_deploy_request(
    membership, staging, local_target, developer, acme, django_capture_on_commit_callbacks
):
    privileged = "services:\n  web:\n    image: nginx:1.27\n    privileged: true\n"
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ComposeInvalid):
        stacks.create_stack(
            member(developer, acme),
            name="root",
            environment=staging,
            target=local_target,
            compose=privileged,
        )
    [refusal] = events("policy_refusal", acme)
    assert refusal.actor == developer.email
    assert refusal.summary == "stack root: services.web.privileged"

    # Saved by the owner, asked for by a developer: refused again at the request.
    stack = stacks.create_stack(
        membership, name="root", environment=staging, target=local_target, compose=privileged
    )
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(Exception) as caught:
        deployments.request_deployment(member(developer, acme), stack)
    assert getattr(caught.value, "code", "") == "policy_refused"
    assert len(events("policy_refusal", acme)) == 2


def test_it_keeps_the_index_small(acme):
    now = timezone.now()
    old = now - index.FAILED_KEPT - timezone.timedelta(days=1)
    day_ago = now - index.FAILURE_WINDOW - timezone.timedelta(hours=1)
    rows = {
        "open": (now, None),
        "resolved_today": (now, now),
        "resolved_long_ago": (day_ago, day_ago),
        "never_resolved_long_ago": (old, None),
    }
    for n, (stack, (finished, resolved)) in enumerate(rows.items()):
        IndexedDeployment.objects.create(
            organization=acme,
            deployment_id=1000 + n,
            stack=stack,
            status="failed",
            created_at=finished,
            finished_at=finished,
            resolved_at=resolved,
        )
    IndexedDeployment.objects.create(  # its finish never reached the index
        organization=acme, deployment_id=999, stack="forgotten", status="running", created_at=old
    )
    SecurityEvent.objects.create(
        organization=acme, kind="lockout", created_at=now - timezone.timedelta(days=31)
    )
    SecurityEvent.objects.create(organization=acme, kind="lockout", created_at=now)
    pruned = index.prune()
    assert pruned == {"resolved failures": 1, "old rows": 2, "security events": 1}
    left = set(IndexedDeployment.objects.filter(organization=acme).values_list("stack", flat=True))
    assert left == {"open", "resolved_today"}


def test_it_rebuilds_the_index_from_the_schemas(membership, make_stack, acme, globex, capsys):
    # Written behind the services' back (this test's transaction never commits, so their
    # index writes never ran): the rebuild reads what the schema holds.
    stack = make_stack(name="shop")
    failed = deployments.request_deployment(membership, stack)
    Deployment.objects.filter(pk=failed.pk).update(
        status=DeploymentStatus.FAILED, reason="exit 1", finished_at=timezone.now()
    )
    stuck = deployments.request_deployment(membership, stack)
    offline = stack.target
    offline.status = "offline"
    offline.save(update_fields=["status"])
    connection.set_schema_to_public()
    IndexedDeployment.objects.create(
        organization=acme,
        deployment_id=999999,
        stack="gone",
        status="failed",
        created_at=timezone.now(),
        finished_at=timezone.now(),
    )

    call_command("rebuild_operator_index", "--org", "acme")
    out = capsys.readouterr().out
    assert "Rebuilt the operator index of 1 organisations" in out

    rows = {r.deployment_id: r for r in IndexedDeployment.objects.filter(organization=acme)}
    assert set(rows) == {failed.pk, stuck.pk}
    assert (rows[failed.pk].status, rows[failed.pk].reason) == ("failed", "exit 1")
    assert rows[stuck.pk].status == "queued"
    assert OfflineServer.objects.get(organization=acme).server_id == offline.pk
    counted = usage(acme)
    assert (counted["servers"], counted["stacks"], counted["deployments"]) == (1, 1, 2)
    assert counted["last_activity_at"] is not None

    with pytest.raises(CommandError, match="nowhere"):
        call_command("rebuild_operator_index", "--org", "nowhere")


def test_it_forgets_a_deleted_organisation(acme):
    gone = Organization.objects.create(name="Gone", slug="gone", schema_name="gone")
    OrganizationUsage.objects.create(organization=gone, stacks=3)
    OfflineServer.objects.create(organization=gone, server_id=1, name="a", since=timezone.now())
    SecurityEvent.objects.create(organization=gone, kind="lockout", created_at=timezone.now())
    index.forget_organization(gone)
    assert not OrganizationUsage.objects.filter(organization=gone).exists()
    assert not OfflineServer.objects.filter(organization_id="gone").exists()
    # The foreign keys cascade as well, for a deletion through the ORM.
    OrganizationUsage.objects.create(organization=gone, stacks=3)
    IndexedDeployment.objects.create(
        organization=gone, deployment_id=1, stack="s", status="failed", created_at=timezone.now()
    )
    gone.delete(force_drop=False)
    assert not OrganizationUsage.objects.filter(organization_id="gone").exists()
    assert not IndexedDeployment.objects.filter(organization_id="gone").exists()


def test_it_takes_the_index_rows_along_when_an_organisation_is_deleted(acme, operator_staff):
    from apps.tenants.services import delete_organization

    OrganizationUsage.objects.update_or_create(organization=acme, defaults={"stacks": 3})
    IndexedDeployment.objects.create(
        organization=acme, deployment_id=1, stack="s", status="failed", created_at=timezone.now()
    )
    OfflineServer.objects.create(organization=acme, server_id=1, name="a", since=timezone.now())
    SecurityEvent.objects.create(organization=acme, kind="lockout", created_at=timezone.now())

    delete_organization(acme, actor=operator_staff)

    for model in (OrganizationUsage, IndexedDeployment, OfflineServer, SecurityEvent):
        assert not model.objects.filter(organization_id="acme").exists(), model
