from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from windflow.api.viewsets import OrganizationModelViewSet

from .. import services
from ..models import Target
from .serializers import (
    ConfirmHostKeySerializer,
    PrepareRunSerializer,
    TargetCheckSerializer,
    TargetCreateSerializer,
    TargetSerializer,
    TargetUpdateSerializer,
)


class TargetViewSet(OrganizationModelViewSet):
    """Servers WindFlow deploys to. Admins add, change and prepare them; operators test
    them; every member sees them. Private keys are write-only."""

    resource = "target"
    action_verbs = {
        "list": "view",
        "retrieve": "view",
        "create": "add",
        "update": "change",
        "partial_update": "change",
        "destroy": "delete",
        "check": "check",
        "confirm_host_key": "change",
        "prepare": "prepare",
        "checks": "view",
    }
    queryset = Target.objects.prefetch_related("environments")
    get_object_for = staticmethod(services.get_target_for)
    lookup_field = "slug"
    filterset_fields = ["kind", "status"]
    search_fields = ["name", "host"]
    ordering_fields = ["name", "status", "last_seen"]

    def get_serializer_class(self):
        return {
            "create": TargetCreateSerializer,
            "update": TargetUpdateSerializer,
            "partial_update": TargetUpdateSerializer,
            "confirm_host_key": ConfirmHostKeySerializer,
            "checks": TargetCheckSerializer,
        }.get(self.action, TargetSerializer)

    def create(self, request, *args, **kwargs):
        serializer = TargetCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        target = services.create_target(self.membership, **data)
        return Response(TargetSerializer(target).data, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        serializer.instance = services.update_target(
            self.membership, serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.delete_target(self.membership, instance)

    @extend_schema(request=None, responses=TargetCheckSerializer)
    @action(detail=True, methods=["post"])
    def check(self, request, slug=None):
        check = services.request_check(self.membership, self.get_object())
        return Response(TargetCheckSerializer(check).data)

    @extend_schema(request=ConfirmHostKeySerializer, responses=TargetSerializer)
    @action(detail=True, methods=["post"], url_path="confirm-host-key")
    def confirm_host_key(self, request, slug=None):
        body = ConfirmHostKeySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        target = services.confirm_host_key(
            self.membership, self.get_object(), body.validated_data["fingerprint"]
        )
        return Response(TargetSerializer(target).data)

    @extend_schema(request=None, responses=PrepareRunSerializer)
    @action(detail=True, methods=["post"])
    def prepare(self, request, slug=None):
        run = services.request_prepare(self.membership, self.get_object())
        return Response(PrepareRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=TargetCheckSerializer(many=True))
    @action(detail=True, methods=["get"])
    def checks(self, request, slug=None):
        page = self.paginate_queryset(self.get_object().checks.all())
        return self.get_paginated_response(TargetCheckSerializer(page, many=True).data)
