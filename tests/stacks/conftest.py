"""Stacks: an environment, a local-socket server (no Docker needed: nothing is deployed) and
a helper that creates stacks through the service."""

import pytest

from apps.accounts.models import Membership
from apps.environments.models import Environment
from apps.secrets.models import SecretRef

COMPOSE = """services:
  web:
    image: nginx:1.27
    restart: unless-stopped
    environment:
      GREETING: ${GREETING}
"""


def member(user, organization) -> Membership:
    return Membership.objects.get(user=user, organization=organization)


@pytest.fixture
def membership(owner, acme, in_acme):
    return member(owner, acme)


@pytest.fixture
def staging(in_acme):
    return Environment.objects.create(
        name="staging", slug="staging", variables={"GREETING": "hello"}
    )


@pytest.fixture
def production(in_acme):
    return Environment.objects.create(name="production", slug="production", kind="prod")


@pytest.fixture
def local_target(membership):
    from apps.targets import services as targets

    return targets.create_target(membership, name="web-1", kind="local")


@pytest.fixture
def secret(in_acme):
    """An organisation-wide secret name (its value is never read by the stacks app)."""
    return SecretRef.objects.create(name="DB_PASSWORD", scope="organization", backend="local")


@pytest.fixture
def make_stack(membership, staging, local_target):
    from apps.stacks import services

    def make(name="shop", compose=COMPOSE, **fields):
        fields.setdefault("environment", staging)
        fields.setdefault("target", local_target)
        return services.create_stack(
            fields.pop("actor", membership), name=name, compose=compose, **fields
        )

    return make
