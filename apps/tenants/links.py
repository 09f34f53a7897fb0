"""Absolute URLs of an organisation's pages; imports no model, so models and services both can."""

from urllib.parse import urlsplit

from django.conf import settings


def organization_url(organization, path: str = "/") -> str:
    """Keep the scheme and port of the public URL, swap in the organisation's host."""
    public = urlsplit(settings.WINDFLOW_PUBLIC_URL)
    netloc = organization.primary_domain + (f":{public.port}" if public.port else "")
    return f"{public.scheme}://{netloc}{path}"
