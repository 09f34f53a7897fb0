"""GitLab: deliveries carry the secret token itself in ``X-Gitlab-Token`` (compared in
constant time); events in ``X-Gitlab-Event`` ("Push Hook", "Tag Push Hook"...), delivery id
in ``X-Gitlab-Event-UUID``. API v4 (``PRIVATE-TOKEN``)."""

from __future__ import annotations

from . import (
    OTHER,
    PUSH,
    Delivery,
    ProviderAPI,
    Repository,
    Webhook,
    check_state,
    first_line,
    header,
    require_mapping,
    same,
    sha_or_blank,
)

NAME = "gitlab"
LABEL = "GitLab"
# GitLab's "Test" button sends a push payload; a "System Hook" is the instance's, not ours.
PUSH_EVENTS = ("Push Hook", "Tag Push Hook")
STATES = {"pending": "pending", "success": "success", "failure": "failed", "error": "failed"}


class GitLabWebhook(Webhook):
    """GitLab sends the secret itself, not a signature."""

    name, label = NAME, LABEL
    event_headers = ("X-Gitlab-Event",)
    # Older GitLab sends no UUID: the idempotency key is then the one of its retries.
    delivery_headers = ("X-Gitlab-Event-UUID", "Idempotency-Key")

    def verify(self, headers, body: bytes, secret: str) -> bool:
        return same(header(headers, "X-Gitlab-Token"), secret)

    def sign(self, body: bytes, secret: str) -> dict[str, str]:
        return {"X-Gitlab-Token": secret}

    def parse(self, headers, payload) -> Delivery:
        raw_event, delivery_id = self.event(headers), self.delivery_id(headers)
        if raw_event not in PUSH_EVENTS:
            return Delivery(NAME, delivery_id, OTHER, raw_event)
        require_mapping(payload, "ref", "after", "project")
        project = payload.get("project") or {}
        repository = payload.get("repository") or {}
        commits = payload.get("commits") or []
        after = sha_or_blank(payload.get("checkout_sha") or payload["after"])
        if payload.get("after") and set(str(payload["after"])) == {"0"}:
            after = "0" * 40  # a deleted branch or tag (checkout_sha is null then)
        head = next((c for c in commits if c.get("id") == after), commits[-1] if commits else {})
        urls = [
            project.get(key)
            for key in ("git_http_url", "git_ssh_url", "web_url")
            if project.get(key)
        ]
        urls += [
            repository.get(key) for key in ("git_http_url", "git_ssh_url") if repository.get(key)
        ]
        return Delivery(
            NAME,
            delivery_id,
            PUSH,
            raw_event,
            ref=str(payload["ref"]),
            before=sha_or_blank(payload.get("before")),
            after=after,
            repository_urls=tuple(dict.fromkeys(str(u) for u in urls)),
            message=first_line(head.get("message")),
            pusher=str(payload.get("user_username") or payload.get("user_name") or "")[:100],
            commits=int(payload.get("total_commits_count") or len(commits)),
        )


WEBHOOK = GitLabWebhook()


class API(ProviderAPI):
    name = LABEL
    default_base_url = "https://gitlab.com/api/v4"

    def auth_headers(self):
        return {"PRIVATE-TOKEN": self.token}

    def set_commit_status(self, repo: Repository, sha, state, *, context, description, url):
        body = {
            "state": STATES[check_state(state)],
            "name": context,
            "target_url": url,
            "description": description[:255],
        }
        return self.request("POST", f"/projects/{repo.quoted}/statuses/{sha}", body)

    def add_deploy_key(self, repo: Repository, *, title, public_key):
        body = {"title": title, "key": public_key, "can_push": False}
        return self.request("POST", f"/projects/{repo.quoted}/deploy_keys", body)
