"""Approvals (issue 13, push to deploy): a push to an environment whose Git policy wants an
approval makes a deployment that awaits one. It never runs until someone who may deploy to
that environment approves it (page or API); they are notified; the approver is audited;
others get a 403 (an outsider a 404)."""

import pytest
from django.db import connection
from guardian.shortcuts import assign_perm

from apps.audit.models import AuditEvent
from apps.deployments import journal, services
from apps.deployments.choices import DeploymentStatus
from apps.deployments.models import Deployment
from apps.environments import services as environments
from apps.environments.choices import EnvironmentKind, GitPolicy
from apps.environments.models import Environment
from apps.notifications.models import Notification
from tests.base import api_client, client_for, error_of, member, queued_messages
from tests.deploying import make_world


@pytest.fixture
def prod(acme, owner):
    world = make_world(acme, owner, protected=True, name="bank")
    yield world
    connection.set_schema_to_public()


@pytest.fixture
def staging(acme, owner):
    world = make_world(acme, owner, name="shop")
    yield world
    connection.set_schema_to_public()


def awaiting(world, why="push 0123abc to main") -> Deployment:
    """What a push does under the approval policy (apps.sources.push asks it so)."""
    connection.set_tenant(world.membership.organization)
    return services.request_deployment(None, world.stack, approval=True, why=why)


def run_deployment_messages() -> list:
    return [args for actor, args, _schema in queued_messages() if actor == "run_deployment"]


def test_it_holds_a_deployment_awaiting_approval_without_running_it(
    prod, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        deployment = awaiting(prod)
    assert deployment.status == DeploymentStatus.AWAITING_APPROVAL
    assert deployment.awaits_approval and not deployment.is_active
    assert not deployment.is_finished and deployment.triggered_by is None
    assert run_deployment_messages() == []  # nothing sent to a worker
    assert journal.claim(deployment.pk) is None  # a stray message would not run it either
    deployment.refresh_from_db()
    assert deployment.status == DeploymentStatus.AWAITING_APPROVAL
    event = AuditEvent.objects.filter(action="deployment.request").latest("id")
    assert event.changes["approval_required"] is True
    assert event.changes["why"] == "push 0123abc to main"
    assert event.actor_type == "system"


def test_it_notifies_the_members_who_may_deploy_to_the_environment(
    prod, acme, owner, admin, operator, developer, viewer
):
    granted = member(developer, acme)
    assign_perm("deploy_environment", developer, prod.environment)
    deployment = awaiting(prod)
    told = set(
        Notification.objects.filter(verb="deployment.awaiting_approval").values_list(
            "recipient__email", flat=True
        )
    )
    assert told == {owner.email, admin.email, operator.email, granted.user.email}
    assert viewer.email not in told
    note = Notification.objects.filter(recipient=operator).latest("id")
    assert note.url == f"/deployments/{deployment.pk}/"
    assert "bank" in note.text and "production" in note.text and "0123abc" in note.text


def test_it_leaves_a_protected_environment_s_developers_without_a_grant_out(prod, developer):
    awaiting(prod)
    assert not Notification.objects.filter(recipient=developer).exists()


def test_it_lets_an_operator_approve_from_the_page(
    prod, acme, operator, django_capture_on_commit_callbacks
):
    deployment = awaiting(prod)
    page = client_for(operator, acme).get(f"/deployments/{deployment.pk}/")
    assert page.status_code == 200
    assert b'data-testid="approve"' in page.content and b'data-testid="reject"' in page.content
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(operator, acme).post(f"/deployments/{deployment.pk}/approve/")
    assert response.status_code == 302
    connection.set_tenant(acme)
    deployment.refresh_from_db()
    assert deployment.status == DeploymentStatus.QUEUED
    assert deployment.triggered_by == operator and deployment.decided_by == operator
    assert deployment.decided_at is not None
    assert run_deployment_messages() == [(deployment.pk,)]
    event = AuditEvent.objects.filter(action="deployment.approve").latest("id")
    assert (event.actor_label, event.object_id) == (operator.email, str(deployment.pk))
    again = client_for(operator, acme).get(f"/deployments/{deployment.pk}/")
    assert b'data-testid="approve"' not in again.content
    assert operator.email.encode() in again.content  # "Approved by"


def test_it_refuses_an_approval_to_whoever_may_not_deploy_there(
    prod, acme, developer, viewer, outsider, globex
):
    deployment = awaiting(prod)
    page = client_for(developer, acme).get(f"/deployments/{deployment.pk}/")
    assert b'data-testid="approve"' not in page.content
    for person in (developer, viewer):
        assert (
            client_for(person, acme).post(f"/deployments/{deployment.pk}/approve/").status_code
            == 403
        )
        refused = api_client(person, acme).post(f"/api/v1/deployments/{deployment.pk}/approve/")
        assert refused.status_code == 403, refused.content
        assert error_of(refused)["code"] == "permission_denied"
        rejected = api_client(person, acme).post(f"/api/v1/deployments/{deployment.pk}/reject/")
        assert rejected.status_code == 403
    # The outsider on their own host, naming acme's deployment: not found.
    assert api_client(outsider, globex).post(
        f"/api/v1/deployments/{deployment.pk}/approve/"
    ).status_code in (403, 404)
    assert client_for(outsider, acme).post(
        f"/deployments/{deployment.pk}/approve/"
    ).status_code in (302, 403, 404)
    connection.set_tenant(acme)
    deployment.refresh_from_db()
    assert deployment.status == DeploymentStatus.AWAITING_APPROVAL
    assert not AuditEvent.objects.filter(action="deployment.approve").exists()


def test_it_lets_a_granted_developer_approve_through_the_api(
    prod, acme, developer, django_capture_on_commit_callbacks
):
    deployment = awaiting(prod)
    assign_perm("deploy_environment", developer, prod.environment)
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client(developer, acme).post(f"/api/v1/deployments/{deployment.pk}/approve/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "queued" and body["decided_by"] == developer.email
    assert body["triggered_by"] == developer.email
    connection.set_tenant(acme)
    assert run_deployment_messages() == [(deployment.pk,)]


def test_it_rejects_with_a_reason_and_never_runs_it(prod, acme, owner):
    deployment = awaiting(prod)
    response = api_client(owner, acme).post(
        f"/api/v1/deployments/{deployment.pk}/reject/", {"reason": "not on a Friday"}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "cancelled" and body["finished"] is True
    assert body["reason"] == f"Rejected by {owner.email}: not on a Friday"
    assert body["decided_by"] == owner.email
    connection.set_tenant(acme)
    assert run_deployment_messages() == []
    event = AuditEvent.objects.filter(action="deployment.reject").latest("id")
    assert event.actor_type == "token" and event.actor_id == str(owner.pk)
    assert event.changes == {"reason": "not on a Friday"}
    # Decided once: approving it now is a conflict, with a clear message.
    late = api_client(owner, acme).post(f"/api/v1/deployments/{deployment.pk}/approve/")
    assert late.status_code == 409
    assert error_of(late)["code"] == "not_awaiting_approval"


def test_it_rejects_from_the_page_with_htmx(prod, acme, owner):
    deployment = awaiting(prod)
    response = client_for(owner, acme).post(
        f"/deployments/{deployment.pk}/reject/", {"reason": ""}, headers={"HX-Request": "true"}
    )
    assert response.status_code in (200, 204) and response.headers.get("HX-Redirect")
    connection.set_tenant(acme)
    deployment.refresh_from_db()
    assert deployment.status == DeploymentStatus.CANCELLED
    assert deployment.reason == f"Rejected by {owner.email}."


def test_it_answers_409_to_approving_a_deployment_that_awaits_nothing(staging, acme, owner):
    connection.set_tenant(acme)
    deployment = services.request_deployment(staging.membership, staging.stack)
    response = api_client(owner, acme).post(f"/api/v1/deployments/{deployment.pk}/approve/")
    assert response.status_code == 409
    assert "does not await an approval" in error_of(response)["message"]


def test_it_cancels_an_awaiting_deployment_as_a_rejection(prod, acme, operator):
    deployment = awaiting(prod)
    response = api_client(operator, acme).post(f"/api/v1/deployments/{deployment.pk}/cancel/")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"


@pytest.mark.parametrize(
    ("kind", "protected", "expected"),
    [
        (EnvironmentKind.DEV, False, GitPolicy.AUTO),
        (EnvironmentKind.STAGING, False, GitPolicy.AUTO),
        (EnvironmentKind.PROD, False, GitPolicy.APPROVAL),
        (EnvironmentKind.STAGING, True, GitPolicy.APPROVAL),
    ],
)
def test_it_defaults_the_git_policy_by_kind(in_acme, kind, protected, expected):
    environment = Environment.objects.create(
        name=f"e-{kind}-{protected}", slug=f"e-{kind}-{protected}", kind=kind, protected=protected
    )
    assert environment.git_policy == "" and environment.effective_git_policy == expected
    environment.git_policy = GitPolicy.OFF
    assert environment.effective_git_policy == GitPolicy.OFF


def test_it_keeps_a_protected_environment_s_git_policy_to_admins(prod, acme, operator, admin):
    from windflow.errors import Forbidden

    connection.set_tenant(acme)
    with pytest.raises(Forbidden):
        environments.update_environment(member(operator, acme), prod.environment, git_policy="auto")
    changed = environments.update_environment(
        member(admin, acme), prod.environment, git_policy="auto", poll_mode="report"
    )
    assert (changed.git_policy, changed.poll_mode) == ("auto", "report")
    event = AuditEvent.objects.filter(action="environment.update").latest("id")
    assert event.changes["git_policy"] == ["", "auto"]


def test_it_shows_and_takes_the_git_policy_in_the_api(staging, acme, operator):
    client = api_client(operator, acme)
    shown = client.get("/api/v1/environments/staging/").json()
    assert (shown["git_policy"], shown["effective_git_policy"], shown["poll_mode"]) == (
        "",
        "auto",
        "deploy",
    )
    changed = client.patch(
        "/api/v1/environments/staging/", {"git_policy": "approval"}, format="json"
    )
    assert changed.status_code == 200, changed.content
    assert changed.json()["effective_git_policy"] == "approval"
    bad = client.patch("/api/v1/environments/staging/", {"git_policy": "yolo"}, format="json")
    assert bad.status_code == 400 and "git_policy" in error_of(bad)["fields"]


def test_it_shows_the_git_policy_on_the_environment_s_page(prod, acme, viewer):
    page = client_for(viewer, acme).get("/environments/production/")
    assert page.status_code == 200
    assert b'data-testid="git-policy"' in page.content
    assert b"Deploy after an approval" in page.content
