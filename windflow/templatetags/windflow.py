from django import template

from apps.accounts import permissions

register = template.Library()


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
