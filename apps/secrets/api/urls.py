from rest_framework.routers import SimpleRouter

from .views import SecretViewSet

app_name = "secrets-api"

router = SimpleRouter(trailing_slash=True)
router.register("secrets", SecretViewSet, basename="secret")
urlpatterns = router.urls
