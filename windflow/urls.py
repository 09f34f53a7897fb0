"""URLs of an organisation's host (<slug>.<base domain>)."""

from django.urls import include, path

from apps.accounts import views as account_views
from apps.sources import webhook_urls
from windflow.admin import organization_site
from windflow.views import healthz

from .urls_common import api_docs_urlpatterns, common_urlpatterns

api_v1 = [
    path("", include("apps.accounts.api.urls")),
    path("", include("apps.environments.api.urls")),
    path("", include("apps.secrets.api.urls")),
    path("", include("apps.audit.api.urls")),
    path("", include("apps.targets.api.urls")),
    path("", include("apps.stacks.api.urls")),
    path("", include("apps.deployments.api.urls")),
    path("", include("apps.sources.api.webhook_urls")),
]

urlpatterns = [
    path("", account_views.DashboardView.as_view(), name="dashboard"),
    path("environments/", include("apps.environments.urls")),
    path("settings/", include("apps.accounts.urls")),
    path("secrets/", include("apps.secrets.urls")),
    path("servers/", include("apps.targets.urls")),
    path("stacks/", include("apps.sources.urls")),
    path("stacks/", include("apps.stacks.urls")),
    path("stacks/", include((webhook_urls.page_patterns, "webhooks"))),
    path("deployments/", include("apps.deployments.urls")),
    path("audit/", include("apps.audit.urls")),
    path("notifications/", include("apps.notifications.urls")),
    path(
        "invitations/<str:token>/",
        account_views.InvitationAcceptView.as_view(),
        name="invitation_accept",
    ),
    path("accounts/handoff/", account_views.handoff, name="account_handoff"),
    path("accounts/language/", account_views.set_language, name="set_language"),
    path("accounts/", include("allauth.urls")),
    path("oidc/", include("mozilla_django_oidc.urls")),
    path("organizations/<slug:slug>/go/", account_views.go_to_organization, name="organization_go"),
    path("admin/", organization_site.urls),
    path("hooks/", include((webhook_urls.hook_patterns, "hooks"))),
    path("healthz", healthz, name="healthz"),
    path("api/v1/", include(api_v1)),
    *api_docs_urlpatterns,
    *common_urlpatterns,
]

handler400 = "windflow.urls_common.bad_request"
handler403 = "windflow.urls_common.permission_denied"
handler404 = "windflow.urls_common.page_not_found"
handler500 = "windflow.urls_common.server_error"
