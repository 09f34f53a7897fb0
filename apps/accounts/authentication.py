"""REST API authentication: personal access tokens (`wf_...`) and JWT pairs, each bound to
one organisation. A credential of another organisation is refused with 401, and so is one
that a revocation ended (see docs/tokens.md): every check reads the current state, through a
request cache that every write path clears."""

from django.utils.translation import gettext as _
from rest_framework import authentication, exceptions
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from . import services
from .models import ApiToken

ORG_CLAIM = services.ORG_CLAIM


def bearer_credential(request) -> str | None:
    header = authentication.get_authorization_header(request).decode(errors="replace")
    scheme, _sep, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        return None
    return credential.strip()


class AccessTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        credential = bearer_credential(request)
        if credential is None or not credential.startswith(ApiToken.PREFIX):
            return None
        tenant = getattr(request, "tenant", None)
        token = services.resolve_api_token(credential, tenant) if tenant else None
        if token is None:
            raise exceptions.AuthenticationFailed(
                _("Invalid, expired or revoked token, or a token of another organisation.")
            )
        # The membership the token was checked against is the request's: no second lookup.
        request._request.membership = token.membership
        return token.user, token

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class OrganizationJWTAuthentication(JWTAuthentication):
    """JWT access tokens carry the organisation's schema; they only open that organisation."""

    def authenticate(self, request):
        credential = bearer_credential(request)
        if credential is None or credential.startswith(ApiToken.PREFIX):
            return None
        try:
            validated = self.get_validated_token(credential.encode())
        except (InvalidToken, TokenError) as exc:
            raise exceptions.AuthenticationFailed(_("Invalid or expired access token.")) from exc
        tenant = getattr(request, "tenant", None)
        if tenant is None or validated.get(ORG_CLAIM) != tenant.schema_name:
            raise exceptions.AuthenticationFailed(_("This token is for another organisation."))
        user = self.get_user(validated)  # from the database: refused when inactive
        try:
            services.check_jwt(validated, user, tenant)
        except services.SignInEnded as exc:
            raise exceptions.AuthenticationFailed(exc.message) from exc
        return user, validated
