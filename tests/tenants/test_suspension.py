"""A suspended organisation reads but changes nothing, on every path: its pages (with a
banner), its API, its jobs, the scheduler and its websockets (apps.tenants.suspension)."""

import asyncio

import dramatiq
import pytest
from django.db import connection
from django_tenants.utils import tenant_context
from dramatiq.common import dq_name
from dramatiq.middleware import SkipMessage

from apps.accounts.models import User
from apps.deployments import services as deployments
from apps.deployments.choices import DeploymentStatus
from apps.deployments.models import Deployment
from apps.environments.models import Environment
from apps.targets.tasks import sweep_targets
from apps.tenants import services
from tests.base import PASSWORD, api_client, client_for, error_of, queued_messages
from windflow import scheduler
from windflow.workers import TENANT_OPTION, TenantMiddleware

REASON = "Unpaid invoice 42"


@pytest.fixture
def staff(db):
    return User.objects.create_superuser("ops@windflow.test", PASSWORD)


def suspend(organization, staff):
    services.suspend_organization(organization, reason=REASON, actor=staff)
    organization.refresh_from_db()
    connection.set_schema_to_public()


def test_it_shows_members_a_banner_with_the_reason_and_whom_to_contact(acme, staff, viewer):
    client = client_for(viewer, acme)
    assert 'data-testid="suspension-banner"' not in client.get("/").content.decode()

    suspend(acme, staff)

    for path in ("/", "/environments/", "/deployments/"):
        response = client.get(path)
        assert response.status_code == 200, path
        page = response.content.decode()
        assert 'data-testid="suspension-banner"' in page, path
        assert REASON in page and "support@windflow.local" in page


def test_it_refuses_every_change_on_the_pages_with_the_reason(acme, staff, owner):
    suspend(acme, staff)
    client = client_for(owner, acme)

    response = client.post("/environments/add/", {"name": "production", "kind": "prod"})
    assert response.status_code == 403
    assert f"Acme is suspended ({REASON})" in response.content.decode()
    htmx = client.post(
        "/environments/add/", {"name": "prod-2", "kind": "prod"}, HTTP_HX_REQUEST="true"
    )
    # htmx swaps no 4xx: the page reloads and shows the reason among its messages.
    assert htmx.status_code == 403 and htmx["HX-Refresh"] == "true"
    assert f"Acme is suspended ({REASON})" in client.get("/environments/").content.decode()
    with tenant_context(acme):
        assert not Environment.objects.filter(slug__in=["production", "prod-2"]).exists()
    # The person's own account stays theirs: signing out works.
    assert client.post("/accounts/logout/").status_code == 302


def test_it_lets_pages_change_things_again_once_reactivated(acme, staff, owner):
    suspend(acme, staff)
    services.reactivate_organization(acme, actor=staff)

    response = client_for(owner, acme).post("/environments/add/", {"name": "prod", "kind": "prod"})
    assert response.status_code == 302
    assert (
        'data-testid="suspension-banner"' not in client_for(owner, acme).get("/").content.decode()
    )


def test_it_answers_api_writes_with_a_json_refusal_and_reads_normally(acme, staff, owner):
    client = api_client(owner, acme)
    suspend(acme, staff)

    assert client.get("/api/v1/environments/").status_code == 200
    response = client.post("/api/v1/environments/", {"name": "prod"}, format="json")
    assert response.status_code == 403
    error = error_of(response)
    assert error["code"] == "organization_suspended"
    assert REASON in error["message"]
    for method in ("put", "patch", "delete"):
        response = getattr(client, method)("/api/v1/environments/staging/", {}, format="json")
        assert error_of(response)["code"] == "organization_suspended", method
    with tenant_context(acme):
        assert not Environment.objects.filter(slug="prod").exists()


def test_it_leaves_the_api_sign_in_open_to_read(acme, staff, owner):
    suspend(acme, staff)
    response = api_client(None, acme).post(
        "/api/v1/auth/token/", {"email": owner.email, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.content
    access = response.json()["access"]
    assert api_client(None, acme, token=access).get("/api/v1/environments/").status_code == 200


def waiting(actor_name):
    broker = dramatiq.get_broker()
    for queue in sorted(broker.get_declared_queues()):
        consumer = broker.consume(queue, prefetch=100, timeout=50)
        try:
            for message in consumer:
                if message is None:
                    break
                if message.actor_name == actor_name:
                    return message
        finally:
            consumer.close()
    raise AssertionError(f"no {actor_name} message queued")


def delayed_messages(queue):
    broker = dramatiq.get_broker()
    return [
        dramatiq.Message.decode(data)
        for data in broker.client.hvals(f"{broker.namespace}:{dq_name(queue)}.msgs")
    ]


def test_it_skips_the_jobs_of_a_suspended_organisation(
    acme, staff, membership, make_stack, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        deployment = deployments.request_deployment(membership, make_stack())
    connection.set_schema_to_public()
    suspend(acme, staff)
    message = waiting("run_deployment")

    with pytest.raises(SkipMessage):
        TenantMiddleware().before_process_message(dramatiq.get_broker(), message)

    assert connection.schema_name == "public"
    with tenant_context(acme):
        assert Deployment.objects.get(pk=deployment.pk).status == DeploymentStatus.QUEUED
    # It waits, sent again with a delay, to run once the organisation is reactivated.
    delayed = delayed_messages("deployments")
    assert [(m.actor_name, m.args, m.message_id) for m in delayed] == [
        ("run_deployment", (deployment.pk,), message.message_id)
    ]
    assert delayed[0].options[TENANT_OPTION] == acme.schema_name


def test_it_runs_the_jobs_again_once_reactivated(
    acme, staff, membership, make_stack, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        deployments.request_deployment(membership, make_stack())
    connection.set_schema_to_public()
    suspend(acme, staff)
    services.reactivate_organization(acme, actor=staff)
    message = waiting("run_deployment")

    TenantMiddleware().before_process_message(dramatiq.get_broker(), message)
    try:
        assert connection.schema_name == acme.schema_name
    finally:
        connection.set_schema_to_public()


def test_it_schedules_no_sweep_for_a_suspended_organisation(acme, globex, staff):
    suspend(acme, staff)
    scheduler.enqueue_in_every_organization(sweep_targets)
    assert {schema for _actor, _args, schema in queued_messages()} == {globex.schema_name}


@pytest.mark.live
def test_it_refuses_websockets_and_closes_open_ones(live_db):
    from channels.testing import WebsocketCommunicator

    from tests.live import live_organization, session_cookie_for
    from windflow.asgi import application

    staff = User.objects.create_superuser("ops-ws@live.test", PASSWORD)
    live_db.track_user(staff.email)

    def communicator(host, cookie):
        headers = [(b"host", host.encode()), (b"origin", f"http://{host}".encode())]
        headers.append((b"cookie", cookie.encode()))
        return WebsocketCommunicator(application, "/ws/notifications/", headers=headers)

    with live_organization() as world:
        host = world.organization.primary_domain
        cookie = session_cookie_for(world.owner)

        def suspend_in_thread():
            try:
                services.suspend_organization(world.organization, reason=REASON, actor=staff)
            finally:
                connection.close()

        async def scenario():
            opened = communicator(host, cookie)
            assert (await opened.connect())[0]
            await asyncio.get_running_loop().run_in_executor(None, suspend_in_thread)
            closed = await opened.receive_output(timeout=5)
            later = communicator(host, cookie)
            accepted = await later.connect()
            return closed, accepted, await later.receive_output(timeout=5)

        closed, accepted, later = asyncio.run(scenario())
        connection.set_schema_to_public()

    assert closed == {"type": "websocket.close", "code": 4403}
    # A new one is accepted then closed, so that the page reads the code and polls instead.
    assert accepted[0] and later == {"type": "websocket.close", "code": 4403}


def test_it_shows_the_banner_and_the_refusal_in_french(acme, staff, viewer):
    viewer.language = "fr"
    viewer.save()
    suspend(acme, staff)
    client = client_for(viewer, acme)

    page = client.get("/environments/").content.decode()
    assert "Acme est suspendue (depuis le" in page
    assert "Pour lever la suspension, contactez support@windflow.local." in page
    refused = client.post("/environments/add/", {"name": "prod", "kind": "prod"})
    assert f"Acme est suspendue ({REASON})" in refused.content.decode()


def test_it_decides_a_refusal_without_a_query(acme, staff, django_assert_max_num_queries):
    """The check reads the organisation the host cache holds: once the host is cached, a
    refused write costs no query but the search path that activating any host sets."""
    suspend(acme, staff)
    client = api_client(None, acme)
    assert client.get("/api/v1/environments/").status_code == 401  # the host entry is cached
    with django_assert_max_num_queries(1) as queries:
        response = client.post("/api/v1/environments/", {"name": "x"}, format="json")
    assert [q["sql"] for q in queries.captured_queries] == ['SET search_path = "acme","public"']
    assert error_of(response)["code"] == "organization_suspended"
