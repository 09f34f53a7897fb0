from django import template
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

from apps.accounts import permissions
from windflow.engine.units import split_bytes
from windflow.i18n import translated_diagnosis, translated_reason

register = template.Library()

# Docker's words for a container's state and health, and WindFlow's for a service's
# (apps.stacks.runtime), as people read them; an unknown word is shown as Docker says it.
CONTAINER_STATES = {
    "created": _("created"),
    "restarting": _("restarting"),
    "running": _("running"),
    "removing": _("removing"),
    "paused": _("paused"),
    "exited": _("exited"),
    "dead": _("dead"),
    "partial": _("partly running"),
    "missing": _("missing"),
    "starting": _("starting"),
    "healthy": _("healthy"),
    "unhealthy": _("unhealthy"),
}


@register.filter
def can(membership, action: str) -> bool:
    """{% if membership|can:"environment.add" %} — the same decision as views and API."""
    return permissions.can(membership or None, action)


@register.simple_tag
def can_on(membership, action: str, obj) -> bool:
    return permissions.can(membership or None, action, obj)


@register.simple_tag(takes_context=True)
def querystring_with(context, **changes) -> str:
    """The current query string with some parameters replaced (pagination, sorting)."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        if value in (None, ""):
            params.pop(key, None)
        else:
            params[key] = value
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"


@register.filter
def image_name(reference: str) -> str:
    """`registry.example:5000/team/web:1.4` -> `web:1.4`: the part people recognise (the
    whole reference goes in a title)."""
    return (reference or "").rsplit("/", 1)[-1]


BYTE_UNITS = {"B": _("B"), "KiB": _("KiB"), "MiB": _("MiB"), "GiB": _("GiB"), "TiB": _("TiB")}


@register.filter(name="bytes")
def bytes_filter(value) -> str:
    """{{ facts.memory_bytes|bytes }} — "7.6 GiB": binary units, as the checks' messages
    (windflow.engine.units); "—" when unknown."""
    try:
        number, unit = split_bytes(int(value))
    except (TypeError, ValueError):
        return "—"
    decimals = len(number.partition(".")[2])
    return f"{number_format(float(number), decimals)} {BYTE_UNITS[unit]}"


@register.filter
def container_state(state: str) -> str:
    """A container's (or service's) state or health, in the reader's language."""
    return CONTAINER_STATES.get(state or "", state)


@register.filter
def in_language(diagnosis: dict) -> dict:
    """{% with diagnosis=deployment.diagnosis|in_language %}: a stored diagnosis with its
    summary and hint in the reader's language."""
    return translated_diagnosis(diagnosis)


@register.filter
def reason_in_language(deployment) -> str:
    """{{ deployment|reason_in_language }}: its reason in the reader's language when the
    reason is its diagnosis's summary (the usual case), else as it was written."""
    return translated_reason(deployment.reason, deployment.diagnosis)
