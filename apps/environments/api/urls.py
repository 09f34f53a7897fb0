from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import ComposePolicyView, EnvironmentViewSet

app_name = "environments-api"

router = SimpleRouter(trailing_slash=True)
router.register("environments", EnvironmentViewSet, basename="environment")
urlpatterns = [
    path("compose-policy/", ComposePolicyView.as_view(), name="compose_policy"),
    *router.urls,
]
