from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings


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
