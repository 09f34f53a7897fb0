"""Redis away, without restarting anything: the settings point Redis clients at a port where
nothing listens (a real refused connection), as they meet it while Redis restarts. /healthz
says 503 naming it; pages and the API that do not need Redis keep working; the ones that do
answer a clear 503; a deployment's outcome is recorded even when its live update is lost;
the scheduler keeps going."""

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client, override_settings

from apps.deployments import journal
from apps.deployments.choices import DeploymentStatus
from apps.deployments.models import Deployment
from apps.environments.models import Environment
from apps.stacks.models import Stack, StackRevision
from apps.targets.models import Target
from tests.base import PASSWORD, PERSONAS, api_client, client_for, host_of, queued_messages


def nowhere() -> str:
    from devtools import free_port

    return f"redis://127.0.0.1:{free_port()}/0"


def redis_away():
    """Every Redis client of the settings (cache, hot cache, channel layer) on a dead port."""
    url = nowhere()
    caches = {alias: dict(config, LOCATION=url) for alias, config in settings.CACHES.items()}
    layers = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": url, "socket_connect_timeout": 1}]},
        }
    }
    return override_settings(CACHES=caches, CHANNEL_LAYERS=layers)


def test_it_answers_healthz_503_naming_redis_when_redis_is_away(db):
    with redis_away():
        response = Client(raise_request_exception=False).get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert "redis" in body["failed"] and "database" not in body["failed"]
    assert body["checks"]["redis"].startswith("error: ")


def test_it_answers_healthz_on_an_organisation_host_when_redis_is_away(acme):
    with redis_away():
        response = Client(HTTP_HOST=host_of(acme), raise_request_exception=False).get("/healthz")
    assert response.status_code == 503
    assert "redis" in response.json()["failed"]


def test_it_keeps_serving_pages_that_do_not_need_redis(acme, owner):
    client = client_for(owner, acme)  # signed in before: the session is in PostgreSQL
    client.raise_request_exception = False
    with redis_away():
        response = client.get("/environments/")
    assert response.status_code == 200
    assert b"Environments" in response.content


def test_it_keeps_the_api_serving_when_redis_is_away(acme, owner):
    client = api_client(owner, acme)
    client.raise_request_exception = False
    with redis_away():
        response = client.get("/api/v1/environments/")
    assert response.status_code == 200, response.content


def test_it_answers_a_503_page_naming_redis_to_a_sign_in_that_needs_it(acme):
    client = Client(HTTP_HOST=host_of(acme), raise_request_exception=False)
    with redis_away():
        response = client.post(
            "/accounts/login/", {"login": PERSONAS["owner"][0], "password": PASSWORD}
        )
    assert response.status_code == 503
    assert response["Retry-After"]
    assert b"Redis is unavailable for a moment" in response.content


def test_it_answers_api_json_503_naming_redis_when_a_request_needs_it(acme, owner):
    client = Client(HTTP_HOST=host_of(acme), raise_request_exception=False)
    with redis_away():
        response = client.post(
            "/api/v1/auth/token/",
            {"email": PERSONAS["owner"][0], "password": PASSWORD},
            content_type="application/json",
        )
    if response.status_code == 404:
        pytest.fail("no JWT endpoint at /api/v1/auth/token/: name the one that exists")
    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "redis_unavailable"


@pytest.fixture
def stack(in_acme):
    environment = Environment.objects.create(name="staging", slug="staging")
    # A server on paper (nothing is deployed here): its row is all the stack needs.
    target = Target.objects.create(name="paper", kind="ssh", host="192.0.2.1", user="deploy")
    stack = Stack.objects.create(name="faults-publish", environment=environment, target=target)
    StackRevision.objects.create(stack=stack, number=1, compose="services: {}\n")
    return stack


def running(stack) -> Deployment:
    deployment = Deployment.objects.create(
        stack=stack,
        number=stack.deployments.count() + 1,
        revision=stack.latest_revision,
        target=stack.target,
        environment=stack.environment,
    )
    Deployment.objects.filter(pk=deployment.pk).update(status=DeploymentStatus.RUNNING)
    deployment.refresh_from_db()
    return deployment


def test_it_records_the_outcome_and_wakes_the_next_when_the_live_update_is_lost(
    stack, django_capture_on_commit_callbacks
):
    deployment = running(stack)
    following = Deployment.objects.create(
        stack=stack,
        number=2,
        revision=stack.latest_revision,
        target=stack.target,
        environment=stack.environment,
    )
    with redis_away(), django_capture_on_commit_callbacks(execute=True):
        journal.append_log(deployment, "a line nobody sees live")
        assert journal.finish(deployment, DeploymentStatus.SUCCEEDED) is True
    deployment.refresh_from_db()
    assert deployment.status == DeploymentStatus.SUCCEEDED
    assert deployment.finished_at is not None
    assert deployment.lines.filter(message="a line nobody sees live").exists()
    # The publishes failed quietly and the hooks after them ran: the next one is on its way.
    assert ("run_deployment", (following.pk,), connection.schema_name) in queued_messages()


def test_it_never_overwrites_an_outcome_already_recorded(stack):
    deployment = running(stack)
    assert journal.finish(deployment, DeploymentStatus.FAILED, "worker lost") is True
    late = Deployment.objects.get(pk=deployment.pk)
    late.status = DeploymentStatus.RUNNING  # what a runner that went on still believes
    assert journal.finish(late, DeploymentStatus.SUCCEEDED) is False
    deployment.refresh_from_db()
    assert deployment.status == DeploymentStatus.FAILED
    assert deployment.reason == "worker lost"


def test_it_keeps_the_scheduler_going_while_redis_refuses(db):
    import redis

    from windflow import scheduler
    from windflow.resilience import Backoff

    client = redis.Redis.from_url(nowhere(), socket_connect_timeout=1)
    scheduler.run(
        client, "test:1", tick=0, max_ticks=4, backoff=Backoff(first=0.01, ceiling=0.02)
    )  # returns after its ticks: it did not die


async def _open_socket(host: str, cookie: str) -> tuple[bool, int | None]:
    from channels.testing import WebsocketCommunicator

    from windflow.asgi import application

    headers = [
        (b"host", host.encode()),
        (b"origin", f"http://{host}".encode()),
        (b"cookie", cookie.encode()),
    ]
    socket = WebsocketCommunicator(application, "/ws/deployments/999999/", headers=headers)
    try:
        return await socket.connect(timeout=10)
    finally:
        await socket.disconnect()


@pytest.mark.live
def test_it_closes_a_websocket_with_try_again_later_when_redis_is_away(live_db):
    import asyncio

    from tests.live import live_organization, session_cookie_for

    with live_organization() as world:
        host = world.organization.primary_domain
        cookie = session_cookie_for(world.owner)  # in PostgreSQL: good with or without Redis
        # Redis here: signed in and allowed, then no such deployment (4404).
        assert asyncio.run(_open_socket(host, cookie)) == (False, 4404)
        with redis_away():
            assert asyncio.run(_open_socket(host, cookie)) == (False, 1013)
