import re
import uuid

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
