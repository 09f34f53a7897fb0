"""GitHub: deliveries signed with ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw
body>``; events in ``X-GitHub-Event``, delivery id in ``X-GitHub-Delivery``. API v3 (REST)."""

from __future__ import annotations

from . import GitHubShapedAPI, GitHubShapedWebhook

NAME = "github"
LABEL = "GitHub"


class GitHubWebhook(GitHubShapedWebhook):
    name, label = NAME, LABEL
    event_headers = ("X-GitHub-Event",)
    delivery_headers = ("X-GitHub-Delivery",)
    signature_headers = ("X-Hub-Signature-256",)
    signature_prefix = "sha256="
    ping_event = "ping"
    url_keys = ("clone_url", "ssh_url", "git_url", "html_url")
    reports_forced = True


WEBHOOK = GitHubWebhook()


class API(GitHubShapedAPI):
    name = LABEL
    default_base_url = "https://api.github.com"
    description_limit = 140

    def auth_headers(self):
        return {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
