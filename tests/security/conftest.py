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
