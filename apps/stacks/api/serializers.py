from django.db.models import Q
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.environments.models import Environment
from apps.environments.validators import validate_variables
from apps.targets.models import Target

from ..models import Stack, StackAction, StackRevision
from ..services import SOURCE_FIELDS


@extend_schema_field(OpenApiTypes.STR)
class TargetField(serializers.RelatedField):
    """A server by slug or by name."""

    default_error_messages = {
        "does_not_exist": "No server is called “{value}”.",
        "invalid": "Give the server's slug or name.",
    }

    def get_queryset(self):
        return Target.objects.all()

    def to_internal_value(self, data):
        if not isinstance(data, str) or not data.strip():
            self.fail("invalid")
        found = self.get_queryset().filter(Q(slug=data) | Q(name=data)).first()
        if found is None:
            self.fail("does_not_exist", value=data)
        return found

    def to_representation(self, value):
        return value.slug


def _variables_field():
    return serializers.DictField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False),
        required=False,
        default=dict,
        validators=[validate_variables],
    )


def _secrets_field():
    return serializers.ListField(
        child=serializers.CharField(max_length=128), required=False, default=list, max_length=200
    )


class StackSerializer(serializers.ModelSerializer):
    environment = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    target = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    current_revision = serializers.SerializerMethodField()
    latest_revision = serializers.SerializerMethodField()

    class Meta:
        model = Stack
        fields = [
            "name",
            "uid",
            "description",
            "environment",
            "target",
            "auto_rollback",
            "health_timeout",
            "grace_period",
            "registry_credentials",
            "current_revision",
            "latest_revision",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_current_revision(self, stack) -> int | None:
        return stack.current_revision.number if stack.current_revision_id else None

    def get_latest_revision(self, stack) -> int | None:
        latest = getattr(stack, "latest_number", None)
        if latest is None and not hasattr(stack, "latest_number"):
            latest = stack.revisions.order_by("-number").values_list("number", flat=True).first()
        return latest


class NewStackSerializer(serializers.Serializer):
    """A new stack's name, place and settings, whatever its content comes from (a compose
    text here, a Git source in apps.sources)."""

    name = serializers.CharField(max_length=63)
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    environment = serializers.SlugRelatedField(
        slug_field="slug", queryset=Environment.objects.all()
    )
    target = TargetField()
    auto_rollback = serializers.BooleanField(required=False, default=True)
    health_timeout = serializers.IntegerField(
        required=False, default=120, min_value=5, max_value=3600
    )
    grace_period = serializers.IntegerField(required=False, default=10, min_value=0, max_value=600)


class StackCreateSerializer(NewStackSerializer):
    compose = serializers.CharField(trim_whitespace=False, max_length=1024 * 1024)
    variables = _variables_field()
    secrets = _secrets_field()
    message = serializers.CharField(required=False, allow_blank=True, max_length=200)


class StackSettingsSerializer(serializers.Serializer):
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    environment = serializers.SlugRelatedField(
        slug_field="slug", queryset=Environment.objects.all(), required=False
    )
    target = TargetField(required=False)
    auto_rollback = serializers.BooleanField(required=False)
    health_timeout = serializers.IntegerField(required=False, min_value=5, max_value=3600)
    grace_period = serializers.IntegerField(required=False, min_value=0, max_value=600)
    registry_credentials = serializers.ListField(
        child=serializers.DictField(child=serializers.CharField(max_length=200)),
        required=False,
        max_length=20,
        help_text="[{registry, username, secret}]: the secret holds the password or token.",
    )

    def validate(self, attrs):
        unknown = set(self.initial_data) - set(self.fields) if hasattr(self, "initial_data") else ()
        if unknown:
            raise serializers.ValidationError(
                {
                    name: [_("Not a setting; change the content with a new revision.")]
                    for name in sorted(unknown)
                }
            )
        return attrs


# What every revision listing shows; the full revision adds its content and its source.
REVISION_SUMMARY = ["number", "message", "author", "created_at", "digest"]
REVISION_ORIGIN = ["source_kind", "commit_sha", "archive_digest"]


class RevisionSerializer(serializers.ModelSerializer):
    author = serializers.SlugRelatedField(slug_field="email", read_only=True)

    class Meta:
        model = StackRevision
        fields = [*REVISION_SUMMARY, "variables", "secrets", "compose", *SOURCE_FIELDS]
        read_only_fields = fields


class RevisionSummarySerializer(RevisionSerializer):
    class Meta(RevisionSerializer.Meta):
        fields = [*REVISION_SUMMARY, *REVISION_ORIGIN]
        read_only_fields = fields


class RevisionCreateSerializer(serializers.Serializer):
    compose = serializers.CharField(trim_whitespace=False, max_length=1024 * 1024)
    variables = _variables_field()
    secrets = _secrets_field()
    message = serializers.CharField(required=False, allow_blank=True, max_length=200)


class ValidateSerializer(serializers.Serializer):
    compose = serializers.CharField(trim_whitespace=False, allow_blank=True, max_length=1024 * 1024)
    variables = serializers.DictField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False),
        required=False,
        default=dict,
    )
    secrets = _secrets_field()


class ValidateNewSerializer(ValidateSerializer):
    environment = serializers.SlugRelatedField(
        slug_field="slug", queryset=Environment.objects.all(), required=False, allow_null=True
    )
    name = serializers.CharField(required=False, allow_blank=True, max_length=63)


class StackActionSerializer(serializers.ModelSerializer):
    """A stop / start / restart / remove request and its outcome (``status`` queued, running,
    succeeded or failed; ``code`` and ``hint`` say why it failed)."""

    service = serializers.SerializerMethodField()

    class Meta:
        model = StackAction
        fields = [
            "id",
            "action",
            "service",
            "status",
            "message",
            "code",
            "hint",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_service(self, obj) -> str | None:
        return obj.service or None
