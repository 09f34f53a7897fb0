"""Push to deploy, the webhook (issue 13): deliveries with the providers' real payload
shapes and header names, signed in the test as each provider signs (GitHub and Bitbucket:
HMAC-SHA256 with a prefix, Gitea: bare hex HMAC-SHA256, GitLab: the token itself). Every
delivery is stored and audited with its verdict; a bad one gets a clear 4xx JSON body."""

import json

import pytest
from django.db import connection

from apps.audit.models import AuditEvent
from apps.environments.choices import GitPolicy
from apps.sources import webhooks
from apps.sources.models import GitSource, WebhookDelivery, WebhookEndpoint
from apps.sources.providers import hmac_sha256
from tests.base import api_client, client_for, queued_messages
from tests.deploying import make_world
from tests.sources.webhook_helpers import (
    PUSHED,
    SOURCE_URLS,
    deliver,
    headers_for,
    payload,
    push_payload,
)

PROVIDERS = ("github", "gitlab", "bitbucket", "gitea")
# The head commit's message (first line) of each recorded push.
HEAD_MESSAGES = {
    "github": "Update the nginx config",
    "gitlab": "fixed readme",
    "bitbucket": "Bump the API image",
    "gitea": "Webhooks Yay!",
}


@pytest.fixture
def hooked(acme, owner):
    """acme's stack `shop` (staging: pushes deploy) following `main` of a repository, with
    its webhook secret. -> world with .secret and .source (the GitHub one by default)."""
    world = make_world(acme, owner)
    world.source = GitSource.objects.create(stack=world.stack, url=SOURCE_URLS["github"])
    world.secret = webhooks.rotate_secret(world.membership, world.stack)
    world.client = client_for(None, acme)
    yield world
    connection.set_schema_to_public()


def follow(world, provider):
    GitSource.objects.filter(pk=world.source.pk).update(url=SOURCE_URLS[provider])


def push(world, provider: str, body, **options):
    """One delivery to `world`'s stack, signed with its webhook secret."""
    return deliver(world.client, world.stack, provider, body, secret=world.secret, **options)


def pushes_queued():
    return [args for actor, args, _schema in queued_messages() if actor == "handle_push"]


def last_delivery():
    return WebhookDelivery.objects.latest("id")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_it_accepts_a_push_signed_as_each_provider_signs(
    hooked, acme, provider, django_capture_on_commit_callbacks
):
    follow(hooked, provider)
    with django_capture_on_commit_callbacks(execute=True):
        response = push(hooked, provider, push_payload(provider))
    assert response.status_code == 202, response.content
    assert response.json()["verdict"] == "accepted"
    connection.set_tenant(acme)
    delivery = last_delivery()
    assert (delivery.provider, delivery.verified, delivery.verdict) == (provider, True, "accepted")
    assert (delivery.ref, delivery.sha, delivery.status_code) == (
        "refs/heads/main",
        PUSHED[provider],
        202,
    )
    assert delivery.delivery_id and response.json()["delivery"] == delivery.pk
    assert pushes_queued() == [(delivery.pk, HEAD_MESSAGES[provider])]
    event = AuditEvent.objects.filter(action="webhook.delivery").latest("id")
    assert (event.actor_type, event.actor_label) == ("system", "webhook")
    assert event.changes["verdict"] == "accepted" and event.changes["sha"] == PUSHED[provider]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_it_refuses_a_bad_signature_with_401_and_audits_it(
    hooked, acme, provider, django_capture_on_commit_callbacks
):
    follow(hooked, provider)
    with django_capture_on_commit_callbacks(execute=True):
        wrong = deliver(
            hooked.client, hooked.stack, provider, push_payload(provider), secret="not-the-secret"
        )
        unsigned = deliver(
            hooked.client, hooked.stack, provider, push_payload(provider), secret=None
        )
    for response in (wrong, unsigned):
        assert response.status_code == 401, response.content
        assert response["Content-Type"] == "application/json"
        assert error_of_hook(response)["code"] == "bad_signature"
    connection.set_tenant(acme)
    assert pushes_queued() == []
    refused = list(WebhookDelivery.objects.filter(verdict="bad_signature"))
    assert len(refused) == 2 and all(not d.verified and not d.delivery_id for d in refused)
    events = AuditEvent.objects.filter(action="webhook.refused")
    assert events.count() == 2
    assert events.latest("id").changes == {
        "provider": provider,
        "verdict": "bad_signature",
        "status": 401,
    }


def error_of_hook(response) -> dict:
    body = response.json()
    assert body["verdict"] == body["error"]["code"]
    return body["error"]


def test_it_refuses_a_body_altered_after_signing(hooked, acme):
    body = json.dumps(push_payload("github")).encode()
    signature = {"X-Hub-Signature-256": "sha256=" + hmac_sha256(hooked.secret, body)}
    tampered = body.replace(b"refs/heads/main", b"refs/heads/evil")
    response = hooked.client.post(
        f"/hooks/git/{hooked.stack.uid}/",
        data=tampered,
        content_type="application/json",
        headers={**headers_for("github"), **signature},
    )
    assert response.status_code == 401


def test_it_answers_a_replayed_delivery_as_a_duplicate_and_ignores_it(
    hooked, acme, django_capture_on_commit_callbacks
):
    body = push_payload("github")
    with django_capture_on_commit_callbacks(execute=True):
        first = push(hooked, "github", body, delivery_id="72d3162e-cc78-11e3-81ab-4c9367dc0958")
        again = push(hooked, "github", body, delivery_id="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert first.status_code == 202
    assert again.status_code == 200 and again.json()["verdict"] == "duplicate"
    connection.set_tenant(acme)
    assert len(pushes_queued()) == 1
    assert list(WebhookDelivery.objects.values_list("verdict", flat=True)) == [
        "duplicate",
        "accepted",
    ]


def test_it_does_not_let_a_forged_delivery_claim_a_real_delivery_id(hooked, acme):
    """An unsigned delivery records no id: the real one that follows is not a duplicate."""
    body = push_payload("github")
    forged = deliver(hooked.client, hooked.stack, "github", body, secret="x", delivery_id="d-1")
    real = push(hooked, "github", body, delivery_id="d-1")
    assert (forged.status_code, real.status_code) == (401, 202)


def test_it_answers_a_ping(hooked, acme):
    response = push(hooked, "github", payload("github", "ping"), event="ping")
    assert response.status_code == 200 and response.json()["verdict"] == "ping"
    connection.set_tenant(acme)
    assert last_delivery().verdict == "ping" and pushes_queued() == []


@pytest.mark.parametrize(
    ("provider", "event"),
    [
        ("github", "issues"),
        ("gitlab", "Issue Hook"),
        ("bitbucket", "repo:commit_status_updated"),
        ("gitea", "issues"),
    ],
)
def test_it_ignores_an_event_that_is_not_a_push_with_a_verdict(hooked, acme, provider, event):
    follow(hooked, provider)
    body = {"action": "opened", "issue": {"number": 1}}
    response = push(hooked, provider, body, event=event)
    assert response.status_code == 202
    assert response.json()["verdict"] == "ignored_event"
    assert event in response.json()["detail"]
    connection.set_tenant(acme)
    assert (last_delivery().event, last_delivery().verdict) == (event, "ignored_event")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_it_ignores_a_push_to_another_branch(hooked, acme, provider):
    follow(hooked, provider)
    body = push_payload(provider, ref="refs/heads/feature-x")
    response = push(hooked, provider, body)
    assert response.status_code == 202 and response.json()["verdict"] == "ignored_ref"
    connection.set_tenant(acme)
    assert pushes_queued() == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_it_takes_tags_that_match_a_tag_pattern(hooked, acme, provider):
    follow(hooked, provider)
    GitSource.objects.filter(pk=hooked.source.pk).update(ref="v*")
    matching = push(hooked, provider, push_payload(provider, ref="refs/tags/v1.4.0"))
    other = push(hooked, provider, push_payload(provider, ref="refs/tags/nightly"))
    branch = push(hooked, provider, push_payload(provider, ref="refs/heads/v2"))
    assert matching.json()["verdict"] == "accepted"
    assert other.json()["verdict"] == "ignored_ref" and branch.json()["verdict"] == "ignored_ref"


def test_it_takes_no_push_for_a_source_pinned_to_a_commit(hooked, acme):
    GitSource.objects.filter(pk=hooked.source.pk).update(ref="a" * 40)
    response = push(hooked, "github", push_payload("github"))
    assert response.json()["verdict"] == "ignored_ref"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_it_ignores_a_deleted_branch(hooked, acme, provider):
    follow(hooked, provider)
    body = push_payload(provider, after="0" * 40)
    response = push(hooked, provider, body)
    assert response.status_code == 202 and response.json()["verdict"] == "ignored_delete"


@pytest.mark.parametrize("provider", ("github", "bitbucket"))
def test_it_records_a_force_push_and_says_so(
    hooked, acme, provider, django_capture_on_commit_callbacks
):
    follow(hooked, provider)
    with django_capture_on_commit_callbacks(execute=True):
        response = push(hooked, provider, push_payload(provider, forced=True))
    assert response.status_code == 202
    connection.set_tenant(acme)
    assert last_delivery().forced is True
    event = AuditEvent.objects.filter(action="webhook.delivery").latest("id")
    assert event.changes["forced"] is True
    page = client_for(hooked.membership.user, acme).get(f"/stacks/{hooked.stack.name}/webhook/")
    assert b"forced" in page.content


def test_it_refuses_a_push_for_another_repository(hooked, acme):
    body = push_payload("github")
    body["repository"].update(
        clone_url="https://github.com/evil/shop.git",
        ssh_url="git@github.com:evil/shop.git",
        git_url="git://github.com/evil/shop.git",
        html_url="https://github.com/evil/shop",
    )
    response = push(hooked, "github", body)
    assert response.status_code == 400
    assert error_of_hook(response)["code"] == "wrong_repository"


def test_it_ignores_pushes_where_the_policy_is_off(hooked, acme):
    hooked.environment.git_policy = GitPolicy.OFF
    hooked.environment.save()
    response = push(hooked, "github", push_payload("github"))
    assert response.status_code == 202 and response.json()["verdict"] == "ignored_policy"


def test_it_answers_bad_input_with_4xx_json(hooked, acme):
    unsigned_garbage = hooked.client.post(
        f"/hooks/git/{hooked.stack.uid}/", data=b"{}", content_type="application/json"
    )
    assert unsigned_garbage.status_code == 401  # nothing to verify: not authenticated
    assert error_of_hook(unsigned_garbage)["code"] == "unknown_provider"
    not_json = push(hooked, "github", b"{not json")
    assert not_json.status_code == 400 and error_of_hook(not_json)["code"] == "bad_payload"
    shapeless = push(hooked, "github", {"zen": 1})
    assert shapeless.status_code == 400 and error_of_hook(shapeless)["code"] == "bad_payload"
    listed = push(hooked, "github", [1, 2])
    assert listed.status_code == 400
    # Signed, but fields of the wrong type, for each provider: 400, never a 500.
    odd = {
        "github": {
            "ref": "refs/heads/main",
            "after": "a" * 40,
            "repository": "x",
            "head_commit": 3,
        },
        "gitlab": {"ref": "refs/heads/main", "after": "a" * 40, "project": [], "commits": [1]},
        "bitbucket": {"push": {"changes": {"new": 1}}, "repository": "x"},
        "gitea": {"ref": "refs/heads/main", "after": "a" * 40, "repository": 7, "pusher": "x"},
    }
    for provider, body in odd.items():
        follow(hooked, provider)
        answer = push(hooked, provider, body)
        assert answer.status_code == 400, (provider, answer.content)
        assert error_of_hook(answer)["code"] == "bad_payload"
    assert hooked.client.get(f"/hooks/git/{hooked.stack.uid}/").status_code == 405
    nowhere = hooked.client.post(
        "/hooks/git/6f1c3c9e-0000-4000-8000-000000000000/",
        data=b"{}",
        content_type="application/json",
    )
    assert nowhere.status_code == 404 and nowhere.json()["error"]["code"] == "not_found"
    assert hooked.client.post("/hooks/git/not-a-uuid/").status_code == 404


def test_it_never_triggers_another_organisation_s_stack(hooked, acme, globex, outsider):
    """acme's stack uid posted to globex's host, signed with acme's secret: not found there."""
    body = push_payload("github")
    response = deliver(client_for(None, globex), hooked.stack, "github", body, secret=hooked.secret)
    assert response.status_code == 404
    connection.set_tenant(acme)
    assert not WebhookDelivery.objects.exists()


def test_it_keeps_the_secret_sealed_and_rotates_it(hooked, acme):
    endpoint = WebhookEndpoint.objects.get(stack=hooked.stack)
    assert hooked.secret.encode() not in bytes(endpoint.sealed_secret)
    old = hooked.secret
    new = webhooks.rotate_secret(hooked.membership, hooked.stack)
    assert new != old
    body = push_payload("github")
    assert deliver(hooked.client, hooked.stack, "github", body, secret=old).status_code == 401
    assert deliver(hooked.client, hooked.stack, "github", body, secret=new).status_code == 202
    connection.set_tenant(acme)
    actions = list(
        AuditEvent.objects.filter(action__startswith="webhook.").values_list("action", flat=True)
    )
    assert actions[:2] == ["webhook.create", "webhook.rotate"] or "webhook.rotate" in actions


def test_it_shows_the_secret_once_on_the_stack_s_page(hooked, acme, owner, developer, viewer):
    page = client_for(owner, acme).get(f"/stacks/{hooked.stack.name}/webhook/")
    assert page.status_code == 200
    assert f"/hooks/git/{hooked.stack.uid}/".encode() in page.content
    assert (
        b'data-testid="webhook-secret"' not in page.content
        and hooked.secret.encode() not in page.content
    )
    rotated = client_for(developer, acme).post(f"/stacks/{hooked.stack.name}/webhook/")
    assert rotated.status_code == 200 and b'data-testid="webhook-secret"' in rotated.content
    connection.set_tenant(acme)
    endpoint = WebhookEndpoint.objects.get(stack=hooked.stack)
    secret = webhooks.secret_of(endpoint)
    assert secret.encode() in rotated.content
    assert (
        secret.encode()
        not in client_for(owner, acme).get(f"/stacks/{hooked.stack.name}/webhook/").content
    )
    assert client_for(viewer, acme).post(f"/stacks/{hooked.stack.name}/webhook/").status_code == 403
    assert client_for(viewer, acme).get(f"/stacks/{hooked.stack.name}/webhook/").status_code == 200


def test_it_keeps_a_protected_stack_s_secret_from_developers(acme, owner, developer):
    world = make_world(acme, owner, protected=True, name="bank")
    response = client_for(developer, acme).post("/stacks/bank/webhook/")
    assert response.status_code == 403
    connection.set_tenant(acme)
    assert not WebhookEndpoint.objects.exists()
    del world


def test_it_lists_deliveries_on_the_page_partial_and_in_the_api(
    hooked, acme, viewer, outsider, globex
):
    push(hooked, "github", push_payload("github"))
    deliver(hooked.client, hooked.stack, "github", push_payload("github"), secret="wrong")
    partial = client_for(viewer, acme).get(
        f"/stacks/{hooked.stack.name}/webhook/", headers={"HX-Request": "true"}
    )
    assert partial.status_code == 200
    assert partial.content.count(b'data-testid="delivery"') == 2
    assert b"<html" not in partial.content
    listed = api_client(viewer, acme).get(f"/api/v1/stacks/{hooked.stack.name}/deliveries/")
    assert listed.status_code == 200, listed.content
    rows = listed.json()["results"]
    assert [row["verdict"] for row in rows] == ["bad_signature", "accepted"]
    assert rows[1]["sha"] == PUSHED["github"] and rows[1]["provider"] == "github"
    assert hooked.secret not in json.dumps(rows)
    foreign = api_client(outsider, globex).get(f"/api/v1/stacks/{hooked.stack.name}/deliveries/")
    assert foreign.status_code == 404


def test_it_rotates_the_secret_through_the_api(hooked, acme, developer, viewer):
    refused = api_client(viewer, acme).post(f"/api/v1/stacks/{hooked.stack.name}/webhook/")
    assert refused.status_code == 403
    response = api_client(developer, acme).post(f"/api/v1/stacks/{hooked.stack.name}/webhook/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["url"].endswith(f"/hooks/git/{hooked.stack.uid}/") and body["secret"]
    delivered = deliver(
        hooked.client, hooked.stack, "github", push_payload("github"), secret=body["secret"]
    )
    assert delivered.status_code == 202


def test_it_throttles_a_flood_of_deliveries(hooked, acme, settings):
    from apps.sources import webhook_views

    class Tight(webhook_views.WebhookThrottle):
        rate = "3/minute"

    original = webhook_views.WebhookThrottle
    webhook_views.WebhookThrottle = Tight
    try:
        answers = [
            deliver(
                hooked.client, hooked.stack, "github", push_payload("github"), secret="x"
            ).status_code
            for _ in range(5)
        ]
    finally:
        webhook_views.WebhookThrottle = original
    assert answers == [401, 401, 401, 429, 429]


def test_it_loads_the_deliveries_on_the_stack_s_page(hooked, acme, viewer):
    push(hooked, "github", push_payload("github"))
    page = client_for(viewer, acme).get(f"/stacks/{hooked.stack.name}/")
    assert page.status_code == 200
    assert b'data-testid="webhook-deliveries"' in page.content
    assert f'hx-get="/stacks/{hooked.stack.name}/webhook/"'.encode() in page.content


def test_it_refuses_a_delivery_over_the_size_limit_unread(hooked, acme, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = push_payload("github")
    body["commits"] *= 20
    response = push(hooked, "github", body)
    assert response.status_code == 413
    assert error_of_hook(response)["code"] == "too_large"
