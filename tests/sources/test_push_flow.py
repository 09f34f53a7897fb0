"""Push to deploy, end to end in the worker (issue 13): a signed push to a real repository on
the test's git server becomes a revision pinned to the commit, then whatever the
environment's Git policy says: a queued deployment (staging), one awaiting an approval
(production), nothing twice for the same commit, a clear failure for a commit that is not
there."""

import pytest
from django.db import connection

from apps.audit.models import AuditEvent
from apps.deployments.choices import DeploymentStatus
from apps.deployments.models import Deployment
from apps.environments.choices import EnvironmentKind
from apps.notifications.models import Notification
from apps.sources import webhooks
from apps.sources.models import GitSource, WebhookDelivery
from tests.base import client_for, run_queued_jobs
from tests.deploying import make_world
from tests.sources.webhook_helpers import deliver, github_push_for, project


@pytest.fixture
def pushed(acme, owner, git_server, settings, tmp_path):
    """acme's stack `shop` following `main` of a real repository (git://, allowed here),
    with its webhook secret; the repository has one commit."""
    settings.WINDFLOW_GIT_ALLOW_INSECURE = True
    settings.WINDFLOW_SOURCE_CACHE_DIR = str(tmp_path / "source-cache")
    world = make_world(acme, owner)
    world.repo = git_server.repo()
    world.first = world.repo.commit(project("one"), "first")
    world.source = GitSource.objects.create(stack=world.stack, url=world.repo.git_url)
    world.secret = webhooks.rotate_secret(world.membership, world.stack)
    world.client = client_for(None, acme)
    yield world
    connection.set_schema_to_public()


def push(world, acme, sha, captured, **options):
    """Deliver a signed push of `sha`, then run the worker's job; -> the delivery."""
    body = github_push_for(world.repo.git_url, sha, **options)
    with captured(execute=True):
        response = deliver(world.client, world.stack, "github", body, secret=world.secret)
    assert response.status_code == 202, response.content
    connection.set_tenant(acme)
    ran = run_queued_jobs()
    assert "handle_push" in ran
    return WebhookDelivery.objects.get(pk=response.json()["delivery"])


def test_it_deploys_a_push_to_staging_by_itself(pushed, acme, django_capture_on_commit_callbacks):
    delivery = push(pushed, acme, pushed.first, django_capture_on_commit_callbacks)
    assert delivery.verdict == "deployed", delivery.detail
    deployment = delivery.deployment
    assert deployment.status == DeploymentStatus.QUEUED and deployment.triggered_by is None
    assert deployment.revision.commit_sha == pushed.first
    assert deployment.revision.source_kind == "git"
    assert "Update the nginx config" in deployment.revision.message
    request = AuditEvent.objects.filter(action="deployment.request").latest("id")
    assert (request.actor_type, request.actor_label) == ("system", "webhook")
    assert request.changes["why"].startswith(f"push {pushed.first[:10]} to main")
    outcome = AuditEvent.objects.filter(action="webhook.outcome").latest("id")
    assert outcome.changes["verdict"] == "deployed"
    assert outcome.changes["deployment"] == deployment.pk


def test_it_waits_for_an_approval_in_production(
    pushed, acme, operator, developer, django_capture_on_commit_callbacks
):
    pushed.environment.kind = EnvironmentKind.PROD
    pushed.environment.save()
    delivery = push(pushed, acme, pushed.first, django_capture_on_commit_callbacks)
    assert delivery.verdict == "awaiting_approval"
    deployment = delivery.deployment
    assert deployment.status == DeploymentStatus.AWAITING_APPROVAL
    told = Notification.objects.filter(verb="deployment.awaiting_approval")
    assert told.filter(recipient=operator).exists() and told.filter(recipient=developer).exists()
    assert f"push {pushed.first[:10]} to main" in told.get(recipient=operator).text


def test_it_supersedes_an_older_push_waiting_for_approval(
    pushed, acme, django_capture_on_commit_callbacks
):
    pushed.environment.kind = EnvironmentKind.PROD
    pushed.environment.save()
    older = push(pushed, acme, pushed.first, django_capture_on_commit_callbacks).deployment
    second = pushed.repo.commit(project("two"), "second")
    newer = push(pushed, acme, second, django_capture_on_commit_callbacks).deployment
    older.refresh_from_db()
    assert older.status == DeploymentStatus.CANCELLED
    assert older.reason.startswith("Superseded by a newer commit")
    assert newer.status == DeploymentStatus.AWAITING_APPROVAL


def test_it_does_not_deploy_the_same_commit_twice(pushed, acme, django_capture_on_commit_callbacks):
    first = push(pushed, acme, pushed.first, django_capture_on_commit_callbacks)
    again = push(pushed, acme, pushed.first, django_capture_on_commit_callbacks)
    assert (first.verdict, again.verdict) == ("deployed", "unchanged")
    assert Deployment.objects.filter(stack=pushed.stack).count() == 1


def test_it_says_why_a_push_could_not_be_fetched(pushed, acme, django_capture_on_commit_callbacks):
    missing = "f" * 40
    delivery = push(pushed, acme, missing, django_capture_on_commit_callbacks)
    assert delivery.verdict == "failed" and delivery.detail
    assert not Deployment.objects.filter(stack=pushed.stack).exists()
    page = client_for(pushed.membership.user, acme).get(f"/stacks/{pushed.stack.name}/webhook/")
    assert delivery.detail.encode()[:40] in page.content


def test_it_says_a_force_push_in_the_revision(pushed, acme, django_capture_on_commit_callbacks):
    rewritten = pushed.repo.commit(project("rewritten"), "rewritten", force=True)
    delivery = push(pushed, acme, rewritten, django_capture_on_commit_callbacks, forced=True)
    assert delivery.verdict == "deployed"
    revision = delivery.deployment.revision
    assert revision.commit_sha == rewritten and "force-pushed" in revision.message


def test_it_never_leaves_an_older_push_deployed_after_a_newer_one(
    pushed, acme, django_capture_on_commit_callbacks
):
    """Two pushes received before a worker handles either: the older one is superseded (not
    even fetched), the newer one deploys."""
    second = pushed.repo.commit(project("two"), "second")
    ids = []
    for sha in (pushed.first, second):
        body = github_push_for(pushed.repo.git_url, sha)
        with django_capture_on_commit_callbacks(execute=True):
            response = deliver(pushed.client, pushed.stack, "github", body, secret=pushed.secret)
        ids.append(response.json()["delivery"])
    connection.set_tenant(acme)
    assert run_queued_jobs().count("handle_push") == 2
    older, newer = (WebhookDelivery.objects.get(pk=pk) for pk in ids)
    assert older.verdict == "unchanged" and "newer push" in older.detail
    assert newer.verdict == "deployed"
    (deployment,) = Deployment.objects.filter(stack=pushed.stack)
    assert deployment.revision.commit_sha == second
    assert not pushed.stack.revisions.filter(commit_sha=pushed.first).exists()
