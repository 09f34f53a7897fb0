from django.shortcuts import render
from django.templatetags.static import static
from django.urls import path
from django.views.decorators.http import require_safe
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from apps.accounts.permissions import NO_ROLE
from windflow.api.errors import json_error


@require_safe
def favicon(request):
    return RedirectView.as_view(url=static("favicon.svg"), permanent=True)(request)


common_urlpatterns = [path("favicon.ico", favicon)]

api_docs_urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api_schema"), name="api_docs"),
]


def page_not_found(request, exception=None):
    """API paths get the API's JSON error body; pages get a friendly page."""
    if request.path.startswith("/api/"):
        return json_error(404, "not_found", "Not found.")
    return render(request, "404.html", status=404)


def server_error(request):
    if request.path.startswith("/api/"):
        return json_error(500, "server_error", "Something went wrong on our side.")
    return render(request, "500.html", status=500)


def permission_denied(request, exception=None):
    if request.path.startswith("/api/"):
        return json_error(403, "permission_denied", str(exception) or "Permission denied.")
    return render(request, "403.html", {"message": str(exception or "")}, status=403)


def bad_request(request, exception=None):
    if request.path.startswith("/api/"):
        return json_error(400, "bad_request", "Bad request.")
    return render(request, "400.html", status=400)


def api_on_public_host(request, rest=""):
    """The API belongs to an organisation: say where it is rather than a bare 404."""
    return json_error(
        404,
        "organization_host_required",
        "The API is served on your organisation's host, e.g. "
        "http://<organisation>.<base domain>/api/v1/.",
    )


api_on_public_host.action = NO_ROLE  # answers every method with that 404, changes nothing
