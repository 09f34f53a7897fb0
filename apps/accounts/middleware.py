from django.shortcuts import render
from django.utils import translation
from django.utils.functional import SimpleLazyObject
from django.utils.translation import gettext as _

from . import permissions, services


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
    grant = getattr(request, "support_access", None)
    if grant is not None:  # platform staff, through SupportAccessMiddleware
        return services.support_membership(grant)
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


# --- Support access -------------------------------------------------------------------------

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# What a read-only support session may still post: signing out, the pages' language.
READ_ONLY_ALLOWED_PATHS = ("/accounts/logout/", "/accounts/language/", "/admin/logout/")
# The handoff signs in afresh (a newer support access replaces the session's, ended by it).
HANDOFF_PATH = "/accounts/handoff/"


class SupportAccessMiddleware:
    """Platform staff in an organisation through a support access (opened by the sign-in link
    of the public admin, apps.accounts.services.start_support_access): `request.support_access`
    while it is in force, None otherwise. An access that expired or was ended stops at once
    (the next request is refused); a read-only one refuses every write, on pages and the API.

    Costs a dictionary lookup for everyone else: only a session that holds a support access
    is looked at."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.support_access = None
        session = getattr(request, "session", None)
        opened = session.get(services.SUPPORT_SESSION_KEY) if session is not None else None
        tenant = getattr(request, "tenant", None)
        if not opened or tenant is None or opened.get("org") != tenant.schema_name:
            return self.get_response(request)
        if request.path == HANDOFF_PATH:
            return self.get_response(request)
        grant = services.active_support_access(request.user, tenant, opened.get("id"))
        if grant is None:
            return _support_ended(request, opened.get("id"))
        request.support_access = grant
        if not grant.read_write and _is_write(request):
            return refuse_read_only(request)
        return self.get_response(request)


def _is_write(request) -> bool:
    return request.method not in SAFE_METHODS and request.path not in READ_ONLY_ALLOWED_PATHS


def _refusal(request, code: str, message: str):
    """403: the API's JSON error body under /api/, else the 403 page with the message; an
    HTMX form (which swaps no error response) gets the message in the page's messages."""
    if request.path.startswith("/api/"):
        from windflow.api.errors import json_error  # DRF's settings import this module

        return json_error(403, code, message)
    if request.headers.get("HX-Request"):
        response = render(request, "accounts/htmx/refusal.html", {"message": message})
        response["HX-Retarget"] = "#messages"
        response["HX-Reswap"] = "innerHTML"
        response["HX-Reselect"] = "#refusal"  # whatever the form's own hx-select
        return response
    return render(request, "403.html", {"message": message}, status=403)


def refuse_read_only(request):
    message = _(
        "Read-only support access: nothing can be changed. Ask for read-write support access "
        "in the platform admin if a change is needed."
    )
    return _refusal(request, "support_read_only", message)


def _support_ended(request, grant_id):
    """The session's support access is over: it opens nothing any more (the person stays
    signed in, with no access here), and its end is in both audit trails."""
    request.session.pop(services.SUPPORT_SESSION_KEY, None)
    services.record_support_end(grant_id)
    message = _("Your support access to this organisation has ended.")
    return _refusal(request, "support_ended", message)
