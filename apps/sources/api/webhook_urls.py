from rest_framework.routers import SimpleRouter

from .webhooks import StackWebhookViewSet

app_name = "webhooks-api"

router = SimpleRouter(trailing_slash=True)
router.register("stacks", StackWebhookViewSet, basename="stack-webhook")
urlpatterns = router.urls
