import asyncio
import json
import time

import django_filters
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from django.utils.translation import gettext as _
from django_tenants.utils import tenant_context
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from apps.stacks import services as stacks
from windflow.api.viewsets import OrganizationReadOnlyViewSet
from windflow.errors import NotFound

from .. import journal, services
from ..choices import DeploymentStatus
from ..models import Deployment
from .serializers import (
    DeploymentCreateSerializer,
    DeploymentDetailSerializer,
    DeploymentSerializer,
    LogPageSerializer,
    LogQuerySerializer,
    RejectSerializer,
)

FOLLOW_POLL_SECONDS = 0.25
FOLLOW_MAX_SECONDS = 60 * 60
# A quiet log sends this row every few seconds (documented in docs/deployments.md).
KEEPALIVE_SECONDS = 5.0
KEEPALIVE_ROW = json.dumps({"keepalive": True}) + "\n"


class DeploymentFilterSet(django_filters.FilterSet):
    stack = django_filters.CharFilter(field_name="stack__name")
    status = django_filters.ChoiceFilter(choices=DeploymentStatus.choices)

    class Meta:
        model = Deployment
        fields = ["stack", "status", "kind"]


class DeploymentViewSet(OrganizationReadOnlyViewSet):
    """Deployments of the organisation. Creating one deploys a stack; cancel, resume and
    rollback need the right to deploy to the stack's environment."""

    resource = "deployment"
    action_verbs = {
        "list": "view",
        "retrieve": "view",
        "logs": "view",
        # Protected environments need more than a role: the services decide (require_deploy).
        "create": "stack.deploy",
        "cancel": "stack.deploy",
        "resume": "stack.deploy",
        "rollback": "stack.deploy",
        # A deployment that a push asked for and that awaits an approval (services decide
        # who may give it: require_deploy).
        "approve": "stack.deploy",
        "reject": "stack.deploy",
    }
    queryset = Deployment.objects.all()
    get_object_for = staticmethod(services.get_deployment_for)
    filterset_class = DeploymentFilterSet
    ordering_fields = ["created_at", "number", "status"]
    search_fields = []

    def get_queryset(self):
        return services.visible_deployments(self.membership).prefetch_related("services")

    def get_serializer_class(self):
        if self.action == "list":
            return DeploymentSerializer
        if self.action == "create":
            return DeploymentCreateSerializer
        return DeploymentDetailSerializer

    def _created(self, deployment):
        return Response(DeploymentDetailSerializer(deployment).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=DeploymentCreateSerializer, responses={201: DeploymentDetailSerializer})
    def create(self, request, *args, **kwargs):
        body = DeploymentCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        name = body.validated_data["stack"]
        try:
            stack = stacks.get_stack_for(self.membership, name)
        except NotFound:
            message = _("No stack named “%(name)s”.") % {"name": name}
            raise ValidationError({"stack": [message]}) from None
        revision = None
        number = body.validated_data.get("revision")
        if number is not None:
            try:
                revision = stacks.get_revision(stack, number)
            except NotFound as exc:
                raise ValidationError({"revision": [exc.message]}) from None
        return self._created(services.request_deployment(self.membership, stack, revision))

    @extend_schema(request=None, responses=DeploymentDetailSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        deployment = services.cancel_deployment(self.membership, self.get_object())
        deployment.refresh_from_db()
        return Response(DeploymentDetailSerializer(deployment).data)

    @extend_schema(request=None, responses={201: DeploymentDetailSerializer})
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return self._created(services.resume_deployment(self.membership, self.get_object()))

    @extend_schema(request=None, responses={201: DeploymentDetailSerializer})
    @action(detail=True, methods=["post"])
    def rollback(self, request, pk=None):
        """Deploy this deployment's revision again, as a rollback (it must have succeeded once)."""
        deployment = self.get_object()
        return self._created(
            services.rollback_to(self.membership, deployment.stack, deployment.revision)
        )

    @extend_schema(request=None, responses=DeploymentDetailSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """Let a deployment that awaits an approval run (409 when it does not await one)."""
        deployment = services.approve_deployment(self.membership, self.get_object())
        return Response(DeploymentDetailSerializer(deployment).data)

    @extend_schema(request=RejectSerializer, responses=DeploymentDetailSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        """Refuse a deployment that awaits an approval: it ends cancelled, never run."""
        body = RejectSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        deployment = services.reject_deployment(
            self.membership, self.get_object(), body.validated_data.get("reason", "")
        )
        return Response(DeploymentDetailSerializer(deployment).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("after", OpenApiTypes.INT, description="Lines after this seq."),
            OpenApiParameter("limit", OpenApiTypes.INT, description="At most this many (5000)."),
            OpenApiParameter(
                "follow",
                OpenApiTypes.BOOL,
                description="Stream NDJSON: the lines, then new ones until the deployment "
                'finishes, then one {"status": ...} object; while the log is quiet, a '
                '{"keepalive": true} row every 5 s.',
            ),
        ],
        responses=LogPageSerializer,
    )
    @action(detail=True, methods=["get"])
    def logs(self, request, pk=None):
        deployment = self.get_object()
        query = LogQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        after = query.validated_data["after"]
        if query.validated_data["follow"]:
            # Under ASGI an async iterator streams; a sync one would be buffered whole.
            follow = follow_log if isinstance(request._request, ASGIRequest) else follow_log_sync
            response = StreamingHttpResponse(
                follow(request.tenant, deployment.pk, after),
                content_type="application/x-ndjson",
            )
            response["Cache-Control"] = "no-cache"
            response["X-Accel-Buffering"] = "no"
            return response
        return Response(
            services.log_window(deployment, after=after, limit=query.validated_data["limit"])
        )


def _read(tenant, deployment_id: int, after: int):
    """New lines after `after` and the deployment's status, with the tenant active (a
    streamed response outlives the request's tenant activation)."""
    with tenant_context(tenant):
        deployment = Deployment.objects.select_related("rolled_back_to").get(pk=deployment_id)
        window = services.log_window(deployment, after=after)
        return window["lines"], window["finished"], journal.status_event(deployment)


class _Follower:
    """Where one follow stream stands: the last line sent, when it must end, and when it last
    sent anything (a quiet log gets a keep-alive row every KEEPALIVE_SECONDS, so that a
    client's read timeout does not fire while the deployment waits, in a health gate say)."""

    def __init__(self, tenant, deployment_id: int, after: int):
        self.tenant, self.deployment_id, self.after = tenant, deployment_id, after
        self.deadline = time.monotonic() + FOLLOW_MAX_SECONDS
        self.sent_at = time.monotonic()

    def step(self):
        """One read: (NDJSON rows, whether the stream ends, whether to pause)."""
        rows, done, pause = self._read()
        now = time.monotonic()
        if rows:
            self.sent_at = now
        elif now - self.sent_at >= KEEPALIVE_SECONDS:
            rows, self.sent_at = [KEEPALIVE_ROW], now
        return rows, done, pause

    def _read(self):
        lines, finished, state = _read(self.tenant, self.deployment_id, self.after)
        rows = [json.dumps(line) + "\n" for line in lines]
        if lines:
            self.after = lines[-1]["seq"]
            if len(lines) >= services.LOG_PAGE_SIZE:
                return rows, False, False  # more stored lines: no pause
        if finished:
            # The status was read before the lines: every line written before the end is in.
            return [*rows, json.dumps({"status": state}) + "\n"], True, False
        if time.monotonic() > self.deadline:
            return [*rows, json.dumps({"status": state, "timeout": True}) + "\n"], True, False
        return rows, False, True


async def follow_log(tenant, deployment_id: int, after: int):
    """NDJSON: the stored lines after `after`, then new ones (polled every 0.25 s) until the
    deployment finishes; last, one {"status": {...}} object. A quiet log gets a
    {"keepalive": true} row every KEEPALIVE_SECONDS. Bounded to an hour."""
    follower = _Follower(tenant, deployment_id, after)
    step = sync_to_async(follower.step)
    while True:
        rows, done, pause = await step()
        for row in rows:
            yield row
        if done:
            return
        if pause:
            await asyncio.sleep(FOLLOW_POLL_SECONDS)


def follow_log_sync(tenant, deployment_id: int, after: int):
    """The same stream for a WSGI server (and the test client)."""
    follower = _Follower(tenant, deployment_id, after)
    while True:
        rows, done, pause = follower.step()
        yield from rows
        if done:
            return
        if pause:
            time.sleep(FOLLOW_POLL_SECONDS)
