"""GitHub: deliveries signed with ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw
body>``; events in ``X-GitHub-Event``, delivery id in ``X-GitHub-Delivery``. API v3 (REST)."""

from __future__ import annotations

from . import (
    OTHER,
    PING,
    PUSH,
    Delivery,
    ProviderAPI,
    Repository,
    check_state,
    first_line,
    header,
    hmac_sha256,
    require_mapping,
    same,
    sha_or_blank,
)

NAME = "github"
LABEL = "GitHub"
EVENT_HEADER = "X-GitHub-Event"


def detects(headers) -> bool:
    return bool(header(headers, EVENT_HEADER))


def verify(headers, body: bytes, secret: str) -> bool:
    signature = header(headers, "X-Hub-Signature-256")
    if not signature.startswith("sha256="):
        return False
    return same(signature.removeprefix("sha256=").lower(), hmac_sha256(secret, body))


def sign(body: bytes, secret: str) -> dict[str, str]:
    """The signature header a GitHub delivery of `body` carries (tests, benchmarks)."""
    return {"X-Hub-Signature-256": "sha256=" + hmac_sha256(secret, body)}


def parse(headers, payload) -> Delivery:
    raw_event = header(headers, EVENT_HEADER)
    delivery_id = header(headers, "X-GitHub-Delivery")
    if raw_event == "ping":
        return Delivery(NAME, delivery_id, PING, raw_event)
    if raw_event != "push":
        return Delivery(NAME, delivery_id, OTHER, raw_event)
    require_mapping(payload, "ref", "after", "repository")
    repository = payload.get("repository") or {}
    head = payload.get("head_commit") or {}
    return Delivery(
        NAME,
        delivery_id,
        PUSH,
        raw_event,
        ref=str(payload["ref"]),
        before=sha_or_blank(payload.get("before")),
        after=sha_or_blank(payload["after"]),
        forced=bool(payload.get("forced")),
        repository_urls=_urls(repository, "clone_url", "ssh_url", "git_url", "html_url"),
        message=first_line(head.get("message")),
        pusher=str((payload.get("pusher") or {}).get("name") or "")[:100],
        commits=len(payload.get("commits") or []),
    )


def _urls(repository: dict, *keys) -> tuple[str, ...]:
    return tuple(str(repository[key]) for key in keys if repository.get(key))


class API(ProviderAPI):
    name = LABEL
    default_base_url = "https://api.github.com"

    def auth_headers(self):
        return {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }

    def set_commit_status(self, repo: Repository, sha, state, *, context, description, url):
        body = {
            "state": check_state(state),
            "target_url": url,
            "description": description[:140],
            "context": context,
        }
        return self.request("POST", f"/repos/{repo.path}/statuses/{sha}", body)

    def add_deploy_key(self, repo: Repository, *, title, public_key):
        body = {"title": title, "key": public_key, "read_only": True}
        return self.request("POST", f"/repos/{repo.path}/keys", body)
