"""Commit statuses (issue 13): a deployment that a push asked for is reported on its commit
in the provider, pending when queued and how it ended when it ends, with the source's token.
The provider is a stand-in HTTP server on 127.0.0.1 (a self-hosted Gitea or GitLab at the
repository's host); the requests are the recorded shapes of tests/sources/fixtures/providers."""

import pytest
from django.db import connection

from apps.deployments import journal
from apps.deployments import services as deployments
from apps.deployments.choices import DeploymentStatus
from apps.secrets import services as secrets
from apps.sources import statuses
from apps.sources.models import GitSource, WebhookDelivery
from apps.stacks.models import StackRevision
from tests.base import queued_messages, run_queued_jobs
from tests.deploying import make_world
from tests.sources.standin import StandIn

SHA = "6dcb09b5b57875f334f61aebed695e2e4193db5e"


@pytest.fixture
def stand_in():
    server = StandIn()
    server.status, server.body = 201, {"id": 1, "status": "pending"}
    yield server
    server.stop()


@pytest.fixture
def reported(acme, owner, stand_in):
    """acme's stack following a self-hosted Gitea at the stand-in's address with a token,
    and a deployment that a Gitea push asked for."""
    world = make_world(acme, owner)
    secrets.create_secret(world.membership, name="GITEA_TOKEN", value="gitea-test")
    GitSource.objects.create(
        stack=world.stack,
        url=f"{stand_in.url}/acme/shop.git",
        auth="token",
        token_secret="GITEA_TOKEN",
    )
    revision = StackRevision.objects.create(
        stack=world.stack, number=3, compose=world.stack.latest_revision.compose, commit_sha=SHA
    )
    world.deployment = deployments.request_deployment(None, world.stack, revision)
    WebhookDelivery.objects.create(
        stack=world.stack,
        provider="gitea",
        delivery_id="d-1",
        verified=True,
        event="push",
        ref="refs/heads/main",
        sha=SHA,
        verdict="deployed",
        status_code=202,
        deployment=world.deployment,
    )
    yield world
    connection.set_schema_to_public()


def test_it_reports_a_pushed_deployment_on_its_commit(reported, stand_in, acme):
    answer = statuses.report(reported.deployment.pk)
    assert answer == {"id": 1, "status": "pending"}
    (made,) = stand_in.requests
    assert made["path"] == f"/api/v1/repos/acme/shop/statuses/{SHA}"
    assert made["headers"]["Authorization"] == "token gitea-test"
    body = made["body"]
    assert body["state"] == "pending" and body["context"] == "windflow/staging"
    assert body["target_url"].endswith(f"/deployments/{reported.deployment.pk}/")


def test_it_reports_how_it_ended_once_it_ends(
    reported, stand_in, acme, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        journal.finish(reported.deployment, DeploymentStatus.FAILED, "web exited with code 3")
    connection.set_tenant(acme)
    assert ("report_commit_status", (reported.deployment.pk,), acme.schema_name) in [
        message for message in queued_messages() if message[0] == "report_commit_status"
    ]
    assert "report_commit_status" in run_queued_jobs()
    assert [request["body"]["state"] for request in stand_in.requests] == ["failure"]


def test_it_reports_nothing_without_a_token_or_a_push(reported, stand_in, acme):
    GitSource.objects.filter(stack=reported.stack).update(auth="none", token_secret="")
    assert statuses.report(reported.deployment.pk) is None
    GitSource.objects.filter(stack=reported.stack).update(auth="token", token_secret="GITEA_TOKEN")
    WebhookDelivery.objects.all().delete()
    assert statuses.report(reported.deployment.pk) is None
    assert stand_in.requests == []


def test_it_shrugs_off_a_provider_that_refuses(reported, stand_in, acme):
    stand_in.status, stand_in.body = 401, {"message": "token is required"}
    assert statuses.report(reported.deployment.pk) is None
    assert len(stand_in.requests) == 1


def test_it_never_calls_a_private_address_unless_allowed(reported, stand_in, acme, settings):
    settings.WINDFLOW_GIT_ALLOW_PRIVATE = False
    assert statuses.report(reported.deployment.pk) is None
    assert stand_in.requests == []


@pytest.mark.parametrize(
    ("provider", "url", "base"),
    [
        ("github", "https://github.com/acme/shop.git", "https://api.github.com"),
        ("github", "https://ghe.example.com/acme/shop.git", "https://ghe.example.com/api/v3"),
        ("gitlab", "git@gitlab.com:acme/shop.git", "https://gitlab.com/api/v4"),
        (
            "gitlab",
            "https://git.example.com:8443/g/s/shop.git",
            "https://git.example.com:8443/api/v4",
        ),
        ("bitbucket", "git@bitbucket.org:acme/shop.git", "https://api.bitbucket.org/2.0"),
        ("bitbucket", "https://bitbucket.example.com/acme/shop.git", None),
        (
            "gitea",
            "ssh://git@gitea.example.com:2222/acme/shop.git",
            "https://gitea.example.com/api/v1",
        ),
    ],
)
def test_it_finds_the_provider_s_api_from_the_repository(provider, url, base):
    assert statuses.api_base(provider, url) == base
