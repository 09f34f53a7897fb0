from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action
from rest_framework.response import Response

from windflow.api.viewsets import OrganizationModelViewSet

from .. import services
from ..models import SecretRef
from .serializers import (
    RotateSerializer,
    SecretSerializer,
    SecretUpdateSerializer,
    SecretVersionSerializer,
)


class SecretViewSet(OrganizationModelViewSet):
    """Secrets of the organisation. Values are write-only: create and rotate take one, nothing
    returns one. Owners and admins add, change (rotate) and delete
    them; every member sees names."""

    resource = "secret"
    action_verbs = {
        "list": "view",
        "retrieve": "view",
        "create": "add",
        "update": "change",
        "partial_update": "change",
        "destroy": "delete",
        "rotate": "change",
        "versions": "view",
    }
    queryset = SecretRef.objects.select_related("environment")
    get_object_for = staticmethod(services.get_secret_for)
    filterset_fields = ["scope", "environment__slug", "backend"]
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at", "rotated_at"]

    def get_serializer_class(self):
        if self.action in ("update", "partial_update"):
            return SecretUpdateSerializer
        if self.action == "rotate":
            return RotateSerializer
        if self.action == "versions":
            return SecretVersionSerializer
        return SecretSerializer

    def perform_create(self, serializer):
        serializer.instance = services.create_secret(self.membership, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.update_description(
            self.membership, serializer.instance, serializer.validated_data.get("description", "")
        )

    def perform_destroy(self, instance):
        services.delete_secret(self.membership, instance)

    @extend_schema(request=RotateSerializer, responses=SecretSerializer)
    @action(detail=True, methods=["post"])
    def rotate(self, request, pk=None):
        serializer = RotateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        secret = services.rotate_secret(
            self.membership, self.get_object(), serializer.validated_data["value"]
        )
        return Response(SecretSerializer(secret).data)

    @extend_schema(responses=SecretVersionSerializer(many=True))
    @action(detail=True, methods=["get"])
    def versions(self, request, pk=None):
        page = self.paginate_queryset(services.versions(self.get_object()))
        return self.get_paginated_response(SecretVersionSerializer(page, many=True).data)
