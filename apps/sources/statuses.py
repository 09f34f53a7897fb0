"""Commit statuses (issue 13, push to deploy), the run side: a deployment that a push asked
for is reported on that commit in the provider (pending when queued, then success or
failure), when the stack's source authenticates with a token (the token is the API's
credential too; a deploy key cannot call an API). Best effort: a provider that refuses or
does not answer is logged, nothing else changes.

The API's address comes from the repository's: the public service's for github.com,
gitlab.com and bitbucket.org, else the self-hosted instance's (``/api/v3`` for GitHub
Enterprise, ``/api/v4`` for GitLab, ``/api/v1`` for Gitea and Forgejo), checked as a
repository URL is (no private or local address unless the installation allows them)."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from django.db import connection
from django.utils.translation import gettext as _

from apps.deployments.choices import DeploymentStatus
from apps.deployments.models import Deployment
from apps.secrets import services as secrets
from apps.tenants.links import organization_url
from windflow.engine.sources import git
from windflow.engine.sources.errors import SourceError
from windflow.errors import ServiceError

from . import sync
from .choices import GitAuth
from .models import GitSource, WebhookDelivery
from .providers import ProviderError, registry, repository_of

logger = logging.getLogger(__name__)

ADAPTERS = registry.BY_NAME
STATES = {
    DeploymentStatus.QUEUED: "pending",
    DeploymentStatus.RUNNING: "pending",
    DeploymentStatus.SUCCEEDED: "success",
    DeploymentStatus.FAILED: "failure",
    DeploymentStatus.ROLLED_BACK: "failure",
    DeploymentStatus.CANCELLED: "error",
}
PUBLIC_APIS = {
    ("github", "github.com"): "https://api.github.com",
    ("gitlab", "gitlab.com"): "https://gitlab.com/api/v4",
    ("bitbucket", "bitbucket.org"): "https://api.bitbucket.org/2.0",
}
SELF_HOSTED_PATHS = {"github": "/api/v3", "gitlab": "/api/v4", "gitea": "/api/v1"}


def api_base(provider: str, source_url: str) -> str | None:
    """The provider's API root for the repository at `source_url` (None: no API known)."""
    repo = repository_of(source_url)
    public = PUBLIC_APIS.get((provider, repo.host.lower()))
    if public or provider not in SELF_HOSTED_PATHS:
        return public
    parts = urlsplit(source_url) if "://" in source_url else None
    scheme = "http" if parts is not None and parts.scheme == "http" else "https"
    web = parts is not None and parts.scheme in ("http", "https")
    port = f":{parts.port}" if web and parts.port else ""  # an SSH port is not the web's
    return f"{scheme}://{repo.host}{port}{SELF_HOSTED_PATHS[provider]}"


def report(deployment_id: int) -> dict | None:
    """Set the commit status of a deployment that a push asked for; the provider's answer,
    or None when there is nothing to report or it could not be reported."""
    deployment = (
        Deployment.objects.select_related("stack", "revision", "environment")
        .filter(pk=deployment_id)
        .first()
    )
    if deployment is None or deployment.status not in STATES:
        return None
    delivery = WebhookDelivery.objects.filter(deployment=deployment).order_by("-id").first()
    source = GitSource.objects.filter(stack_id=deployment.stack_id).first()
    sha = deployment.revision.commit_sha
    if delivery is None or source is None or not sha or delivery.provider not in ADAPTERS:
        return None
    if source.auth != GitAuth.TOKEN or not source.token_secret:
        return None
    try:
        base = api_base(delivery.provider, source.url)
        if base is None:
            return None
        git.check_url(base, **sync.url_options())  # no private address unless allowed
        return _send(deployment, source, delivery.provider, base, sha)
    except (ProviderError, SourceError, ServiceError) as exc:
        logger.warning(
            "deployment %s: commit status not reported to %s: %s",
            deployment.pk,
            delivery.provider,
            getattr(exc, "message", exc),
        )
        return None


def _send(deployment: Deployment, source: GitSource, provider: str, base: str, sha: str):
    environment = deployment.environment or deployment.stack.environment
    description = _("%(stack)s #%(n)d: %(status)s") % {
        "stack": deployment.stack.name,
        "n": deployment.pk,
        "status": deployment.get_status_display().lower(),
    }
    url = organization_url(connection.tenant, deployment.get_absolute_url())
    with secrets.resolved([source.token_secret], environment=source.stack.environment) as values:
        api = ADAPTERS[provider].API(values[source.token_secret], base_url=base)
        return api.set_commit_status(
            repository_of(source.url),
            sha,
            STATES[deployment.status],
            context=f"windflow/{environment.slug if environment else 'deploy'}",
            description=description,
            url=url,
        )
