from rest_framework.routers import SimpleRouter

from .views import AuditEventViewSet

app_name = "audit-api"

router = SimpleRouter(trailing_slash=True)
router.register("audit-events", AuditEventViewSet, basename="audit-event")
urlpatterns = router.urls
