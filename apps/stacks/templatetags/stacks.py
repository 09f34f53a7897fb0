from django import template
from django.urls import NoReverseMatch, reverse

from apps.deployments.choices import DeploymentStatus

register = template.Library()

STATUS_CLASSES = {
    "awaiting_approval": "text-bg-info",
    "queued": "text-bg-secondary",
    "running": "text-bg-primary",
    "succeeded": "text-bg-success",
    "failed": "text-bg-danger",
    "rolled_back": "text-bg-warning",
    "cancelled": "text-bg-light",
}
SEVERITY_CLASSES = {"error": "text-bg-danger", "warning": "text-bg-warning", "info": "text-bg-info"}


@register.simple_tag
def optional_url(name: str, *args) -> str:
    """The URL, or "" while the page it names does not exist (yet)."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


@register.filter
def status_class(status: str) -> str:
    return STATUS_CLASSES.get(status or "", "text-bg-light")


@register.filter
def status_label(status: str) -> str:
    """A deployment status in the reader's language ("rolled_back" -> "Rolled back")."""
    return DeploymentStatus(status).label if status in DeploymentStatus.values else status


@register.filter
def severity_class(severity: str) -> str:
    return SEVERITY_CLASSES.get(severity or "", "text-bg-secondary")
