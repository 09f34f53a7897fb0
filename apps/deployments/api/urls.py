from rest_framework.routers import SimpleRouter

from .views import DeploymentViewSet

app_name = "deployments-api"

router = SimpleRouter(trailing_slash=True)
router.register("deployments", DeploymentViewSet, basename="deployment")
urlpatterns = router.urls
