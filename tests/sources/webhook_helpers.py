"""Deliveries as the providers send them: their recorded payload shapes (fixtures/webhooks),
their real header names, signed with the stack's secret as each provider signs."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from apps.sources.providers import registry

FIXTURES = Path(__file__).parent / "fixtures" / "webhooks"
# The repository each recorded payload names, as a stack's source would give it.
SOURCE_URLS = {
    "github": "https://github.com/acme/shop.git",
    "gitlab": "https://gitlab.com/acme/shop.git",
    "bitbucket": "git@bitbucket.org:acme/shop.git",
    "gitea": "https://gitea.example.com/acme/shop.git",
}
PUSH_EVENTS = {"github": "push", "gitlab": "Push Hook", "bitbucket": "repo:push", "gitea": "push"}
PUSHED = {
    "github": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
    "gitlab": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
    "bitbucket": "709d658dc5b6d6afcd46049c2f332ee3f515a67d",
    "gitea": "bffeb74224043ba2feb48d137756c8a9331c449a",
}


def payload(provider: str, name: str = "push") -> dict:
    return json.loads((FIXTURES / f"{provider}_{name}.json").read_text())


def push_payload(provider: str, *, ref="refs/heads/main", after=None, forced=False) -> dict:
    """The provider's recorded push, moved to `ref` / `after` where asked."""
    body = payload(provider)
    if provider == "bitbucket":
        change = body["push"]["changes"][0]
        kind, name = ("tag", ref[10:]) if ref.startswith("refs/tags/") else ("branch", ref[11:])
        change["new"]["type"], change["new"]["name"] = kind, name
        change["old"]["type"], change["old"]["name"] = kind, name
        if after == "0" * 40:
            change["new"] = None
        elif after:
            change["new"]["target"]["hash"] = after
        change["forced"] = forced
        return body
    body["ref"] = ref
    if after:
        body["after"] = after
        if provider == "gitlab":
            body["checkout_sha"] = None if after == "0" * 40 else after
    if provider in ("github",):
        body["forced"] = forced
    return body


def headers_for(provider: str, event: str | None = None, delivery_id: str | None = None) -> dict:
    event = event or PUSH_EVENTS[provider]
    delivery_id = delivery_id or str(uuid.uuid4())
    if provider == "github":
        return {
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery_id,
            "X-GitHub-Hook-ID": "30",
            "X-GitHub-Hook-Installation-Target-Type": "repository",
            "User-Agent": "GitHub-Hookshot/044aadd",
        }
    if provider == "gitlab":
        return {
            "X-Gitlab-Event": event,
            "X-Gitlab-Event-UUID": delivery_id,
            "X-Gitlab-Instance": "https://gitlab.com",
            "X-Gitlab-Webhook-UUID": "1f3a2b4c-0000-4000-8000-000000000003",
            "User-Agent": "GitLab/17.0.0",
        }
    if provider == "bitbucket":
        return {
            "X-Event-Key": event,
            "X-Request-UUID": delivery_id,
            "X-Hook-UUID": "0f9e8d7c-0000-4000-8000-000000000004",
            "X-Attempt-Number": "1",
            "User-Agent": "Bitbucket-Webhooks/2.0",
        }
    # Gitea (and Forgejo) also send GitHub's and Gogs' headers, for compatibility.
    return {
        "X-Gitea-Event": event,
        "X-Gitea-Event-Type": event,
        "X-Gitea-Delivery": delivery_id,
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id,
        "X-Gogs-Event": event,
        "X-Gogs-Delivery": delivery_id,
        "User-Agent": "Go-http-client/1.1",
    }


def deliver(
    client,
    stack,
    provider: str,
    body,
    *,
    secret: str | None,
    event: str | None = None,
    delivery_id: str | None = None,
    extra: dict | None = None,
):
    """POST one delivery to the stack's webhook, signed with `secret` (None: unsigned)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = headers_for(provider, event, delivery_id)
    if secret is not None:
        headers.update(registry.BY_NAME[provider].WEBHOOK.sign(raw, secret))
    headers.update(extra or {})
    return client.post(
        f"/hooks/git/{stack.uid}/", data=raw, content_type="application/json", headers=headers
    )


def github_push_for(repo_url: str, sha: str, *, ref="refs/heads/main", forced=False) -> dict:
    """GitHub's recorded push, naming a real repository of the test's git server."""
    body = push_payload("github", ref=ref, after=sha, forced=forced)
    body["repository"].update(clone_url=repo_url, git_url=repo_url, ssh_url="", html_url="")
    body["head_commit"]["id"] = sha
    return body


# A compose project small enough to load and check quickly (nothing is deployed).
def project(greeting: str) -> dict:
    return {
        "compose.yaml": (
            "services:\n  web:\n    image: busybox:1\n"
            f"    command: [sh, -c, 'echo {greeting}; sleep 3600']\n"
        )
    }
