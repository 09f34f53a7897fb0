from rest_framework.routers import SimpleRouter

from .views import StackViewSet

app_name = "stacks-api"

router = SimpleRouter(trailing_slash=True)
router.register("stacks", StackViewSet, basename="stack")
urlpatterns = router.urls
