"""URLs of the public host (the base domain): sign-up, sign-in, organisations, operators'
admin."""

from django.contrib import admin
from django.urls import include, path, re_path

from apps.accounts import views as account_views
from windflow.views import healthz, platform_health

from .urls_common import api_docs_urlpatterns, api_on_public_host, common_urlpatterns

admin.site.site_header = "WindFlow operators"
admin.site.site_title = "WindFlow admin"

urlpatterns = [
    path("", account_views.home, name="home"),
    path(
        "organizations/new/",
        account_views.OrganizationCreateView.as_view(),
        name="organization_create",
    ),
    path("organizations/<slug:slug>/go/", account_views.go_to_organization, name="organization_go"),
    path("accounts/language/", account_views.set_language, name="set_language"),
    path("accounts/", include("allauth.urls")),
    path("oidc/", include("mozilla_django_oidc.urls")),
    path("admin/health/", admin.site.admin_view(platform_health), name="platform_health"),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    *api_docs_urlpatterns,
    *common_urlpatterns,
    re_path(r"^api/(?P<rest>.*)$", api_on_public_host),
]

handler404 = "windflow.urls_common.page_not_found"
handler400 = "windflow.urls_common.bad_request"
handler403 = "windflow.urls_common.permission_denied"
handler500 = "windflow.urls_common.server_error"
