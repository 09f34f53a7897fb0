"""Bitbucket Cloud: deliveries signed with ``X-Hub-Signature: sha256=<hex HMAC-SHA256 of the
raw body>`` (webhooks with a secret); events in ``X-Event-Key`` ("repo:push"...), delivery
id in ``X-Request-UUID`` (``X-Hook-UUID`` names the webhook). API 2.0."""

from __future__ import annotations

from . import (
    OTHER,
    PING,
    PUSH,
    ZERO_SHA,
    BadPayload,
    Delivery,
    ProviderAPI,
    Repository,
    Webhook,
    check_state,
    first_line,
    require_mapping,
    sha_or_blank,
)

NAME = "bitbucket"
LABEL = "Bitbucket"
STATES = {
    "pending": "INPROGRESS",
    "success": "SUCCESSFUL",
    "failure": "FAILED",
    "error": "FAILED",
}


class BitbucketWebhook(Webhook):
    name, label = NAME, LABEL
    event_headers = ("X-Event-Key",)
    delivery_headers = ("X-Request-UUID",)
    signature_headers = ("X-Hub-Signature",)
    signature_prefix = "sha256="

    def parse(self, headers, payload) -> Delivery:
        raw_event, delivery_id = self.event(headers), self.delivery_id(headers)
        if raw_event != "repo:push":
            # Bitbucket Cloud has no ping; Bitbucket Data Center's "Test connection" sends
            # "diagnostics:ping".
            event = PING if raw_event == "diagnostics:ping" else OTHER
            return Delivery(NAME, delivery_id, event, raw_event)
        require_mapping(payload, "push", "repository")
        changes = (payload.get("push") or {}).get("changes") or []
        if not changes:
            raise BadPayload("the push has no changes")
        # One delivery may carry several refs; WindFlow looks at the last change (Bitbucket sends
        # one per ref in practice).
        change = changes[-1]
        new, old = change.get("new") or {}, change.get("old") or {}
        kind = (new or old).get("type", "branch")
        name = (new or old).get("name", "")
        ref = f"refs/tags/{name}" if kind in ("tag", "annotated_tag") else f"refs/heads/{name}"
        after = sha_or_blank((new.get("target") or {}).get("hash")) if new else ZERO_SHA
        repository = payload.get("repository") or {}
        links = repository.get("links") or {}
        urls = [str((links.get("html") or {}).get("href") or "")]
        full_name = repository.get("full_name")
        if full_name:
            urls += [f"https://bitbucket.org/{full_name}.git", f"git@bitbucket.org:{full_name}.git"]
        commits = change.get("commits") or []
        head = (new.get("target") or {}) if new else {}
        return Delivery(
            NAME,
            delivery_id,
            PUSH,
            raw_event,
            ref=ref,
            before=sha_or_blank((old.get("target") or {}).get("hash")) if old else "",
            after=after,
            forced=bool(change.get("forced")),
            repository_urls=tuple(u for u in urls if u),
            message=first_line(head.get("message")),
            pusher=str((payload.get("actor") or {}).get("display_name") or "")[:100],
            commits=len(commits),
        )


WEBHOOK = BitbucketWebhook()


class API(ProviderAPI):
    name = LABEL
    default_base_url = "https://api.bitbucket.org/2.0"

    def set_commit_status(self, repo: Repository, sha, state, *, context, description, url):
        body = {
            "state": STATES[check_state(state)],
            "key": context[:40],
            "name": context,
            "url": url,
            "description": description[:255],
        }
        path = f"/repositories/{repo.path}/commit/{sha}/statuses/build"
        return self.request("POST", path, body)

    def add_deploy_key(self, repo: Repository, *, title, public_key):
        body = {"key": public_key, "label": title}
        return self.request("POST", f"/repositories/{repo.path}/deploy-keys", body)
