"""Stacks: a production environment and an organisation-wide secret. The owner's
`membership`, `staging`, the `local_target` and `make_stack` are shared (tests/conftest.py);
COMPOSE and member() come from tests/base.py."""

import pytest

from apps.environments.models import Environment
from apps.secrets.models import SecretRef


@pytest.fixture
def production(in_acme):
    return Environment.objects.create(name="production", slug="production", kind="prod")


@pytest.fixture
def secret(in_acme):
    """An organisation-wide secret name (its value is never read by the stacks app)."""
    return SecretRef.objects.create(name="DB_PASSWORD", scope="organization", backend="local")
