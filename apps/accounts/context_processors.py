from django.conf import settings

from . import services
from .middleware import membership_of


def _support_notices(tenant, membership) -> list:
    """For the organisation's members (and the staff in it): nobody else reads them."""
    if tenant is None or tenant.is_public or membership is None:
        return []
    return services.support_notices(tenant)


def organization(request):
    """What every page needs: the current organisation, the member's role, what they can do,
    and the organisations they can switch to."""
    tenant = getattr(request, "tenant", None)
    membership = membership_of(request)
    user = getattr(request, "user", None)
    switcher = []
    if user is not None and user.is_authenticated:
        switcher = [
            m.organization
            for m in user.memberships.select_related("organization").order_by("organization__name")
        ]
    return {
        "organization": None if tenant is None or tenant.is_public else tenant,
        "membership": membership,
        # Platform staff here through a support access: the banner of every page says so,
        # to them (`support_access`, their own) and to the members (`support_notices`).
        "support_access": getattr(request, "support_access", None),
        "support_notices": _support_notices(tenant, membership),
        "my_organizations": switcher,
        "WINDFLOW_PUBLIC_URL": settings.WINDFLOW_PUBLIC_URL.rstrip("/"),
        "oidc_enabled": settings.WINDFLOW_OIDC_ENABLED,
        "oidc_provider_name": settings.OIDC_PROVIDER_NAME,
        "support_contact": settings.WINDFLOW_SUPPORT_CONTACT,
    }
