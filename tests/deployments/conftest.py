"""Deployments on the real Docker engine: a local target, stacks made through the ORM, and
cleanup of everything a test's stacks put on the engine."""

import pytest

from apps.accounts.models import Membership
from apps.environments.models import Environment
from apps.stacks.models import Stack, StackRevision
from devtools import remove_compose_project


@pytest.fixture
def membership(owner, acme, in_acme):
    return Membership.objects.get(user=owner, organization=acme)


@pytest.fixture
def staging(in_acme):
    return Environment.objects.create(name="staging", slug="staging")


@pytest.fixture
def local_target(membership, image_registry):
    from apps.targets import services as targets

    return targets.create_target(membership, name="web-1", kind="local")


@pytest.fixture
def make_stack(membership, staging, local_target):
    """make_stack(compose, name=...) -> Stack with revision 1; its project is removed from
    the engine after the test."""
    made = []

    def make(compose: str, *, name: str = "shop", target=None, **settings) -> Stack:
        stack = Stack.objects.create(
            name=name,
            environment=staging,
            target=target or local_target,
            created_by=membership.user,
            **settings,
        )
        StackRevision.objects.create(stack=stack, number=1, compose=compose, author=membership.user)
        made.append(stack.name)
        remove_compose_project(stack.name)
        return stack

    yield make
    for project in made:
        remove_compose_project(project)


def add_revision(stack: Stack, compose: str, **fields) -> StackRevision:
    number = stack.revisions.count() + 1
    return StackRevision.objects.create(stack=stack, number=number, compose=compose, **fields)
