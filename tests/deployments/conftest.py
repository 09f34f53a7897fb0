"""Deployments: `world` (a stack with two revisions in acme, nothing deployed). The owner's
`membership`, `staging`, the `local_target` and `make_stack` are shared (tests/conftest.py);
helpers to deploy and look at the engine are in tests/deploying.py."""

import pytest
from django.db import connection

from tests.deploying import make_world


@pytest.fixture
def world(acme, owner):
    world = make_world(acme, owner)
    yield world
    connection.set_schema_to_public()
