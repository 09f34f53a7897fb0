"""Single sign-on through any OpenID Connect provider (Keycloak, Authentik, Okta...)."""

from django.utils.translation import gettext as _
from mozilla_django_oidc.auth import OIDCAuthenticationBackend


class WindFlowOIDCBackend(OIDCAuthenticationBackend):
    """Match people by verified email; create them on first sign-in."""

    def verify_claims(self, claims):
        return bool(claims.get("email")) and claims.get("email_verified", True) is not False

    def filter_users_by_claims(self, claims):
        email = (claims.get("email") or "").strip().lower()
        if not email:
            return self.UserModel.objects.none()
        return self.UserModel.objects.filter(email__iexact=email, is_active=True)

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
