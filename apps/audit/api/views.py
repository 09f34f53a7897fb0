from drf_spectacular.utils import extend_schema
from rest_framework import mixins

from windflow.api.viewsets import OrganizationViewSet

from .. import services
from ..models import AuditEvent
from .serializers import AuditEventSerializer, AuditFilterSerializer


@extend_schema(parameters=[AuditFilterSerializer])
class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationViewSet):
    """The organisation's audit trail, newest first (read-only; owners and admins)."""

    resource = "audit"
    action_verbs = {"list": "view", "retrieve": "view"}
    serializer_class = AuditEventSerializer
    queryset = AuditEvent.objects.all()
    filter_backends = []

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action != "list":
            return queryset
        criteria = AuditFilterSerializer(data=self.request.query_params)
        criteria.is_valid(raise_exception=True)
        return services.filtered(**criteria.validated_data).filter(pk__in=queryset.values("pk"))
