from django.utils import translation
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


class UserLanguageMiddleware:
    """The pages speak the signed-in person's chosen language (`User.language`), on every
    host and browser; without a choice, LocaleMiddleware's pick (cookie, then the browser's
    Accept-Language) stands. Runs after AuthenticationMiddleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        language = language_of(request)
        if language:
            translation.activate(language)
            request.LANGUAGE_CODE = language
        return self.get_response(request)


def language_of(request) -> str:
    """The signed-in person's chosen language, or "" (none chosen, or signed out)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return ""
    return getattr(user, "language", "")
