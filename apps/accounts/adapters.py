from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError

from apps.tenants import index as operator_index
from windflow.clientaddress import client_address


class AccountAdapter(DefaultAccountAdapter):
    def is_safe_url(self, url):
        """Allow redirects to organisations' own subdomains (after sign-in, invitations)."""
        from django.utils.http import url_has_allowed_host_and_scheme

        base = settings.WINDFLOW_BASE_DOMAIN
        allowed = {base}
        if url:
            from urllib.parse import urlsplit

            host = urlsplit(url).hostname or ""
            if host.endswith("." + base):
                allowed.add(host)
        return url_has_allowed_host_and_scheme(url, allowed_hosts=allowed) or super().is_safe_url(
            url
        )

    def get_client_ip(self, request):
        """The sign-in lockout counts per address: the one windflow.clientaddress computes
        (X-Forwarded-For only through WINDFLOW_TRUSTED_PROXIES)."""
        address = client_address(request)
        if not address:
            raise PermissionDenied("Unable to determine the client's address.")
        return address

    def pre_authenticate(self, request, **credentials):
        """allauth's lockout (too many failed sign-ins for this person), recorded for the
        operators' security events (the same person again within minutes is one event)."""
        try:
            super().pre_authenticate(request, **credentials)
        except ValidationError:
            login = credentials.get("email", credentials.get("username", "")) or ""
            operator_index.security_event(
                "lockout",
                actor=login.strip().lower(),
                summary=f"sign-in locked after repeated failures, from {client_address(request)}",
            )
            raise

    def _get_login_attempts_cache_key(self, request, **credentials):
        """One lockout per person, whichever host the attempt came through (allauth keys it
        by site, and every organisation's host is a site of its own)."""
        login = credentials.get("email", credentials.get("username", "")) or ""
        return f"login:{login.strip().lower()}"
