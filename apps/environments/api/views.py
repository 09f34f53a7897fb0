from apps.accounts.middleware import membership_of
from windflow.api.viewsets import OrganizationModelViewSet

from .. import services
from ..filtersets import EnvironmentFilterSet
from ..models import Environment
from .serializers import EnvironmentSerializer


class EnvironmentViewSet(OrganizationModelViewSet):
    """Environments of the organisation. Writes need operator (protection and delete: admin)."""

    resource = "environment"
    queryset = Environment.objects.all()
    serializer_class = EnvironmentSerializer
    filterset_class = EnvironmentFilterSet
    lookup_field = "slug"
    search_fields = ["name", "slug", "description"]
    ordering_fields = ["name", "created_at", "kind"]

    def perform_create(self, serializer):
        serializer.instance = services.create_environment(
            membership_of(self.request), **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = services.update_environment(
            membership_of(self.request), serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.delete_environment(membership_of(self.request), instance)
