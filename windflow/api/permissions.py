from django.utils.translation import gettext as _
from rest_framework import permissions as drf_permissions

from apps.accounts import permissions
from apps.accounts.middleware import membership_of
from apps.accounts.models import ApiToken
from windflow.errors import Forbidden


class IsOrganizationMember(drf_permissions.BasePermission):
    """The caller is a member of the organisation of the request host; read-only tokens only
    read; and the viewset's `permission_actions` map each action to a permissions.can()."""

    message = _("You are not a member of this organisation.")

    def has_permission(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return False
        membership = membership_of(request)
        if membership is None:
            return False
        if (
            isinstance(request.auth, ApiToken)
            and not request.auth.can_write
            and request.method not in drf_permissions.SAFE_METHODS
        ):
            self.message = _("This token is read-only; create a token with the write scope.")
            return False
        action = view.required_action(request)
        if action not in (None, permissions.NO_ROLE):
            try:
                permissions.require(membership, action)
            except Forbidden as exc:  # names the role and what it does not allow
                self.message = exc.message
                return False
        return True
