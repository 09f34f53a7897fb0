from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.middleware import membership_of
from windflow.api.viewsets import OrganizationModelViewSet

from .. import policy, services
from ..filtersets import EnvironmentFilterSet
from ..models import Environment
from .serializers import (
    ComposePolicyOverridesSerializer,
    ComposePolicySerializer,
    EnvironmentSerializer,
)

PolicyResponse = inline_serializer(
    "ComposePolicy",
    {
        "features": serializers.DictField(child=serializers.CharField()),
        "levels": serializers.ListField(child=serializers.CharField()),
        "rules": serializers.DictField(child=serializers.CharField()),
        "allowed_paths": serializers.ListField(child=serializers.CharField()),
        "updated_at": serializers.DateTimeField(),
    },
)
EnvironmentPolicyResponse = inline_serializer(
    "EnvironmentComposePolicy",
    {
        "environment": serializers.CharField(),
        "overrides": serializers.DictField(child=serializers.CharField()),
        "effective": serializers.DictField(child=serializers.DictField()),
        "allowed_paths": serializers.ListField(child=serializers.CharField()),
    },
)


class EnvironmentViewSet(OrganizationModelViewSet):
    """Environments of the organisation. Writes need operator (protection and delete: admin)."""

    resource = "environment"
    queryset = Environment.objects.all()
    get_object_for = staticmethod(services.get_environment_for)
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

    def required_action(self, request):
        if self.action == "compose_policy":
            if request.method in ("GET", "HEAD", "OPTIONS"):
                return "compose_policy.view"
            return "compose_policy.change"
        return super().required_action(request)

    @extend_schema(methods=["GET"], request=None, responses=EnvironmentPolicyResponse)
    @extend_schema(
        methods=["PUT", "PATCH"],
        request=ComposePolicyOverridesSerializer,
        responses=EnvironmentPolicyResponse,
    )
    @action(detail=True, methods=["get", "put", "patch"], url_path="compose-policy")
    def compose_policy(self, request, slug=None):
        """This environment's overrides of the compose policy, and the rules that result.
        Owners and admins change them (audited)."""
        environment = self.get_object()
        if request.method in ("PUT", "PATCH"):
            body = ComposePolicyOverridesSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            environment = policy.set_overrides(
                membership_of(request),
                environment,
                body.validated_data["overrides"],
                replace=request.method == "PUT",
            )
        return Response(policy.describe(environment))


class ComposePolicyView(APIView):
    """The organisation's compose policy: for each host-level compose feature, the least
    role that may deploy it (or "nobody"), and the host paths bind mounts may use freely.
    Every member reads it; owners and admins change it (audited)."""

    def required_action(self, request):
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return "compose_policy.view"
        return "compose_policy.change"

    @extend_schema(responses=PolicyResponse)
    def get(self, request):
        return Response(policy.describe())

    @extend_schema(request=ComposePolicySerializer, responses=PolicyResponse)
    def put(self, request):
        return self._update(request)

    @extend_schema(request=ComposePolicySerializer, responses=PolicyResponse)
    def patch(self, request):
        return self._update(request)

    def _update(self, request):
        body = ComposePolicySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        policy.update_policy(
            membership_of(request),
            rules=body.validated_data.get("rules"),
            allowed_paths=body.validated_data.get("allowed_paths"),
        )
        return Response(policy.describe())
