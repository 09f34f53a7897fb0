from rest_framework.routers import SimpleRouter

from .views import EnvironmentViewSet

app_name = "environments-api"

router = SimpleRouter(trailing_slash=True)
router.register("environments", EnvironmentViewSet, basename="environment")
urlpatterns = router.urls
