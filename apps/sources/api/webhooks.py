"""Push to deploy in the API (issue 13): a stack's webhook deliveries, and making or
rotating its secret (the answer is the only time it is shown)."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.stacks.models import Stack
from apps.stacks.services import get_stack_for
from windflow.api.viewsets import OrganizationViewSet

from .. import webhooks
from ..models import WebhookDelivery


class WebhookDeliverySerializer(serializers.ModelSerializer):
    deployment = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "provider",
            "delivery_id",
            "verified",
            "event",
            "ref",
            "sha",
            "forced",
            "verdict",
            "status_code",
            "detail",
            "deployment",
            "received_at",
        ]
        read_only_fields = fields


WebhookSecretSerializer = inline_serializer(
    "WebhookSecret", {"url": serializers.URLField(), "secret": serializers.CharField()}
)


class StackWebhookViewSet(OrganizationViewSet):
    """/stacks/{name}/deliveries/ (everyone who sees the stack) and /stacks/{name}/webhook/
    (POST: whoever may change the stack gets a new secret)."""

    resource = "stack"
    action_verbs = {"deliveries": "view", "webhook": "change"}
    queryset = Stack.objects.all()
    get_object_for = staticmethod(get_stack_for)
    lookup_field = "name"
    lookup_value_regex = r"[a-z0-9][a-z0-9_-]{0,62}"
    serializer_class = WebhookDeliverySerializer

    @extend_schema(responses=WebhookDeliverySerializer(many=True))
    @action(detail=True, methods=["get"])
    def deliveries(self, request, name=None):
        """The stack's latest webhook deliveries, newest first, with their verdicts."""
        stack = self.get_object()
        page = self.paginate_queryset(stack.webhook_deliveries.all())
        data = WebhookDeliverySerializer(page, many=True).data
        return self.get_paginated_response(data)

    @extend_schema(request=None, responses=WebhookSecretSerializer)
    @action(detail=True, methods=["post"])
    def webhook(self, request, name=None):
        """Make or rotate the stack's webhook secret: shown in this answer only."""
        stack = self.get_object()
        secret = webhooks.rotate_secret(self.membership, stack)
        return Response({"url": webhooks.webhook_url(stack), "secret": secret})
