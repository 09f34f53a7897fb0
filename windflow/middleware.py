import re
import sys
import uuid

from django.core.signals import got_request_exception

REQUEST_ID_HEADER = "HTTP_X_REQUEST_ID"
SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

# Strict by default: every script and style is served by the app itself (no CDN, no inline).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self' ws: wss:",
        "frame-ancestors 'none'",
        "form-action 'self' http: https:",
        "base-uri 'self'",
        "object-src 'none'",
    ]
)


class RequestIdMiddleware:
    """Each request carries an id (the caller's X-Request-ID when sane) for logs and audit."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get(REQUEST_ID_HEADER, "")
        request.id = incoming if SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        response = self.get_response(request)
        response["X-Request-ID"] = request.id
        return response


class ContentSecurityPolicyMiddleware:
    """Every response, the Django admin included (its scripts and styles are static files;
    the one inline style of django-tenants' admin index lives in static/css/admin.css)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response


class RefuseNulMiddleware:
    """A NUL character in the path or the query string reaches no view: PostgreSQL cannot
    compare it, so a lookup such as /api/v1/environments/a%00b/ would end in a 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", ""):
            from django.shortcuts import render
            from django.utils.translation import gettext as _

            message = _("The address may not contain NUL characters (%00).")
            if request.path.startswith("/api/"):
                from windflow.api.errors import json_error

                return json_error(400, "nul_character", message)
            return render(request, "400.html", {"message": message}, status=400)
        return self.get_response(request)


# --- Dependencies away ------------------------------------------------------------------------

RETRY_AFTER_SECONDS = 5


def _note_dependency(sender, request=None, **kwargs):
    """Django's handler is about to answer 500 for an exception: note whether it says that
    PostgreSQL or Redis is away (read by DependencyUnavailableMiddleware)."""
    if request is None:
        return
    from windflow.resilience import dependency_of

    dependency = dependency_of(sys.exc_info()[1])
    if dependency:
        request.dependency_unavailable = dependency


got_request_exception.connect(_note_dependency, dispatch_uid="windflow.dependency_unavailable")


def dependency_label(dependency: str) -> str:
    from django.utils.translation import gettext as _

    return {"database": _("The database (PostgreSQL)"), "redis": _("Redis")}.get(
        dependency, dependency
    )


def unavailable_response(request, dependency: str):
    """503 naming the dependency: JSON under /api/, else a page that needs neither the
    database nor Redis to render."""
    from django.http import HttpResponse
    from django.template.loader import render_to_string
    from django.utils.translation import gettext as _

    message = _("%(what)s is unavailable for a moment. Please try again in a few seconds.") % {
        "what": dependency_label(dependency)
    }
    if request.path.startswith("/api/"):
        from windflow.api.errors import json_error

        response = json_error(503, f"{dependency}_unavailable", message)
    else:
        body = render_to_string("503.html", {"message": message, "dependency": dependency})
        response = HttpResponse(body, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DependencyUnavailableMiddleware:
    """First in the chain. A request that meets PostgreSQL or Redis away (a restart, a
    failover) answers 503 naming it, with Retry-After, instead of 500: wherever the error was
    raised, in a view or in another middleware (the organisation lookup, the session).
    /healthz is answered here too, before anything that needs the database or Redis."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path == "/healthz":
            from windflow.views import healthz

            return healthz(request)
        response = self.get_response(request)
        dependency = getattr(request, "dependency_unavailable", None)
        if dependency and response.status_code == 500:
            return unavailable_response(request, dependency)
        return response
