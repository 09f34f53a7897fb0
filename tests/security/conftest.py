"""The permanent security suite (issue 9): shared fixtures for the cross-organisation matrix,
the secret canary, schemathesis, the compose policy tests and the role matrix.

The personas (owner, admin, operator, developer, viewer of acme; outsider, owner of globex),
the `acme` / `globex` organisations and `in_acme` come from tests/conftest.py."""

import pytest

from tests.base import PERSONAS


@pytest.fixture
def member_of(db):
    """member_of(user, organization) -> the Membership (for services that take an actor)."""
    from apps.accounts.models import Membership

    def get(user, organization):
        return Membership.objects.get(user=user, organization=organization)

    return get


@pytest.fixture
def persona(db):
    """persona("developer") -> the User of that persona (tests/base.py PERSONAS)."""
    from apps.accounts.models import User

    def get(key):
        return User.objects.get(email=PERSONAS[key][0])

    return get


@pytest.fixture
def victim(acme, owner, in_acme, docker_socket):
    """One real object of every kind in acme (the victim), each with a unique marker; see
    tests/security/world.py. The test runs with acme's schema active. Its server is the run's
    Docker engine, running (its runtime pages answer whatever test runs first)."""
    from tests.security.world import build_victim

    return build_victim(acme, owner)


@pytest.fixture
def attacker_credentials(globex, outsider):
    """The outsider's (owner of globex) three credentials, all issued by globex: a signed-in
    session, a personal API token (write) and a JWT from /api/v1/auth/token/; and platform
    staff's read-write support access to globex (a session opened by the handoff).
    -> {"session": {"user": outsider}, "token": {"bearer": ...}, "jwt": {"bearer": ...},
        "support": {"grant": SupportAccess}}"""
    from django.db import connection

    from tests.base import PASSWORD, api_client, client_for

    tenant = connection.tenant
    token = api_client(outsider, globex)._credentials["HTTP_AUTHORIZATION"].split()[1]
    response = client_for(None, globex).post(
        "/api/v1/auth/token/",
        {"email": outsider.email, "password": PASSWORD},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    connection.set_tenant(tenant)  # the request left globex active
    from apps.accounts.models import User
    from apps.accounts.services import start_support_access

    staff = User.objects.create_superuser("support-attacker@windflow.test", PASSWORD)
    grant = start_support_access(staff, globex, reason="attacker", read_write=True)
    connection.set_tenant(tenant)
    return {
        "session": {"user": outsider},
        "token": {"bearer": token},
        "jwt": {"bearer": response.json()["access"]},
        "support": {"grant": grant},
    }
