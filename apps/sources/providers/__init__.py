"""Git providers: how each one signs and shapes its webhook deliveries, and a small adapter
for its REST API (commit statuses, deploy keys), one module per provider, as healthchecks.io
keeps one transport per integration.

A provider module has:

- ``NAME`` and ``LABEL``;
- ``WEBHOOK``: a :class:`Webhook` (its headers, how it signs, how it shapes a push);
- ``API``: a :class:`ProviderAPI` for the provider's REST API.

GitHub and Gitea/Forgejo share one payload and API shape (:class:`GitHubShapedWebhook`,
:class:`GitHubShapedAPI`); a provider module only says what differs.

Nothing here imports Django models: the webhook view (apps.sources.webhooks) records what
happened.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import httpx

ZERO_SHA = "0" * 40
SHA = re.compile(r"^[0-9a-f]{40}$")

# Normalised events: what the webhook view decides on.
PUSH = "push"
PING = "ping"
OTHER = "other"

# Normalised commit states, mapped to each provider's words by its adapter.
STATES = ("pending", "success", "failure", "error")


@dataclass(frozen=True)
class Delivery:
    """One delivery, as the webhook view needs it, whatever the provider."""

    provider: str
    delivery_id: str
    event: str  # PUSH, PING or OTHER
    raw_event: str  # the provider's own event name (for the record)
    ref: str = ""  # "refs/heads/main", "refs/tags/v1.2"
    before: str = ""
    after: str = ""  # the commit the ref points at now (ZERO_SHA: the ref was deleted)
    forced: bool = False  # the provider says the push rewrote history
    repository_urls: tuple[str, ...] = ()
    message: str = ""  # the head commit's message, first line
    pusher: str = ""
    commits: int = 0

    @property
    def deleted(self) -> bool:
        return self.event == PUSH and self.after == ZERO_SHA

    @property
    def branch(self) -> str | None:
        return self.ref.removeprefix("refs/heads/") if self.ref.startswith("refs/heads/") else None

    @property
    def tag(self) -> str | None:
        return self.ref.removeprefix("refs/tags/") if self.ref.startswith("refs/tags/") else None


class BadPayload(ValueError):
    """The body is not the provider's JSON shape for its event."""


def header(headers, name: str) -> str:
    """A request header, case-insensitively (Django's request.headers or a plain dict)."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), "")
    return str(value or "").strip()


def hmac_sha256(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def same(given: str, expected: str) -> bool:
    """Constant-time comparison of two texts (empty never matches)."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def first_line(text) -> str:
    return str(text or "").strip().splitlines()[0][:200] if str(text or "").strip() else ""


def sha_or_blank(value) -> str:
    value = str(value or "").strip().lower()
    return value if SHA.match(value) else ""


def require_mapping(payload, *keys) -> None:
    if not isinstance(payload, dict):
        raise BadPayload("the body is not a JSON object")
    missing = [key for key in keys if key not in payload]
    if missing:
        raise BadPayload(f"the body has no {', '.join(missing)}")


# --- The webhooks ---------------------------------------------------------------------------


def first_header(headers, names) -> str:
    return next((value for name in names if (value := header(headers, name))), "")


class Webhook:
    """How one provider names, signs and shapes its deliveries (one subclass per provider).

    By default a delivery is signed with the hex HMAC-SHA256 of its raw body, in the first of
    `signature_headers` it carries, after `signature_prefix`; checked in constant time."""

    name = ""
    label = ""
    event_headers: tuple[str, ...] = ()
    delivery_headers: tuple[str, ...] = ()
    signature_headers: tuple[str, ...] = ()
    signature_prefix = ""

    def event(self, headers) -> str:
        """The provider's own event name ("" when the delivery carries none of its headers)."""
        return first_header(headers, self.event_headers)

    def delivery_id(self, headers) -> str:
        return first_header(headers, self.delivery_headers)

    def detects(self, headers) -> bool:
        return bool(self.event(headers))

    def verify(self, headers, body: bytes, secret: str) -> bool:
        signature = first_header(headers, self.signature_headers)
        if not signature.startswith(self.signature_prefix):
            return False
        expected = hmac_sha256(secret, body)
        return same(signature.removeprefix(self.signature_prefix).lower(), expected)

    def sign(self, body: bytes, secret: str) -> dict[str, str]:
        """The signature header a delivery of `body` carries (tests, benchmarks)."""
        return {self.signature_headers[0]: self.signature_prefix + hmac_sha256(secret, body)}

    def parse(self, headers, payload) -> Delivery:
        raise NotImplementedError


class GitHubShapedWebhook(Webhook):
    """A push payload of GitHub's shape (ref, before, after, repository, head_commit, pusher,
    commits), which Gitea and Forgejo send too."""

    ping_event = ""  # the provider's ping event, if it has one
    url_keys: tuple[str, ...] = ()  # the repository's URLs in the payload
    pusher_key = "name"
    reports_forced = False  # the payload says whether the push rewrote history

    def parse(self, headers, payload) -> Delivery:
        raw_event, delivery_id = self.event(headers), self.delivery_id(headers)
        if raw_event != "push":
            event = PING if self.ping_event and raw_event == self.ping_event else OTHER
            return Delivery(self.name, delivery_id, event, raw_event)
        require_mapping(payload, "ref", "after", "repository")
        repository = payload.get("repository") or {}
        head = payload.get("head_commit") or {}
        return Delivery(
            self.name,
            delivery_id,
            PUSH,
            raw_event,
            ref=str(payload["ref"]),
            before=sha_or_blank(payload.get("before")),
            after=sha_or_blank(payload["after"]),
            forced=self.reports_forced and bool(payload.get("forced")),
            repository_urls=tuple(str(repository[k]) for k in self.url_keys if repository.get(k)),
            message=first_line(head.get("message")),
            pusher=str((payload.get("pusher") or {}).get(self.pusher_key) or "")[:100],
            commits=len(payload.get("commits") or []),
        )


# --- The provider APIs ----------------------------------------------------------------------


class ProviderError(Exception):
    """The provider's API refused or could not be reached; `code` says which."""

    def __init__(self, message: str, *, code: str = "provider_error", status: int | None = None):
        super().__init__(message)
        self.message, self.code, self.status = message, code, status


@dataclass(frozen=True)
class Repository:
    """Where a repository lives on its provider: the API's host and its path there."""

    host: str
    path: str  # "owner/name" (GitLab: "group/subgroup/name")

    @property
    def owner(self) -> str:
        return self.path.rsplit("/", 1)[0]

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[1]

    @property
    def quoted(self) -> str:
        return quote(self.path, safe="")


SCP_URL = re.compile(r"^(?:[\w.-]+@)?(?P<host>[\w.-]+):(?P<path>[^/].*)$")


def repository_of(url: str) -> Repository:
    """The provider host and repository path of a clone URL (https://, ssh://, or the scp
    form git@host:owner/name.git)."""
    url = url.strip()
    if "://" in url:
        parts = urlsplit(url)
        host, path = parts.hostname or "", parts.path
    else:
        match = SCP_URL.match(url)
        if not match:
            raise ProviderError(f"Not a repository URL: {url}", code="bad_url")
        host, path = match["host"], match["path"]
    path = path.strip("/").removesuffix(".git")
    if not host or path.count("/") < 1:
        raise ProviderError(f"Not a repository URL: {url}", code="bad_url")
    return Repository(host=host, path=path)


@dataclass
class ProviderAPI:
    """One provider's REST API: the two calls WindFlow makes (a commit status after a
    deployment, a read-only deploy key for a stack). `base_url` is the API root (the public
    service's by default; a self-hosted instance's, or a stand-in server's in tests)."""

    token: str
    base_url: str = ""
    timeout: float = 10.0
    transport: httpx.BaseTransport | None = field(default=None, repr=False)

    name = ""
    default_base_url = ""

    def __post_init__(self):
        self.base_url = (self.base_url or self.default_base_url).rstrip("/")

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def request(self, method: str, path: str, body: dict) -> dict:
        headers = {"Accept": "application/json", "User-Agent": "WindFlow", **self.auth_headers()}
        try:
            with httpx.Client(timeout=self.timeout, transport=self.transport) as client:
                response = client.request(method, self.base_url + path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ProviderError(
                f"{self.name}: the API at {self.base_url} did not answer ({exc}).",
                code="provider_unreachable",
            ) from exc
        if response.status_code in (401, 403):
            raise ProviderError(
                f"{self.name}: the token was refused ({response.status_code}).",
                code="provider_auth_failed",
                status=response.status_code,
            )
        if response.status_code == 404:
            raise ProviderError(
                f"{self.name}: no such repository or commit, or the token cannot see it.",
                code="provider_not_found",
                status=404,
            )
        if response.status_code >= 400:
            raise ProviderError(
                f"{self.name}: the API answered {response.status_code}: {response.text[:200]}",
                code="provider_refused",
                status=response.status_code,
            )
        try:
            return response.json()
        except ValueError as exc:
            raise ProviderError(
                f"{self.name}: the API answered something else than JSON.", code="provider_error"
            ) from exc

    # What each provider implements:
    def set_commit_status(
        self, repo: Repository, sha: str, state: str, *, context: str, description: str, url: str
    ) -> dict:
        raise NotImplementedError

    def add_deploy_key(self, repo: Repository, *, title: str, public_key: str) -> dict:
        raise NotImplementedError


def check_state(state: str) -> str:
    if state not in STATES:
        raise ValueError(f"state must be one of {STATES}, not {state!r}")
    return state


class GitHubShapedAPI(ProviderAPI):
    """GitHub's commit statuses and deploy keys, which Gitea and Forgejo answer too."""

    description_limit = 255

    def set_commit_status(self, repo: Repository, sha, state, *, context, description, url):
        body = {
            "state": check_state(state),
            "target_url": url,
            "description": description[: self.description_limit],
            "context": context,
        }
        return self.request("POST", f"/repos/{repo.path}/statuses/{sha}", body)

    def add_deploy_key(self, repo: Repository, *, title, public_key):
        body = {"title": title, "key": public_key, "read_only": True}
        return self.request("POST", f"/repos/{repo.path}/keys", body)
