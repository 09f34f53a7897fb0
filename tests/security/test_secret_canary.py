"""Secret canary: a secret with a unique value is used by stacks that print it in every way
or break with it, really deployed on the test Docker engine: echoed to stdout and stderr,
base64-encoded, dumped with `env`, printed by a failing healthcheck (the deployment rolls
back), printed by a crashing container, and interpolated into an image name (the pull
fails). Then every path a member reads is fetched (container logs through the page, the JSON
tail and the websocket; deployment pages, API and websocket; stacks; notifications; audit
pages, API and exports), and the value is looked for, in every encoding the redaction knows,
in every text and JSON column of every table of every schema, in every Redis key and value,
in every answer fetched, in the e-mails sent and in the log records. There must be none."""

from __future__ import annotations

import asyncio
import uuid

import docker
import pytest
from django.core import mail
from django.core.cache import cache
from django.db import connection
from django.test import Client

from apps.accounts.models import Membership
from apps.deployments import services as deployments
from apps.deployments.choices import DeploymentStatus
from apps.environments.models import Environment
from apps.secrets import services as secrets
from apps.stacks import runtime
from apps.stacks import services as stacks
from apps.targets import services as targets
from apps.tenants.models import IndexedDeployment
from devtools import remove_compose_project
from tests.base import api_client, host_of, run_queued_jobs
from tests.live import live_organization, session_cookie_for
from tests.security.leaks import Transcript, found_in, scan_database, scan_redis
from tests.security.world import give_test_engine
from windflow.redaction import MASK, RedactingFilter

pytestmark = pytest.mark.live


def printing(image: str) -> str:
    """Prints the secret every way, then stays up (healthy: no healthcheck)."""
    script = (
        "echo canary=$$CANARY; echo $$CANARY | base64; printf %s $$CANARY | base64; "
        "echo stderr $$CANARY >&2; env; exec sleep 3600"
    )
    return f"""services:
  echo:
    image: {image}
    environment:
      CANARY: ${{CANARY}}
    command: ["sh", "-c", "{script}"]
"""


def failing_healthcheck(image: str) -> str:
    return f"""services:
  echo:
    image: {image}
    environment:
      CANARY: ${{CANARY}}
    command: ["sh", "-c", "exec sleep 3600"]
    healthcheck:
      test: ["CMD", "sh", "-c", "echo health $$CANARY; echo $$CANARY | base64; exit 1"]
      interval: 1s
      timeout: 2s
      retries: 1
"""


def crashing(image: str) -> str:
    return f"""services:
  crash:
    image: {image}
    environment:
      CANARY: ${{CANARY}}
    command: ["sh", "-c", "echo crash $$CANARY >&2; env >&2; exit 1"]
"""


def image_named(registry_url: str) -> str:
    return f"""services:
  app:
    image: {registry_url}/${{CANARY}}:1
"""


def deploy(membership, stack, revision=None):
    deployment = deployments.request_deployment(membership, stack, revision)
    run_queued_jobs()  # the deployment, then what it queued (notifications, e-mails)
    run_queued_jobs()
    deployment.refresh_from_db()
    return deployment


def raw_container_logs(project: str) -> str:
    """The engine's own logs of the project's containers (what WindFlow must mask)."""
    client = docker.from_env()
    try:
        found = client.containers.list(
            all=True, filters={"label": f"com.docker.compose.project={project}"}
        )
        return "\n".join(c.logs(stdout=True, stderr=True).decode(errors="replace") for c in found)
    finally:
        client.close()


async def socket_messages(host: str, cookie: str, path: str) -> tuple[bool, list[str]]:
    from channels.testing import WebsocketCommunicator

    from windflow.asgi import application

    headers = [(b"host", host.encode()), (b"origin", f"http://{host}".encode())]
    headers.append((b"cookie", cookie.encode()))
    ws = WebsocketCommunicator(application, path, headers=headers)
    connected, _code = await ws.connect(timeout=10)
    messages = []
    if connected:
        while not await ws.receive_nothing(timeout=1.5):
            messages.append(await ws.receive_from())
    await ws.disconnect()
    return connected, messages


def fetch_everything(world, viewer, made, transcript: Transcript) -> None:
    """Every page, API answer and socket a member reads about these stacks."""
    organization = world.organization
    host = host_of(organization)
    tenant = connection.tenant
    owner_pages = Client(HTTP_HOST=host)
    owner_pages.force_login(world.owner)
    viewer_pages = Client(HTTP_HOST=host)
    viewer_pages.force_login(viewer)
    viewer_api = api_client(viewer, organization, scope="read")
    pages = ["/", "/notifications/", "/notifications/unread/", "/audit/"]
    pages += ["/audit/export.csv", "/audit/export.jsonl", "/deployments/", "/stacks/"]
    api = ["/api/v1/deployments/", "/api/v1/stacks/", "/api/v1/audit-events/", "/api/v1/secrets/"]
    connection.set_tenant(organization)
    for stack, deployment_list in made:
        pages += [f"/stacks/{stack.name}/", f"/stacks/{stack.name}/revisions/"]
        pages += [f"/stacks/{stack.name}/runtime/", f"/stacks/{stack.name}/settings/"]
        api += [f"/api/v1/stacks/{stack.name}/", f"/api/v1/stacks/{stack.name}/revisions/"]
        api += [f"/api/v1/stacks/{stack.name}/runtime/"]
        for revision in stack.revisions.all():
            pages.append(f"/stacks/{stack.name}/revisions/{revision.number}/")
            api.append(f"/api/v1/stacks/{stack.name}/revisions/{revision.number}/")
        for deployment in deployment_list:
            for suffix in ("", "status/", "log/"):
                pages.append(f"/deployments/{deployment.pk}/{suffix}")
            api += [f"/api/v1/deployments/{deployment.pk}/"]
            api += [f"/api/v1/deployments/{deployment.pk}/logs/"]
            api += [f"/api/v1/deployments/{deployment.pk}/logs/?follow=true"]
        for service in runtime.runtime_status(stack):
            for item in service.get("containers", []):
                base = f"/stacks/{stack.name}/runtime/containers/{item['id']}/logs/"
                pages += [base, base + "tail/"]
                api.append(f"/api/v1/stacks/{stack.name}/logs/?container={item['id']}&tail=500")
    try:
        for path in pages:
            for who, client in (("owner", owner_pages), ("viewer", viewer_pages)):
                response = transcript.add_response(f"{who} GET {path}", client.get(path))
                assert response.status_code < 500, (path, response.status_code)
        for path in api:
            response = transcript.add_response(f"viewer API GET {path}", viewer_api.get(path))
            assert response.status_code < 500, (path, response.status_code)
    finally:
        connection.set_tenant(tenant)
    fetch_sockets(world, viewer, made, transcript)


def fetch_sockets(world, viewer, made, transcript: Transcript) -> None:
    host = host_of(world.organization)
    cookie = session_cookie_for(viewer)
    paths = []
    connection.set_tenant(world.organization)
    for stack, deployment_list in made:
        paths += [f"/ws/deployments/{deployment.pk}/" for deployment in deployment_list]
        for service in runtime.runtime_status(stack):
            for item in service.get("containers", []):
                paths.append(f"/ws/stacks/{stack.name}/containers/{item['id']}/logs/?tail=500")
    connection.set_schema_to_public()
    assert any("/containers/" in path for path in paths)
    for path in paths:
        connected, messages = asyncio.run(socket_messages(host, cookie, path))
        assert connected, f"the viewer was refused on {path}"
        transcript.add(f"viewer socket {path}", "\n".join(messages))


def fetch_operator_console(live_db, transcript: Transcript) -> None:
    """The platform operator's pages across organisations (the operator index)."""
    operator = live_db.create_user(f"ops-{uuid.uuid4().hex[:6]}@windflow.test", "pw-1234567")
    operator.is_staff = operator.is_superuser = True
    operator.save(update_fields=["is_staff", "is_superuser"])
    client = Client(HTTP_HOST=host_of(None))
    client.force_login(operator)
    for model in ("organization", "indexeddeployment", "offlineserver", "securityevent"):
        path = f"/admin/tenants/{model}/"
        response = transcript.add_response(f"operator GET {path}", client.get(path))
        assert response.status_code == 200, (path, response.status_code)


def test_it_stores_and_shows_a_secret_in_clear_nowhere(live_db, test_images, caplog):
    canary = f"canary-{uuid.uuid4().hex}"
    suffix = uuid.uuid4().hex[:6]
    busybox = test_images["busybox:1"]
    registry_url = busybox.split("/", 1)[0]
    transcript = Transcript()
    # Log records as WindFlow's handlers write them (LOGGING: the redacting filter on every
    # handler), at the most talkative level an operator may choose.
    caplog.handler.addFilter(RedactingFilter())
    caplog.set_level("DEBUG")
    mail.outbox = []
    names = {k: f"canary-{k}-{suffix}" for k in ("print", "crash", "image")}
    for project in names.values():
        remove_compose_project(project)
    try:
        with live_organization(members=(("viewer", "viewer"),)) as world:
            organization, (viewer,) = world.organization, world.others
            give_test_engine(organization)
            connection.set_tenant(organization)
            membership = Membership.objects.get(user=world.owner, organization=organization)
            environment = Environment.objects.create(name="staging", slug="staging")
            target = targets.create_target(membership, name="canary-srv", kind="local")
            secrets.create_secret(membership, name="CANARY", value=canary)

            def stack(key, compose, grace_period=0):
                return stacks.create_stack(
                    membership,
                    name=names[key],
                    environment=environment,
                    target=target,
                    compose=compose,
                    secrets=["CANARY"],
                    health_timeout=20,
                    grace_period=grace_period,
                )

            printer = stack("print", printing(busybox))
            printed = deploy(membership, printer)
            assert printed.status == DeploymentStatus.SUCCEEDED, printed.reason
            revision = stacks.revise_stack(
                membership, printer, compose=failing_healthcheck(busybox), secrets=["CANARY"]
            )
            unhealthy = deploy(membership, printer, revision)
            assert unhealthy.status != DeploymentStatus.SUCCEEDED
            assert printer.deployments.filter(kind="rollback").exists() or (
                unhealthy.rolled_back_to_id is not None
            ), "the failing healthcheck did not roll back"
            rollbacks = list(printer.deployments.exclude(pk__in=[printed.pk, unhealthy.pk]))
            crasher = stack("crash", crashing(busybox), grace_period=3)  # seen to exit
            crashed = deploy(membership, crasher)
            assert crashed.status == DeploymentStatus.FAILED
            misnamed = stack("image", image_named(registry_url))
            pulled = deploy(membership, misnamed)
            assert pulled.status == DeploymentStatus.FAILED
            printer.refresh_from_db()
            # The control: the containers really printed it, so masking had work to do.
            assert found_in(raw_container_logs(names["print"]), canary)
            connection.set_schema_to_public()
            # The operator index mirrors the failures with their reasons (its text columns
            # are in the scan below, and so are the console's pages).
            indexed = IndexedDeployment.objects.filter(organization=organization)
            reasons = dict(indexed.values_list("deployment_id", "reason"))
            assert reasons.get(crashed.pk) and reasons.get(pulled.pk), reasons
            fetch_operator_console(live_db, transcript)

            made = [
                (printer, [printed, unhealthy, *rollbacks]),
                (crasher, [crashed]),
                (misnamed, [pulled]),
            ]
            fetch_everything(world, viewer, made, transcript)
            run_queued_jobs()
            for message in mail.outbox:
                transcript.add(f"e-mail to {message.to}: {message.subject}", str(message.message()))
            transcript.add("log records", caplog.text)

            leaks = scan_database(canary) + scan_redis(canary) + transcript.scan(canary)
            assert not leaks, f"the canary secret is in clear in {len(leaks)} places:\n" + (
                "\n".join(leaks)
            )
            # The controls: what was fetched shows the masked value where it was printed...
            masked = {label for label, text in transcript.texts if MASK in text}
            for path in ("/runtime/containers/", "/logs/?container=", "socket /ws/stacks/"):
                assert any(path in label for label in masked), f"nothing masked in {path}"
            # ... and the scans do find what is stored in clear.
            cache.set(f"security-control-{suffix}", f"control {names['print']}", 60)
            assert any("stacks_stack.name" in place for place in scan_database(names["print"]))
            assert any("security-control" in place for place in scan_redis(names["print"]))
            cache.delete(f"security-control-{suffix}")
    finally:
        connection.set_schema_to_public()
        for project in names.values():
            remove_compose_project(project)
