from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

app_name = "accounts-api"

router = SimpleRouter(trailing_slash=True)
router.register("members", views.MemberViewSet, basename="member")
router.register("invitations", views.InvitationViewSet, basename="invitation")
router.register("tokens", views.ApiTokenViewSet, basename="token")

urlpatterns = [
    path("auth/token/", views.TokenObtainView.as_view(), name="token_obtain"),
    path("auth/token/refresh/", views.OrganizationTokenRefreshView.as_view(), name="token_refresh"),
    path("me/", views.MeView.as_view(), name="me"),
    *router.urls,
]
