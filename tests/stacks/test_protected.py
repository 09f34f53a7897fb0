"""A stack in a protected environment changes only for members who may deploy there: its
settings, revisions (variables and secrets with them), registry logins, and moves to or from
that environment, through the service, the API and the settings page."""

import pytest

from apps.stacks import services
from tests.base import COMPOSE, api_client, client_for, error_of, member
from windflow.errors import Forbidden


@pytest.fixture
def protected(in_acme):
    from apps.environments.models import Environment

    return Environment.objects.create(
        name="production",
        slug="production",
        kind="prod",
        protected=True,
        variables={"GREETING": "hi"},
    )


@pytest.fixture
def prod_stack(make_stack, protected):
    return make_stack(name="shop", environment=protected)


def test_it_refuses_a_developer_moving_a_stack_out_of_a_protected_environment(
    prod_stack, staging, developer, acme
):
    with pytest.raises(Forbidden):
        services.update_stack(member(developer, acme), prod_stack, environment=staging)
    prod_stack.refresh_from_db()
    assert prod_stack.environment.slug == "production"


def test_it_refuses_a_developer_moving_a_stack_into_a_protected_environment(
    make_stack, protected, developer, acme
):
    stack = make_stack(name="shop")
    with pytest.raises(Forbidden):
        services.update_stack(member(developer, acme), stack, environment=protected)
    stack.refresh_from_db()
    assert stack.environment.slug == "staging"


def test_it_refuses_a_developer_revising_or_changing_a_protected_stack(prod_stack, developer, acme):
    actor = member(developer, acme)
    with pytest.raises(Forbidden):
        services.revise_stack(actor, prod_stack, compose=COMPOSE, variables={"GREETING": "pwned"})
    with pytest.raises(Forbidden):
        services.update_stack(actor, prod_stack, description="mine now", registry_credentials=[])
    with pytest.raises(Forbidden):
        services.create_stack(
            actor,
            name="other",
            environment=prod_stack.environment,
            target=prod_stack.target,
            compose=COMPOSE,
        )
    assert prod_stack.revisions.count() == 1
    prod_stack.refresh_from_db()
    assert prod_stack.description == ""


def test_it_lets_a_granted_developer_and_an_operator_change_a_protected_stack(
    prod_stack, protected, staging, developer, operator, owner, acme
):
    from apps.environments.services import grant_deploy

    grant_deploy(member(owner, acme), protected, member(developer, acme))
    revision = services.revise_stack(
        member(developer, acme), prod_stack, compose=COMPOSE, variables={"GREETING": "yo"}
    )
    assert revision.number == 2
    services.update_stack(member(operator, acme), prod_stack, environment=staging)
    prod_stack.refresh_from_db()
    assert prod_stack.environment == staging


def test_it_answers_the_move_and_back_trick_with_a_403_json(prod_stack, staging, developer, acme):
    client = api_client(developer, acme)
    response = client.patch("/api/v1/stacks/shop/", {"environment": "staging"}, format="json")
    assert response.status_code == 403, response.content
    assert error_of(response)["code"] == "permission_denied"
    assert "production" in error_of(response)["message"]
    response = client.post(
        "/api/v1/stacks/shop/revisions/",
        {"compose": COMPOSE, "variables": {"GREETING": "x"}},
        format="json",
    )
    assert response.status_code == 403, response.content
    prod_stack.refresh_from_db()
    assert prod_stack.environment.slug == "production"
    assert prod_stack.revisions.count() == 1


def test_it_shows_the_refusal_on_the_settings_form(prod_stack, staging, developer, acme):
    response = client_for(developer, acme).post(
        "/stacks/shop/settings/",
        {
            "description": "",
            "environment": staging.pk,
            "target": prod_stack.target_id,
            "auto_rollback": "on",
            "health_timeout": 120,
            "grace_period": 10,
            "registry_credentials": "",
        },
    )
    assert response.status_code == 200
    errors = response.context["form"].non_field_errors()
    assert any("production" in str(error) for error in errors), errors
    prod_stack.refresh_from_db()
    assert prod_stack.environment.slug == "production"


def test_it_refuses_cancel_resume_and_rollback_on_a_protected_environment(
    prod_stack, developer, acme
):
    from apps.deployments import services as deployments
    from apps.deployments.choices import DeploymentStatus
    from apps.deployments.models import Deployment

    revision = prod_stack.latest_revision
    done = Deployment.objects.create(
        stack=prod_stack,
        number=1,
        revision=revision,
        target=prod_stack.target,
        environment=prod_stack.environment,
        status=DeploymentStatus.SUCCEEDED,
    )
    queued = Deployment.objects.create(
        stack=prod_stack,
        number=2,
        revision=revision,
        target=prod_stack.target,
        environment=prod_stack.environment,
    )
    client = api_client(developer, acme)
    for url in (
        f"/api/v1/deployments/{queued.pk}/cancel/",
        f"/api/v1/deployments/{done.pk}/resume/",
        f"/api/v1/deployments/{done.pk}/rollback/",
    ):
        response = client.post(url)
        assert response.status_code == 403, (url, response.content)
        assert error_of(response)["code"] == "permission_denied"
    queued.refresh_from_db()
    assert queued.status == DeploymentStatus.QUEUED
    assert queued.cancel_requested_at is None
    assert prod_stack.deployments.count() == 2
    with pytest.raises(Forbidden):
        deployments.resume_deployment(member(developer, acme), done)


def test_it_refuses_acting_on_a_deployment_made_in_a_protected_environment_after_a_move(
    prod_stack, staging, developer, operator, acme
):
    from apps.deployments import services as deployments
    from apps.deployments.models import Deployment

    queued = Deployment.objects.create(
        stack=prod_stack,
        number=1,
        revision=prod_stack.latest_revision,
        target=prod_stack.target,
        environment=prod_stack.environment,
    )
    services.update_stack(member(operator, acme), prod_stack, environment=staging)
    with pytest.raises(Forbidden):
        deployments.cancel_deployment(member(developer, acme), queued)


def test_it_refuses_a_change_checked_against_an_environment_the_stack_has_left(
    make_stack, protected, developer, operator, acme
):
    from apps.stacks.models import Stack
    from windflow.errors import Conflict

    stale = make_stack(name="shop")  # staging: the developer may change it there
    services.update_stack(
        member(operator, acme), Stack.objects.get(pk=stale.pk), environment=protected
    )
    with pytest.raises(Conflict):
        services.revise_stack(member(developer, acme), stale, compose=COMPOSE, variables={})
    with pytest.raises(Conflict):
        services.update_stack(member(developer, acme), stale, description="mine")
    fresh = Stack.objects.get(pk=stale.pk)
    assert fresh.revisions.count() == 1
    assert fresh.description == ""


def test_it_refuses_cancel_and_control_without_a_grant_and_allows_them_with_one(
    prod_stack, protected, developer, owner, acme
):
    """A developer without a grant on the protected environment can neither cancel its
    deployment nor stop / start / restart its stack (page and API); once granted, both."""
    from apps.audit.models import AuditEvent
    from apps.deployments import services as deployments
    from apps.deployments.choices import DeploymentStatus
    from apps.environments.services import grant_deploy
    from apps.stacks import control

    queued = deployments.request_deployment(member(owner, acme), prod_stack)
    page = client_for(developer, acme)
    api = api_client(developer, acme)
    assert page.post(f"/deployments/{queued.pk}/cancel/").status_code == 403
    response = api.post(f"/api/v1/deployments/{queued.pk}/cancel/")
    assert response.status_code == 403
    assert error_of(response)["code"] == "permission_denied"
    with pytest.raises(Forbidden):
        deployments.cancel_deployment(member(developer, acme), queued)
    queued.refresh_from_db()
    assert (queued.status, queued.cancel_requested_at) == (DeploymentStatus.QUEUED, None)

    deployments.cancel_deployment(member(owner, acme), queued)  # nothing active any more
    assert page.post("/stacks/shop/runtime/control/", {"action": "restart"}).status_code == 403
    response = api.post("/api/v1/stacks/shop/control/", {"action": "restart"}, format="json")
    assert response.status_code == 403
    assert error_of(response)["code"] == "permission_denied"
    with pytest.raises(Forbidden):
        control.request_control(member(developer, acme), prod_stack, "stop")
    assert not AuditEvent.objects.filter(action__in=["stack.restart", "stack.stop"]).exists()

    grant_deploy(member(owner, acme), protected, member(developer, acme))
    response = api.post("/api/v1/stacks/shop/control/", {"action": "restart"}, format="json")
    assert response.status_code == 202, response.content
    assert AuditEvent.objects.filter(action="stack.restart").count() == 1
    done = page.post("/stacks/shop/runtime/control/", {"action": "stop"})
    assert (done.status_code, done["Location"]) == (302, "/stacks/shop/")
    assert AuditEvent.objects.filter(action="stack.stop").count() == 1
    again = deployments.request_deployment(member(developer, acme), prod_stack)
    cancelled = deployments.cancel_deployment(member(developer, acme), again)
    assert cancelled.status == DeploymentStatus.CANCELLED
