"""The deployments API: create means deploy; cancel, resume, rollback; logs paged and
followed as NDJSON; one JSON error body for every refusal."""

import json

import pytest
from django.db import connection
from guardian.shortcuts import assign_perm

from apps.deployments import journal, services
from apps.deployments.api import views as deployments_api
from apps.deployments.choices import DeploymentStatus, ServicePhase
from apps.deployments.models import Deployment
from tests.base import APIViewTestMixin, api_client, error_of
from tests.deploying import make_world


class TestDeploymentAPI(APIViewTestMixin):
    """Creating a deployment deploys (queues) a stack."""

    list_url = "/api/v1/deployments/"
    minimum_write_role = "developer"
    create_payload = {"stack": "shop"}

    @pytest.fixture(autouse=True)
    def _stack(self, world):
        """The stack every payload names."""


@pytest.fixture
def protected(acme, owner):
    world = make_world(acme, owner, protected=True, name="bank")
    yield world
    connection.set_schema_to_public()


def test_it_deploys_on_create_and_answers_201(world, acme, developer):
    response = api_client(developer, acme).post(
        "/api/v1/deployments/", {"stack": "shop", "revision": 1}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["stack"], body["number"], body["revision"]) == ("shop", 1, 1)
    assert body["status"] == "queued" and body["kind"] == "deploy"
    assert body["environment"] == "staging" and body["target"] == "web-1"
    assert body["triggered_by"] == "developer@acme.test" and body["services"] == []
    latest = api_client(developer, acme).post("/api/v1/deployments/", {"stack": "shop"})
    assert latest.status_code == 201 and latest.json()["revision"] == 2


def test_it_answers_bad_deploy_requests_with_json_errors(world, acme, owner, viewer):
    client = api_client(owner, acme)
    unknown = client.post("/api/v1/deployments/", {"stack": "nope"}, format="json")
    assert unknown.status_code == 400 and "stack" in error_of(unknown)["fields"]
    no_revision = client.post(
        "/api/v1/deployments/", {"stack": "shop", "revision": 7}, format="json"
    )
    assert no_revision.status_code == 400 and "revision" in error_of(no_revision)["fields"]
    bad_type = client.post("/api/v1/deployments/", {"stack": "shop", "revision": "x"})
    assert bad_type.status_code == 400
    missing = client.post("/api/v1/deployments/", {}, format="json")
    assert "stack" in error_of(missing)["fields"]
    read_only = api_client(viewer, acme).post("/api/v1/deployments/", {"stack": "shop"})
    assert read_only.status_code == 403 and "read-only" in error_of(read_only)["message"]
    assert not Deployment.objects.exists()


def test_it_refuses_a_protected_environment_to_a_developer_without_grant(
    protected, acme, developer, operator
):
    response = api_client(developer, acme).post("/api/v1/deployments/", {"stack": "bank"})
    assert response.status_code == 403
    error = error_of(response)
    assert error["code"] == "permission_denied" and "production" in error["message"]
    assert (
        api_client(operator, acme).post("/api/v1/deployments/", {"stack": "bank"}).status_code
        == 201
    )
    connection.set_tenant(acme)
    assign_perm("deploy_environment", developer, protected.environment)
    granted = api_client(developer, acme).post("/api/v1/deployments/", {"stack": "bank"})
    assert granted.status_code == 201, granted.content


def test_it_lists_filters_and_retrieves_with_services_and_diagnosis(world, acme, viewer):
    first = services.request_deployment(world.membership, world.stack)
    journal.set_service(first, "web", phase=ServicePhase.FAILED, progress=60, message="exit 1")
    journal.finish(
        first,
        DeploymentStatus.FAILED,
        "port 8080 already allocated",
        {"code": "port_conflict", "summary": "port 8080 already allocated", "hint": "Free it."},
    )
    services.request_deployment(world.membership, world.stack)
    client = api_client(viewer, acme)
    listed = client.get("/api/v1/deployments/").json()
    assert listed["count"] == 2 and [d["number"] for d in listed["results"]] == [2, 1]
    failed = client.get("/api/v1/deployments/?status=failed&stack=shop").json()
    assert [d["number"] for d in failed["results"]] == [1]
    assert client.get("/api/v1/deployments/?stack=other").json()["count"] == 0
    assert client.get("/api/v1/deployments/?status=bogus").status_code == 400
    detail = client.get(f"/api/v1/deployments/{first.pk}/").json()
    assert detail["diagnosis"]["code"] == "port_conflict"
    assert detail["services"][0]["phase"] == "failed" and detail["finished"] is True
    missing = client.get("/api/v1/deployments/999999/")
    assert missing.status_code == 404 and error_of(missing)["code"] == "not_found"


def test_it_cancels_resumes_and_refuses_to_cancel_a_finished_one(world, acme, operator, viewer):
    deployment = services.request_deployment(world.membership, world.stack)
    refused = api_client(viewer, acme, scope="read").post(
        f"/api/v1/deployments/{deployment.pk}/cancel/"
    )
    assert refused.status_code == 403
    client = api_client(operator, acme)
    cancelled = client.post(f"/api/v1/deployments/{deployment.pk}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = client.post(f"/api/v1/deployments/{deployment.pk}/cancel/")
    assert again.status_code == 409
    assert error_of(again)["code"] == "deployment_finished"
    resumed = client.post(f"/api/v1/deployments/{deployment.pk}/resume/")
    assert resumed.status_code == 201
    assert resumed.json()["kind"] == "resume" and resumed.json()["resumed_from"] == deployment.pk
    active = client.post(f"/api/v1/deployments/{resumed.json()['id']}/resume/")
    assert active.status_code == 409 and error_of(active)["code"] == "deployment_active"


def test_it_rolls_back_only_to_a_revision_that_succeeded(world, acme, operator):
    good = services.request_deployment(
        world.membership, world.stack, world.stack.revisions.get(number=1)
    )
    client = api_client(operator, acme)
    never = client.post(f"/api/v1/deployments/{good.pk}/rollback/")
    assert never.status_code == 400 and "revision" in error_of(never)["fields"]
    connection.set_tenant(acme)
    Deployment.objects.filter(pk=good.pk).update(status=DeploymentStatus.SUCCEEDED)
    rollback = client.post(f"/api/v1/deployments/{good.pk}/rollback/")
    assert rollback.status_code == 201, rollback.content
    assert rollback.json()["kind"] == "rollback" and rollback.json()["revision"] == 1


def test_it_pages_the_log(world, acme, viewer):
    deployment = services.request_deployment(world.membership, world.stack)
    for n in range(1, 8):
        journal.append_log(deployment, f"line {n}", service="web")
    client = api_client(viewer, acme)
    url = f"/api/v1/deployments/{deployment.pk}/logs/"
    first = client.get(url, {"limit": 3}).json()
    assert [line["seq"] for line in first["lines"]] == [1, 2, 3]
    assert first["next_after"] == 3 and first["finished"] is False
    rest = client.get(url, {"after": first["next_after"], "limit": 100}).json()
    assert [line["seq"] for line in rest["lines"]] == [4, 5, 6, 7]
    empty = client.get(url, {"after": 7}).json()
    assert empty == {"lines": [], "next_after": 7, "finished": False}
    bad = client.get(url, {"after": -1, "limit": 0})
    assert bad.status_code == 400 and set(error_of(bad)["fields"]) == {"after", "limit"}


def test_it_streams_the_log_and_ends_with_the_status_when_finished(world, acme, viewer):
    deployment = services.request_deployment(world.membership, world.stack)
    for n in range(1, 4):
        journal.append_log(deployment, f"line {n}")
    journal.finish(deployment, DeploymentStatus.FAILED, "healthcheck failing")
    response = api_client(viewer, acme).get(
        f"/api/v1/deployments/{deployment.pk}/logs/", {"follow": "true", "after": 1}
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    rows = [json.loads(row) for row in response.getvalue().decode().splitlines()]
    assert [row["seq"] for row in rows[:-1]] == [2, 3]
    assert rows[-1]["status"]["status"] == "failed"
    assert rows[-1]["status"]["reason"] == "healthcheck failing"


def test_it_sends_keepalive_rows_while_the_log_is_quiet(world, acme, viewer, monkeypatch):
    """A deployment waiting in its health gate writes nothing for a while: the stream still
    sends a row every few seconds, so that a client's read timeout does not fire."""
    monkeypatch.setattr(deployments_api, "KEEPALIVE_SECONDS", 0.2)
    monkeypatch.setattr(deployments_api, "FOLLOW_MAX_SECONDS", 1.5)  # ends the stream here
    deployment = services.request_deployment(world.membership, world.stack)
    journal.append_log(deployment, "waiting for the health gate")
    response = api_client(viewer, acme).get(
        f"/api/v1/deployments/{deployment.pk}/logs/", {"follow": "true"}
    )
    rows = [json.loads(row) for row in response.getvalue().decode().splitlines()]
    assert rows[0]["message"] == "waiting for the health gate"
    assert rows[1:-1] and all(row == {"keepalive": True} for row in rows[1:-1]), rows
    assert rows[-1]["timeout"] is True


def test_it_keeps_deployments_inside_their_organisation(world, acme, globex, outsider):
    deployment = services.request_deployment(world.membership, world.stack)
    connection.set_schema_to_public()
    client = api_client(outsider, globex)
    assert client.get("/api/v1/deployments/").json()["count"] == 0
    for method, path in (
        ("get", f"/api/v1/deployments/{deployment.pk}/"),
        ("get", f"/api/v1/deployments/{deployment.pk}/logs/"),
        ("post", f"/api/v1/deployments/{deployment.pk}/cancel/"),
    ):
        response = getattr(client, method)(path)
        assert response.status_code == 404, (path, response.content)
    stolen = client.post("/api/v1/deployments/", {"stack": "shop"})
    assert stolen.status_code == 400 and "stack" in error_of(stolen)["fields"]


@pytest.mark.live
def test_it_follows_a_running_deployment_live_under_asgi(live_db):
    """The real ASGI path: an async stream that sees lines written while it is open."""
    import asyncio
    import time

    from apps.accounts.models import Membership
    from apps.accounts.services import create_api_token
    from tests.live import live_organization

    with live_organization() as mine:
        world = make_world(mine.organization, mine.owner)
        deployment = services.request_deployment(world.membership, world.stack)
        journal.append_log(deployment, "line 1")
        connection.set_schema_to_public()
        membership = Membership.objects.get(user=mine.owner, organization=mine.organization)
        _token, token = create_api_token(membership, name="follow", scope="read")

        second_written = []

        def worker():
            connection.set_tenant(mine.organization)
            try:
                time.sleep(0.6)
                second_written.append(time.monotonic())
                journal.append_log(deployment, "line 2")
                time.sleep(0.3)
                journal.append_log(deployment, "line 3")
                journal.finish(deployment, DeploymentStatus.SUCCEEDED)
            finally:
                connection.close()

        async def scenario():
            """A raw ASGI request to the real application, as uvicorn would send it."""
            from windflow.asgi import application

            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "GET",
                "scheme": "http",
                "path": f"/api/v1/deployments/{deployment.pk}/logs/",
                "raw_path": f"/api/v1/deployments/{deployment.pk}/logs/".encode(),
                "query_string": b"follow=true",
                "root_path": "",
                "headers": [
                    (b"host", mine.organization.primary_domain.encode()),
                    (b"authorization", f"Bearer {token}".encode()),
                ],
                "client": ("127.0.0.1", 50000),
                "server": ("127.0.0.1", 80),
            }
            requested = False
            done = asyncio.Event()
            status, rows = [], []
            writing = asyncio.get_running_loop().run_in_executor(None, worker)

            async def receive():
                nonlocal requested
                if not requested:
                    requested = True
                    return {"type": "http.request", "body": b"", "more_body": False}
                await done.wait()
                return {"type": "http.disconnect"}

            async def send(message):
                if message["type"] == "http.response.start":
                    status.append(message["status"])
                elif message["type"] == "http.response.body":
                    for row in message.get("body", b"").decode().splitlines():
                        rows.append((json.loads(row), time.monotonic()))
                    if not message.get("more_body"):
                        done.set()

            await asyncio.wait_for(application(scope, receive, send), timeout=20)
            await writing
            return status[0], rows

        status, rows = asyncio.run(scenario())
        connection.close()
    assert status == 200
    assert [row.get("seq") for row, _at in rows] == [1, 2, 3, None]
    # The stored line came at once: before the next one was even written.
    assert rows[0][1] < second_written[0], "stored lines come at once, before the new ones"
    assert rows[-1][0]["status"]["status"] == "succeeded"


ODD_BODIES = [
    [],
    "text",
    None,
    42,
    {"stack": None},
    {"stack": ["a"]},
    {"stack": {"nested": 1}},
    {"stack": "x" * 10_000},
    {"stack": "\x00bad"},
    {"stack": "shop", "revision": -1},
    {"stack": "shop", "revision": 10**30},
    {"stack": "shop", "revision": "two"},
]


@pytest.mark.parametrize("body", ODD_BODIES)
def test_it_answers_odd_bodies_with_a_clear_4xx(world, acme, owner, body):
    response = api_client(owner, acme).post("/api/v1/deployments/", body, format="json")
    assert 400 <= response.status_code < 500, response.content
    assert error_of(response)["message"]


def test_it_answers_odd_ids_and_queries_with_a_clear_4xx(world, acme, owner):
    deployment = services.request_deployment(world.membership, world.stack)
    client = api_client(owner, acme)
    assert client.get(f"/api/v1/deployments/{10**30}/").status_code == 404
    assert client.post(f"/api/v1/deployments/{10**30}/cancel/").status_code == 404
    logs = f"/api/v1/deployments/{deployment.pk}/logs/"
    for query in ({"after": 10**30}, {"limit": "many"}, {"follow": "perhaps"}):
        response = client.get(logs, query)
        assert response.status_code == 400, (query, response.content)
        assert error_of(response)["fields"]
