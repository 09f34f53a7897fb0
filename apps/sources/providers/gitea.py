"""Gitea and Forgejo: deliveries signed with ``X-Gitea-Signature: <hex HMAC-SHA256 of the
raw body>`` (no prefix; Forgejo also sends ``X-Forgejo-Signature``); events in
``X-Gitea-Event``, delivery id in ``X-Gitea-Delivery``. GitHub's payload shape and API
(v1, ``Authorization: token``). Gitea's "Test delivery" sends a push; there is no ping."""

from __future__ import annotations

from . import GitHubShapedAPI, GitHubShapedWebhook

NAME = "gitea"
LABEL = "Gitea / Forgejo"


class GiteaWebhook(GitHubShapedWebhook):
    name, label = NAME, LABEL
    event_headers = ("X-Gitea-Event", "X-Forgejo-Event", "X-Gogs-Event")
    delivery_headers = ("X-Gitea-Delivery", "X-Forgejo-Delivery")
    signature_headers = ("X-Gitea-Signature", "X-Forgejo-Signature")
    url_keys = ("clone_url", "ssh_url", "html_url")
    pusher_key = "login"


WEBHOOK = GiteaWebhook()


class API(GitHubShapedAPI):
    name = LABEL
    default_base_url = "https://gitea.com/api/v1"

    def auth_headers(self):
        return {"Authorization": f"token {self.token}"}
