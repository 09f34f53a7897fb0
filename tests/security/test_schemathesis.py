"""schemathesis over the OpenAPI document, against a real server: the web process on the test
database (tests/live.py), authenticated as the owner of a committed
organisation (a JWT from /api/v1/auth/token/) on that organisation's host. Every operation
gets a bounded, derandomised set of generated requests; none may answer 5xx.

The document is drf-spectacular's (what /api/schema/ serves), rendered at collection time;
`test_it_fuzzes_at_least_50_operations` keeps the run from shrinking unnoticed."""

from __future__ import annotations

import json

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig

from tests.live import live_organization, live_server

pytestmark = pytest.mark.live

EXAMPLES_PER_OPERATION = 10
EXAMPLES_ON_REAL_OBJECTS = 5


def openapi_document() -> dict:
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    document = SchemaGenerator(urlconf="windflow.urls").get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(document))


# Fuzzing only (valid and invalid data), a bounded number of examples per operation: the
# coverage phase sends hundreds of boundary cases per operation, too slow for CI here.
CONFIG = SchemathesisConfig.from_dict(
    {
        "generation": {"mode": "all", "deterministic": True},
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": False},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
    }
)
schema = schemathesis.openapi.from_dict(openapi_document(), config=CONFIG)


def seed(world) -> dict:
    """Real objects of the organisation, by the resource path that names them."""
    from django.db import connection

    from apps.accounts import services as accounts
    from apps.accounts.models import Membership
    from apps.audit.models import AuditEvent
    from apps.deployments import services as deployments
    from apps.environments.models import Environment
    from apps.secrets import services as secrets
    from apps.stacks import services as stacks
    from apps.targets import services as targets
    from tests.security.world import give_test_engine

    organization = world.organization
    give_test_engine(organization)
    connection.set_tenant(organization)
    try:
        owner = Membership.objects.get(user=world.owner, organization=organization)
        (member,) = Membership.objects.filter(organization=organization).exclude(pk=owner.pk)
        environment = Environment.objects.create(name="staging", slug="staging")
        target = targets.create_target(owner, name="web-1", kind="local")
        secret = secrets.create_secret(owner, name="API_KEY", value="fuzz-secret-value")
        stack = stacks.create_stack(
            owner,
            name="shop",
            environment=environment,
            target=target,
            compose="services:\n  web:\n    image: busybox:1\n",
        )
        deployment = deployments.request_deployment(owner, stack)
        token, _secret = accounts.create_api_token(owner, name="fuzz")
        invitation, _url = accounts.invite(owner, email="invitee@fuzz.test", role="viewer")
        return {
            "environments": {"slug": environment.slug},
            "targets": {"slug": target.slug},
            "stacks": {"name": stack.name, "number": 1},
            "secrets": {"id": secret.pk},
            "deployments": {"id": deployment.pk},
            "audit-events": {"id": AuditEvent.objects.order_by("id").first().pk},
            "members": {"id": member.pk},
            "invitations": {"id": invitation.pk},
            "tokens": {"id": token.pk},
        }
    finally:
        connection.set_schema_to_public()


@pytest.fixture(scope="module")
def fuzz_target(django_db_setup, django_db_blocker, tmp_path_factory):
    """(server, headers with the owner's JWT and the organisation's host, real objects by
    resource) for a committed organisation with a developer."""
    from tests.base import flush_redis

    with (
        django_db_blocker.unblock(),
        live_organization(members=(("developer", "developer"),)) as world,
    ):
        objects = seed(world)
        with live_server(tmp_path_factory.mktemp("schemathesis")) as server:
            flush_redis()
            host = server.host(world.organization)
            response = requests.post(
                f"{server.loopback_url}/api/v1/auth/token/",
                json={"email": world.owner.email, "password": "pw-live-123456"},
                headers={"Host": host},
                timeout=10,
            )
            assert response.status_code == 200, response.text
            headers = {"Host": host, "Authorization": f"Bearer {response.json()['access']}"}
            # The control: these headers are a signed-in owner on the organisation's host.
            me = requests.get(f"{server.loopback_url}/api/v1/me/", headers=headers, timeout=10)
            assert me.status_code == 200 and me.json()["role"] == "owner", me.text
            yield server, headers, objects
            log = server.log_tail(200)
        # What the server printed (tracebacks of any 5xx) stays with the test output.
        print(log)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)
def test_it_answers_no_server_error(case, fuzz_target):
    server, headers, _objects = fuzz_target
    response = case.call(base_url=server.loopback_url, headers=headers, timeout=30)
    case.validate_response(response, checks=[not_a_server_error])


@schema.include(path_regex=r"\{").parametrize()
@settings(
    max_examples=EXAMPLES_ON_REAL_OBJECTS,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)
def test_it_answers_no_server_error_on_real_objects(case, fuzz_target):
    """The same, with the path naming the organisation's real objects (random names mostly
    stop at 404): generated bodies and queries reach the services."""
    server, headers, objects = fuzz_target
    resource = case.path.split("/")[3]
    real = objects[resource]
    case.path_parameters = {
        key: real.get(key, value) for key, value in case.path_parameters.items()
    }
    response = case.call(base_url=server.loopback_url, headers=headers, timeout=30)
    case.validate_response(response, checks=[not_a_server_error])


def test_it_fuzzes_at_least_50_operations():
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 50, len(operations)
