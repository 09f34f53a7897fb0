from django.utils.functional import SimpleLazyObject

from . import permissions


class MembershipMiddleware:
    """`request.membership`: the signed-in user's membership in the request's organisation,
    or None (public host, anonymous user or outsider). Loaded on first use."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.membership = SimpleLazyObject(lambda: _membership_or_none(request))
        return self.get_response(request)


class _NoMembership:
    """Stands for None behind SimpleLazyObject (which cannot wrap None itself)."""

    def __bool__(self):
        return False


def _membership_or_none(request):
    tenant = getattr(request, "tenant", None)
    if tenant is None or tenant.is_public:
        return _NoMembership()
    return permissions.get_membership(request.user, tenant) or _NoMembership()


def membership_of(request):
    """The real Membership or None (unwrapping the lazy object)."""
    membership = getattr(request, "membership", None)
    return membership if membership else None
