"""Shared test bases: the world (two organisations and personas), clients bound to a host,
running queued jobs in-process, and generic view/API test mixins."""

from __future__ import annotations

import json
import os

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

PASSWORD = "correct horse battery staple"

# key: (email, organisation slug, role). `outsider` owns globex and has no role in acme.
PERSONAS = {
    "owner": ("owner@acme.test", "acme", "owner"),
    "admin": ("admin@acme.test", "acme", "admin"),
    "operator": ("operator@acme.test", "acme", "operator"),
    "developer": ("developer@acme.test", "acme", "developer"),
    "viewer": ("viewer@acme.test", "acme", "viewer"),
    "outsider": ("outsider@globex.test", "globex", "owner"),
}


TEST_ENGINE = "test-engine"

# The system user the session sshd (tests/conftest.py) lets in without Docker access.
NODOCKER_USER = "wf-nodocker"


def require_root(what: str) -> None:
    """Skip the calling test or fixture, saying why, when the run is not root: `what` (a
    private sshd that logs users in, useradd, starting dockerd...) needs root. CI runs as root
    with WINDFLOW_FAIL_ON_SKIP=1, which turns any skip into a failure."""
    if os.geteuid() != 0:
        pytest.skip(f"{what} needs root (this run is uid {os.geteuid()})")


# A stack's compose file for tests that do not deploy (nginx is never pulled): one service
# that reads an environment variable (staging defines GREETING).
COMPOSE = """services:
  web:
    image: nginx:1.27
    restart: unless-stopped
    environment:
      GREETING: ${GREETING}
"""


def has_column(schema: str, table: str, column: str) -> bool:
    """Whether `schema`'s `table` has `column` (what a migration did there)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = %s AND column_name = %s",
            [schema, table, column],
        )
        return cursor.fetchone() is not None


def member(user, organization):
    """The Membership of `user` in `organization` (the actor services take)."""
    from apps.accounts.models import Membership

    return Membership.objects.get(user=user, organization=organization)


def build_world() -> None:
    """Two organisations created through the real provisioning service, with personas."""
    from apps.accounts.models import Membership, User
    from apps.tenants.services import create_organization

    users = {
        key: User.objects.create_user(email, PASSWORD, full_name=key.title())
        for key, (email, _slug, _role) in PERSONAS.items()
    }
    acme = create_organization(name="Acme", slug="acme", owner=users["owner"])
    create_organization(name="Globex", slug="globex", owner=users["outsider"])
    for key, (_email, slug, role) in PERSONAS.items():
        if slug == "acme" and key != "owner":
            Membership.objects.create(user=users[key], organization=acme, role=role)
    # Platform staff gave acme (only) the test Docker engine: its `local` servers use it.
    from apps.tenants.models import LocalEngine
    from devtools import tests_engine_socket

    engine = LocalEngine.objects.create(name=TEST_ENGINE, socket_path=tests_engine_socket())
    engine.organizations.add(acme)


def host_of(organization) -> str:
    return organization.primary_domain if organization else settings.WINDFLOW_BASE_DOMAIN


def client_for(user=None, organization=None) -> Client:
    """A browser-like client on the organisation's host (public host when None)."""
    client = Client(HTTP_HOST=host_of(organization))
    if user is not None:
        client.force_login(user)
    return client


def support_client(staff, organization, *, read_write=False, reason="Ticket 42") -> Client:
    """Platform staff at the organisation's host through a support access, opened as the
    platform admin opens it: the single-use token POSTed to the host's handoff."""
    from apps.accounts.services import start_support_access, support_handoff

    grant = start_support_access(staff, organization, reason=reason, read_write=read_write)
    _action, token = support_handoff(grant)
    client = Client(HTTP_HOST=host_of(organization))
    response = client.post("/accounts/handoff/", {"token": token})
    assert response.status_code == 302, response.content
    client.grant = grant
    return client


def api_client(user=None, organization=None, *, scope="write", token=None) -> APIClient:
    """An API client authenticated with a real personal access token of `user`."""
    from apps.accounts.models import Membership
    from apps.accounts.services import create_api_token

    client = APIClient(HTTP_HOST=host_of(organization))
    if token is None and user is not None:
        membership = Membership.objects.get(user=user, organization=organization)
        scope = "read" if membership.role == "viewer" and scope == "write" else scope
        _token, token = create_api_token(membership, name="test", scope=scope)
    if token is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def flush_redis() -> None:
    from django_redis import get_redis_connection

    get_redis_connection("default").flushall()


def run_queued_jobs(limit: int = 100) -> list[str]:
    """Process the messages waiting in the real Redis queues, here in the test's thread and
    transaction, through WindFlow's tenant middleware. Returns the actor names run."""
    import dramatiq

    from windflow.workers import TenantMiddleware

    broker = dramatiq.get_broker()
    tenant_middleware = TenantMiddleware()
    tenant_before = connection.tenant
    ran = []
    for queue in sorted(broker.get_declared_queues()):
        consumer = broker.consume(queue, prefetch=limit, timeout=50)
        try:
            for message in consumer:
                if message is None or len(ran) >= limit:
                    break
                tenant_middleware.before_process_message(broker, message)
                try:
                    broker.get_actor(message.actor_name)(*message.args, **message.kwargs)
                finally:
                    tenant_middleware.after_process_message(broker, message)
                consumer.ack(message)
                ran.append(message.actor_name)
        finally:
            consumer.close()
    connection.set_tenant(tenant_before)  # the middleware leaves the public schema active
    return ran


def queued_messages() -> list[tuple[str, tuple, str]]:
    """What waits in the real Redis queues, without taking it: (actor name, args, the schema
    the job will run in) for each message."""
    import dramatiq
    from dramatiq import Message

    from windflow.workers import TENANT_OPTION

    broker = dramatiq.get_broker()
    found = []
    for queue in sorted(broker.get_declared_queues()):
        for data in broker.client.hvals(f"{broker.namespace}:{queue}.msgs"):
            message = Message.decode(data)
            found.append(
                (message.actor_name, tuple(message.args), message.options.get(TENANT_OPTION))
            )
    return found


def error_of(response) -> dict:
    """The API's one error body: {"error": {"status", "code", "message", "fields"?}}."""
    body = json.loads(response.content)
    assert set(body) == {"error"}, body
    assert body["error"]["status"] == response.status_code
    return body["error"]


ROLES = ("viewer", "developer", "operator", "admin", "owner")


def roles_from(minimum: str) -> set[str]:
    """The roles at or above `minimum`."""
    return set(ROLES[ROLES.index(minimum) :])


class APIReadTestMixin:
    """Generic checks of an organisation's API resource that every app's API gets: a
    credential is required, members from `minimum_read_role` list it (the others get 403),
    and a token of another organisation is refused. Use ReadOnlyAPITestMixin or
    APIViewTestMixin, which add the writes."""

    list_url = ""
    minimum_read_role = "viewer"

    def test_it_requires_a_credential(self, acme):
        response = api_client(None, acme).get(self.list_url)
        assert response.status_code == 401
        assert error_of(response)["code"] == "not_authenticated"

    def test_it_lists_for_members_from_the_minimum_role(self, acme):
        from apps.accounts.models import User

        allowed = roles_from(self.minimum_read_role)
        for key in ROLES:
            user = User.objects.get(email=PERSONAS[key][0])
            response = api_client(user, acme, scope="read").get(self.list_url)
            if key in allowed:
                assert response.status_code == 200, (key, response.content)
                assert "results" in response.json()
            else:
                assert response.status_code == 403, (key, response.content)
                assert error_of(response)["code"] == "permission_denied"

    def test_it_refuses_a_token_of_another_organisation(self, acme, globex, outsider):
        _client = api_client(outsider, globex)
        token = _client._credentials["HTTP_AUTHORIZATION"].split()[1]
        response = api_client(None, acme, token=token).get(self.list_url)
        assert response.status_code == 401
        assert "organisation" in error_of(response)["message"]


class ReadOnlyAPITestMixin(APIReadTestMixin):
    """APIReadTestMixin for a resource nobody creates through the API: a POST answers 405.

    class TestAuditEventAPI(ReadOnlyAPITestMixin):
        list_url = "/api/v1/audit-events/"
        minimum_read_role = "admin"
    """

    def test_it_answers_writes_to_a_read_only_resource_with_405(self, acme, owner):
        response = api_client(owner, acme).post(self.list_url, {}, format="json")
        assert response.status_code == 405
        assert error_of(response)["status"] == 405


class APIViewTestMixin(APIReadTestMixin):
    """APIReadTestMixin, and the writes: a test class declares the URL, a valid payload
    and the least role that may create, and gets persona, scope and bad-input tests.

        class TestEnvironmentAPI(APIViewTestMixin):
            list_url = "/api/v1/environments/"
            create_payload = {"name": "qa", "kind": "dev"}
            minimum_write_role = "operator"
    """

    create_payload: dict = {}
    minimum_write_role = "operator"

    def test_it_refuses_writes_below_the_minimum_role(self, acme):
        from apps.accounts.models import User

        allowed = roles_from(self.minimum_write_role)
        for key in ROLES:
            user = User.objects.get(email=PERSONAS[key][0])
            response = api_client(user, acme).post(
                self.list_url, self.create_payload_for(key), format="json"
            )
            if key in allowed:
                assert response.status_code == 201, (key, response.content)
            else:
                assert response.status_code == 403, (key, response.content)
                assert error_of(response)["code"] == "permission_denied"

    def test_it_refuses_writes_with_a_read_token(self, acme, owner):
        response = api_client(owner, acme, scope="read").post(
            self.list_url, self.create_payload_for("owner"), format="json"
        )
        assert response.status_code == 403
        assert "read-only" in error_of(response)["message"]

    def test_it_answers_malformed_json_with_400(self, acme, owner):
        response = api_client(owner, acme).post(
            self.list_url, data="{not json", content_type="application/json"
        )
        assert response.status_code == 400
        assert error_of(response)["code"] == "parse_error"

    def create_payload_for(self, persona_key: str) -> dict:
        """A payload unique to the persona, so successive creates do not collide."""
        payload = dict(self.create_payload)
        if "name" in payload:
            payload["name"] = f"{payload['name']}-{persona_key}"
        return payload


def write_compose_plugin(plugins_dir) -> None:
    """A `docker compose` CLI plugin (it follows the plugin protocol, so the real docker CLI
    finds and runs it) answering `version`: Debian 12 ships no compose v2, and tests of
    "already prepared" servers need one."""
    from pathlib import Path

    plugins = Path(plugins_dir)
    plugins.mkdir(parents=True, exist_ok=True)
    plugin = plugins / "docker-compose"
    plugin.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = docker-cli-plugin-metadata ]; then\n'
        '  echo \'{"SchemaVersion":"0.1.0","Vendor":"Docker Inc.","Version":"v2.29.1",'
        '"ShortDescription":"Docker Compose"}\'\n'
        "  exit 0\n"
        "fi\n"
        'shift\n[ "$1" = version ] && echo "Docker Compose version v2.29.1"\n'
    )
    plugin.chmod(0o755)


def create_ssh_target(membership, sshd, private_key, *, name, user="root", **extra):
    """An SSH server of the organisation on the test `sshd`, through the service."""
    from apps.targets import services

    return services.create_target(
        membership,
        name=name,
        kind="ssh",
        host=sshd.host,
        port=sshd.port,
        user=user,
        private_key=private_key,
        **extra,
    )


def add_ssh_target(membership, sshd, key, *, name="web-1", user="root", confirm=True):
    """create_ssh_target with `key` (private, public), its host key confirmed by default."""
    from apps.targets import services

    target = create_ssh_target(membership, sshd, key[0], name=name, user=user)
    if confirm:
        services.confirm_host_key(membership, target, target.pending_host_key_fingerprint)
    return target


def tls_client_material(directory) -> dict[str, str]:
    """A CA and a client certificate and key it signed, made in `directory` (no engine, no
    proxy): {"ca_pem", "cert_pem", "key_pem"}, the fields of a TCP+TLS server."""
    from cryptography.hazmat.primitives import serialization

    from devtools import tls_pem_pair

    ca = tls_pem_pair(directory, "ca", "Test CA", None)
    tls_pem_pair(directory, "client", "client", ca)
    return {
        "ca_pem": ca[0].public_bytes(serialization.Encoding.PEM).decode(),
        "cert_pem": (directory / "client.pem").read_text(),
        "key_pem": (directory / "client.key").read_text(),
    }
