from drf_spectacular.utils import extend_schema

from windflow.api.viewsets import OrganizationReadOnlyViewSet

from .. import services
from ..models import AuditEvent
from .serializers import AuditEventSerializer, AuditFilterSerializer


@extend_schema(parameters=[AuditFilterSerializer])
class AuditEventViewSet(OrganizationReadOnlyViewSet):
    """The organisation's audit trail, newest first (read-only; owners and admins)."""

    resource = "audit"
    action_verbs = {"list": "view", "retrieve": "view"}
    serializer_class = AuditEventSerializer
    queryset = AuditEvent.objects.all()
    get_object_for = staticmethod(services.get_event_for)
    filter_backends = []

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action != "list":
            return queryset
        criteria = AuditFilterSerializer(data=self.request.query_params)
        criteria.is_valid(raise_exception=True)
        return services.filtered(**criteria.validated_data).filter(pk__in=queryset.values("pk"))
