"""What the browser tests of the live pages build: committed organisations, stacks and
deployments (tracked by live_db), written as a worker would write them."""

from __future__ import annotations

import secrets
import threading

from django.db import connection

from tests.deploying import make_world


def in_thread(organization, work):
    """Run `work()` like a worker: in another thread (Playwright's loop runs in this one, and
    publishing needs async_to_sync), with the organisation active. Returns its result."""
    results, failures = [], []

    def run():
        connection.set_tenant(organization)
        try:
            results.append(work())
        except Exception as exc:  # reported to the test below
            failures.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(120)
    assert not thread.is_alive(), "the work did not finish"
    assert not failures, failures
    return results[0]


def organization_with_owner(live_db, prefix: str = "ui"):
    """A committed organisation and its owner. -> (organization, owner)"""
    from apps.tenants.services import create_organization

    suffix = secrets.token_hex(3)
    owner = live_db.create_user(f"owner-{suffix}@{prefix}.test", "pw-live-123456")
    live_db.track_organization(f"{prefix}-{suffix}")
    organization = create_organization(
        name=f"{prefix.title()} {suffix}", slug=f"{prefix}-{suffix}", owner=owner
    )
    connection.set_schema_to_public()
    return organization, owner


def stack_world(live_db, prefix: str = "ui"):
    """An organisation with stack `shop` (revisions 1 and 2, nothing deployed). ->
    (organization, owner, world) where world has .membership .target .environment .stack"""
    organization, owner = organization_with_owner(live_db, prefix)
    world = in_thread(organization, lambda: make_world(organization, owner))
    return organization, owner, world


def run_to(deployment, status: str, *, reason: str = "", diagnosis=None, rolled_back_to=None):
    """Move a queued deployment through running to `status`, as the runner would (a success
    makes its revision the one that runs). Call inside in_thread."""
    from apps.deployments import journal
    from apps.deployments.models import Deployment
    from apps.stacks.models import Stack

    journal.claim(deployment.pk)
    deployment.refresh_from_db()
    if status == "succeeded":
        Stack.objects.filter(pk=deployment.stack_id).update(current_revision=deployment.revision)
    if rolled_back_to is not None:
        Deployment.objects.filter(pk=deployment.pk).update(rolled_back_to=rolled_back_to)
        Stack.objects.filter(pk=deployment.stack_id).update(current_revision=rolled_back_to)
    journal.finish(deployment, status, reason, diagnosis)
    deployment.refresh_from_db()
    return deployment


def deployed(membership, stack, revision, status: str, **outcome):
    """A deployment of `revision` that ended in `status`. Call inside in_thread."""
    from apps.deployments import services

    return run_to(services.request_deployment(membership, stack, revision), status, **outcome)
