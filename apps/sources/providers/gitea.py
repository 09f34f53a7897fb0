"""Gitea and Forgejo: deliveries signed with ``X-Gitea-Signature: <hex HMAC-SHA256 of the
raw body>`` (no prefix; Forgejo also sends ``X-Forgejo-Signature``); events in
``X-Gitea-Event``, delivery id in ``X-Gitea-Delivery``. API v1 (``Authorization: token``)."""

from __future__ import annotations

from . import (
    OTHER,
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

NAME = "gitea"
LABEL = "Gitea / Forgejo"
EVENT_HEADERS = ("X-Gitea-Event", "X-Forgejo-Event", "X-Gogs-Event")


def detects(headers) -> bool:
    return any(header(headers, name) for name in EVENT_HEADERS)


def verify(headers, body: bytes, secret: str) -> bool:
    signature = header(headers, "X-Gitea-Signature") or header(headers, "X-Forgejo-Signature")
    return same(signature.lower(), hmac_sha256(secret, body))


def sign(body: bytes, secret: str) -> dict[str, str]:
    return {"X-Gitea-Signature": hmac_sha256(secret, body)}


def parse(headers, payload) -> Delivery:
    raw_event = next((header(headers, n) for n in EVENT_HEADERS if header(headers, n)), "")
    delivery_id = header(headers, "X-Gitea-Delivery") or header(headers, "X-Forgejo-Delivery")
    if raw_event != "push":
        # Gitea's "Test delivery" sends a push; there is no ping event.
        return Delivery(NAME, delivery_id, OTHER, raw_event)
    require_mapping(payload, "ref", "after", "repository")
    repository = payload.get("repository") or {}
    head = payload.get("head_commit") or {}
    urls = [repository.get(k) for k in ("clone_url", "ssh_url", "html_url") if repository.get(k)]
    return Delivery(
        NAME,
        delivery_id,
        PUSH,
        raw_event,
        ref=str(payload["ref"]),
        before=sha_or_blank(payload.get("before")),
        after=sha_or_blank(payload["after"]),
        repository_urls=tuple(str(u) for u in urls),
        message=first_line(head.get("message")),
        pusher=str((payload.get("pusher") or {}).get("login") or "")[:100],
        commits=len(payload.get("commits") or []),
    )


class API(ProviderAPI):
    name = LABEL
    default_base_url = "https://gitea.com/api/v1"

    def auth_headers(self):
        return {"Authorization": f"token {self.token}"}

    def set_commit_status(self, repo: Repository, sha, state, *, context, description, url):
        body = {
            "state": check_state(state),
            "target_url": url,
            "description": description[:255],
            "context": context,
        }
        return self.request("POST", f"/repos/{repo.path}/statuses/{sha}", body)

    def add_deploy_key(self, repo: Repository, *, title, public_key):
        body = {"title": title, "key": public_key, "read_only": True}
        return self.request("POST", f"/repos/{repo.path}/keys", body)
