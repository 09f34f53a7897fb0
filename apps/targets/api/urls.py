from rest_framework.routers import SimpleRouter

from .views import TargetViewSet

app_name = "targets-api"

router = SimpleRouter(trailing_slash=True)
router.register("targets", TargetViewSet, basename="target")
urlpatterns = router.urls
