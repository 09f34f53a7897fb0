"""Single sign-on through any OpenID Connect provider (Keycloak, Authentik, Okta...)."""

import logging

import requests
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import SuspiciousOperation
from django.http import Http404
from django.utils.translation import gettext as _
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

logger = logging.getLogger(__name__)


def _is_true(value) -> bool:
    """A claim's truth: some providers (AWS Cognito...) send booleans as strings."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True


class WindFlowOIDCBackend(OIDCAuthenticationBackend):
    """Match people by verified email; create them on first sign-in."""

    def verify_claims(self, claims):
        # An address the provider has not verified could be anyone's: refused, unless the
        # operator trusts a provider that never sends the claim (OIDC_REQUIRE_VERIFIED_EMAIL
        # off, e.g. Azure AD). "false" as a string is false too.
        default = not settings.OIDC_REQUIRE_VERIFIED_EMAIL
        return bool((claims.get("email") or "").strip()) and _is_true(
            claims.get("email_verified", default)
        )

    def filter_users_by_claims(self, claims):
        # Inactive accounts are matched too, so that they are refused (the callback checks
        # is_active) rather than duplicated (the email is unique).
        email = (claims.get("email") or "").strip().lower()
        if not email:
            return self.UserModel.objects.none()
        return self.UserModel.objects.filter(email__iexact=email)

    def create_user(self, claims):
        return self.UserModel.objects.create_user(
            email=claims["email"].strip().lower(),
            password=None,
            full_name=claims.get("name") or "",
        )

    def update_user(self, user, claims):
        name = claims.get("name")
        if name and not user.full_name:
            user.full_name = name
            user.save(update_fields=["full_name"])
        return user

    def get_username(self, claims):  # our User has no username
        return claims.get("email", _("unknown"))


class WindFlowOIDCAuthenticateView(OIDCAuthenticationRequestView):
    """/oidc/authenticate/: only when single sign-on is configured."""

    def get(self, request):
        if not settings.WINDFLOW_OIDC_ENABLED:
            raise Http404
        return super().get(request)


class WindFlowOIDCCallbackView(OIDCAuthenticationCallbackView):
    """/oidc/callback/: every failure (a state that is not ours, a token that does not verify,
    an unreachable provider...) sends the person back to the sign-in page with a message,
    never to an error page."""

    def get(self, request):
        if not settings.WINDFLOW_OIDC_ENABLED:
            raise Http404
        try:
            return super().get(request)
        except (SuspiciousOperation, requests.RequestException) as exc:
            logger.warning("single sign-on failed: %s", exc)
            return self.login_failure()

    def login_failure(self):
        messages.error(
            self.request,
            _("Single sign-on with %(provider)s failed. Please try again.")
            % {"provider": settings.OIDC_PROVIDER_NAME},
        )
        return super().login_failure()
