from django.core.exceptions import ValidationError
from django.db.models import Max
from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from apps.environments.validators import validate_variables
from apps.sources import services as sources
from apps.sources.api.serializers import (
    GitSourceSerializer,
    GitSourceUpdateSerializer,
    GitStackCreateSerializer,
    UploadSerializer,
)
from windflow.api.viewsets import OrganizationModelViewSet
from windflow.engine.compose import Problem
from windflow.errors import ServiceError

from .. import control, runtime, services
from ..filtersets import StackFilterSet
from ..models import Stack
from .serializers import (
    RevisionCreateSerializer,
    RevisionSerializer,
    RevisionSummarySerializer,
    StackActionSerializer,
    StackCreateSerializer,
    StackSerializer,
    StackSettingsSerializer,
    ValidateNewSerializer,
    ValidateSerializer,
)

RuntimeStatus = inline_serializer(
    "StackRuntime", {"services": serializers.ListField(child=serializers.DictField())}
)


class ControlSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=["stop", "start", "restart", "remove"])
    service = serializers.CharField(required=False, allow_null=True, max_length=63)


GitStackCreated = inline_serializer(
    "GitStackCreated", {"stack": StackSerializer(), "source": GitSourceSerializer()}
)
UploadResult = inline_serializer(
    "StackUploadResult",
    {
        "stack": StackSerializer(),
        "revision": RevisionSerializer(),
        "created": serializers.BooleanField(),
    },
)

ValidationResult = inline_serializer(
    "StackValidation",
    {
        "ok": serializers.BooleanField(),
        "problems": serializers.ListField(child=serializers.DictField()),
        "services": serializers.ListField(child=serializers.CharField()),
    },
)


class StackViewSet(OrganizationModelViewSet):
    """Compose stacks and their immutable revisions. Every member reads them; developers
    create stacks and revisions; operators delete them. Validation never stores anything."""

    resource = "stack"
    action_verbs = {
        "list": "view",
        "retrieve": "view",
        "create": "add",
        "update": "change",
        "partial_update": "change",
        "destroy": "delete",
        "revision": "view",
        "diff": "view",
        "validate": "change",
        "validate_new": "add",
        "runtime": "view",
        "logs": "view",
        "actions": "view",
        "action_detail": "view",
        "revisions": {"get": "view", "post": "change"},
        # A new stack or a new revision from an archive: the service asks for stack.add
        # when it creates the stack.
        "upload": "change",
        "source": {"get": "view", "patch": "change"},
        "source_sync": "change",
        # Protected environments need more: the service asks for the right to deploy there.
        "control": "deploy",
    }
    queryset = (
        Stack.objects.select_related("environment", "target", "current_revision")
        .annotate(latest_number=Max("revisions__number"))
        .order_by("name")
    )
    serializer_class = StackSerializer
    get_object_for = staticmethod(services.get_stack_for)
    filterset_class = StackFilterSet
    lookup_field = "name"
    lookup_value_regex = r"[a-z0-9][a-z0-9_-]{0,62}"
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at", "updated_at"]

    def get_serializer_class(self):
        if self.action in ("update", "partial_update"):
            return StackSettingsSerializer
        if self.action == "create":
            return StackCreateSerializer
        return StackSerializer

    def _stack_response(self, stack, status_code=status.HTTP_200_OK):
        stack = self.get_queryset().get(pk=stack.pk)
        return Response(StackSerializer(stack).data, status=status_code)

    @extend_schema(
        request=PolymorphicProxySerializer(
            "NewStack",
            serializers=[StackCreateSerializer, GitStackCreateSerializer],
            resource_type_field_name=None,
        ),
        responses={201: StackSerializer, 202: GitStackCreated},
    )
    def create(self, request, *args, **kwargs):
        """A stack from a compose text (`compose`: 201 with revision 1), or following a Git
        repository (`source`: {"kind": "git", url, ref, subfolder, compose_files, auth,
        token_secret}): 202, its first revision comes once the worker has fetched it."""
        if isinstance(request.data, dict) and "source" in request.data:
            body = GitStackCreateSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            stack = sources.create_git_stack(self.membership, **body.service_fields())
            return Response(
                {
                    "stack": StackSerializer(self.get_queryset().get(pk=stack.pk)).data,
                    "source": GitSourceSerializer(stack.git_source).data,
                },
                status=status.HTTP_202_ACCEPTED,
            )
        body = StackCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        stack = services.create_stack(self.membership, **body.validated_data)
        return self._stack_response(stack, status.HTTP_201_CREATED)

    @extend_schema(
        request={"multipart/form-data": UploadSerializer},
        responses={201: UploadResult},
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="upload",
        parser_classes=[MultiPartParser, FormParser],
    )
    def upload(self, request):
        """A project archive (.tar.gz, .tgz, .tar or .zip) as a new revision of stack `name`,
        created when absent (then `environment` and `target` are required). 201 with the
        stack, the revision (the latest one when the archive changes nothing) and `created`
        (whether the stack was created). Refusals: 400 with code archive_unsafe, archive_too_large,
        archive_invalid or compose_invalid (with `problems`)."""
        sources.refuse_oversized_body(request.META.get("CONTENT_LENGTH"))
        body = UploadSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        stack, revision, created = sources.upload_cleaned(self.membership, body.validated_data)
        return Response(
            {
                "stack": StackSerializer(self.get_queryset().get(pk=stack.pk)).data,
                "revision": RevisionSerializer(revision).data,
                "created": created,
            },
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(methods=["GET"], responses=GitSourceSerializer, request=None)
    @extend_schema(
        methods=["PATCH"], request=GitSourceUpdateSerializer, responses={202: GitSourceSerializer}
    )
    @action(detail=True, methods=["get", "patch"])
    def source(self, request, name=None):
        """The Git repository the stack follows and how its last fetch went (404 with code
        no_source for a stack that does not follow one). PATCH changes what it follows
        (url, ref, subfolder, compose_files, auth, token_secret, poll_interval): 202, the
        repository is fetched again."""
        if request.method == "PATCH":
            found = sources.get_source_for(self.membership, name, "stack.change")
            body = GitSourceUpdateSerializer(data=request.data, partial=True)
            body.is_valid(raise_exception=True)
            found = sources.update_source(self.membership, found, **body.validated_data)
            return Response(GitSourceSerializer(found).data, status=status.HTTP_202_ACCEPTED)
        found = sources.get_source_for(self.membership, name, "stack.view")
        return Response(GitSourceSerializer(found).data)

    @extend_schema(request=None, responses={202: GitSourceSerializer})
    @action(detail=True, methods=["post"], url_path="source/sync")
    def source_sync(self, request, name=None):
        """Fetch the repository now: 202, the worker records the outcome on the source (and
        makes a revision when the project changed)."""
        found = sources.get_source_for(self.membership, name, "stack.change")
        sources.request_sync(self.membership, found)
        return Response(GitSourceSerializer(found).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=StackSettingsSerializer, responses=StackSerializer)
    def update(self, request, *args, **kwargs):
        stack = self.get_object()
        body = StackSettingsSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        stack = services.update_stack(self.membership, stack, **body.validated_data)
        return self._stack_response(stack)

    def perform_destroy(self, instance):
        services.delete_stack(self.membership, instance)

    @extend_schema(methods=["GET"], responses=RevisionSummarySerializer(many=True), request=None)
    @extend_schema(
        methods=["POST"], request=RevisionCreateSerializer, responses={201: RevisionSerializer}
    )
    @action(detail=True, methods=["get", "post"])
    def revisions(self, request, name=None):
        stack = self.get_object()
        if request.method == "POST":
            body = RevisionCreateSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            revision = services.revise_stack(
                self.membership,
                stack,
                **body.validated_data,
                source=services.source_of(stack.latest_revision),
            )
            return Response(RevisionSerializer(revision).data, status=status.HTTP_201_CREATED)
        page = self.paginate_queryset(stack.revisions.select_related("stack").order_by("-number"))
        return self.get_paginated_response(RevisionSummarySerializer(page, many=True).data)

    @extend_schema(responses=RevisionSerializer)
    @action(detail=True, methods=["get"], url_path=r"revisions/(?P<number>[0-9]{1,9})")
    def revision(self, request, name=None, number=None):
        revision = services.get_revision(self.get_object(), int(number))
        return Response(RevisionSerializer(revision).data)

    @extend_schema(request=ValidateSerializer, responses=ValidationResult)
    @action(detail=True, methods=["post"])
    def validate(self, request, name=None):
        """Check a compose file as it would deploy with this stack (nothing is stored): a
        file with problems is a 200 with "ok": false."""
        stack = self.get_object()
        body = ValidateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return self._check(body.validated_data, stack.environment, stack.name, stack.target)

    @extend_schema(
        request=ValidateNewSerializer,
        responses=ValidationResult,
        operation_id="stacks_validate_new",
    )
    @action(detail=False, methods=["post"], url_path="validate")
    def validate_new(self, request):
        """Check a compose file before the stack exists, in `environment` (slug)."""
        body = ValidateNewSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        return self._check(data, data.get("environment"), data.get("name") or "stack")

    def _check(self, data, environment, project, target=None):
        problems = []
        variables = data["variables"]
        try:
            validate_variables(variables)
        except ValidationError as exc:
            problems = [
                Problem("error", message, code="variables-invalid", path="variables")
                for message in exc.messages
            ]
            variables = {}
        analysis = services.check_compose(
            data["compose"],
            variables=variables,
            secrets=data["secrets"],
            environment=environment,
            project=project,
            actor=self.membership,
            target=target,
        )
        problems.extend(analysis.problems)
        return Response(
            {
                "ok": not any(p.severity == "error" for p in problems),
                "problems": [p.as_dict() for p in problems],
                "services": analysis.services,
            }
        )

    @extend_schema(
        parameters=[
            OpenApiParameter("from", int, required=False),
            OpenApiParameter("to", int, required=False),
        ],
        responses=inline_serializer("StackDiff", {"lines": serializers.ListField()}),
    )
    @extend_schema(responses=RuntimeStatus)
    @action(detail=True, methods=["get"])
    def runtime(self, request, name=None):
        """What runs on the server now: each service with its containers (state, health,
        ports, image). 503 with a clear message when the server does not answer."""
        stack = self.get_object()
        try:
            services_running = runtime.runtime_status(stack)
        except ServiceError as exc:
            exc.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
            raise
        return Response({"services": services_running})

    @extend_schema(request=ControlSerializer, responses={202: StackActionSerializer})
    @action(detail=True, methods=["post"])
    def control(self, request, name=None):
        """Stop, start or restart the stack (or one service: `service`), or remove it from
        its server (volumes are kept). Runs in the worker: 202 once queued, with the request
        (`id`, `status` queued); its outcome is at `actions/{id}/`."""
        stack = self.get_object()
        body = ControlSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        requested = control.request_control(self.membership, stack, **body.validated_data)
        return Response(StackActionSerializer(requested).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=StackActionSerializer(many=True))
    @action(detail=True, methods=["get"])
    def actions(self, request, name=None):
        """The stack's stop / start / restart / remove requests, newest first, with their
        outcome (paginated)."""
        stack = self.get_object()
        page = self.paginate_queryset(stack.actions.all())
        return self.get_paginated_response(StackActionSerializer(page, many=True).data)

    @extend_schema(responses=StackActionSerializer)
    @action(detail=True, methods=["get"], url_path=r"actions/(?P<action_id>[0-9]{1,9})")
    def action_detail(self, request, name=None, action_id=None):
        """One stop / start / restart / remove request of the stack and its outcome."""
        requested = control.get_action(self.get_object(), action_id)
        return Response(StackActionSerializer(requested).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("container", str, required=True),
            OpenApiParameter("tail", int, required=False),
        ],
        responses=inline_serializer(
            "ContainerLogs",
            {
                "container": serializers.DictField(),
                "lines": serializers.ListField(child=serializers.CharField()),
            },
        ),
    )
    @action(detail=True, methods=["get"])
    def logs(self, request, name=None):
        """The last `tail` lines (default 200) of one of the stack's containers (`container`:
        its id, short id or name), each starting with Docker's RFC 3339 time; secret values
        masked. 404 for a container that is not the stack's, 503 when the server does not
        answer."""
        stack = self.get_object()
        tail = runtime.clamp_tail(request.query_params.get("tail", runtime.DEFAULT_TAIL), None)
        if tail is None:
            raise ServiceError(_("tail must be a number of lines."), field="tail")
        try:
            found = runtime.stack_container(stack, request.query_params.get("container", ""))
            lines = runtime.container_log_tail(stack, found["id"], tail=tail)
        except ServiceError as exc:
            if exc.code == "not_found":
                raise NotFound(exc.message) from exc
            exc.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
            raise
        return Response({"container": found, "lines": lines})

    @action(detail=True, methods=["get"])
    def diff(self, request, name=None):
        """What changed between two revisions (default: the latest and the one before)."""
        stack = self.get_object()
        old, new = services.revision_pair(
            stack, request.query_params.get("from"), request.query_params.get("to")
        )
        return Response(services.diff_revisions(old, new))
