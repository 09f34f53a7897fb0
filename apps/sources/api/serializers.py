from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.environments.models import Environment
from apps.stacks.api.serializers import NewStackSerializer, TargetField

from ..choices import GitAuth
from ..models import GitSource


class GitSourceSerializer(serializers.ModelSerializer):
    """A stack's Git repository and how its last fetch went: never a token or a private key
    (`token_secret` is the name of the secret holding the token; `public_key` is the half of
    the deploy key to add to the repository)."""

    kind = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()

    class Meta:
        model = GitSource
        fields = [
            "kind",
            *GitSource.CHOSEN_FIELDS,
            "public_key",
            "status",
            "last_sha",
            "last_checked_at",
            "error",
            "warning",
        ]
        read_only_fields = fields

    def get_kind(self, source) -> str:
        return "git"

    @extend_schema_field(
        {
            "type": "object",
            "nullable": True,
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "hint": {"type": "string"},
            },
        }
    )
    def get_error(self, source):
        if not source.error_code and not source.error_message:
            return None
        return {
            "code": source.error_code,
            "message": source.error_message,
            "hint": source.error_hint,
        }


class GitSourceCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["git"])
    url = serializers.CharField(max_length=500)
    ref = serializers.CharField(max_length=255, required=False, default="main")
    subfolder = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    compose_files = serializers.ListField(
        child=serializers.CharField(max_length=255), required=False, default=list, max_length=10
    )
    auth = serializers.ChoiceField(choices=GitAuth.choices, required=False, default=GitAuth.NONE)
    token_secret = serializers.CharField(
        max_length=128, required=False, allow_blank=True, allow_null=True, default=""
    )
    poll_interval = serializers.IntegerField(required=False, default=0, min_value=0)


class GitStackCreateSerializer(NewStackSerializer):
    """POST /stacks/ with a `source`: a stack that follows a Git repository (no compose)."""

    source = GitSourceCreateSerializer()

    def service_fields(self) -> dict:
        data = dict(self.validated_data)
        source = dict(data.pop("source"))
        source.pop("kind")
        return {**data, **source}


class UploadSerializer(serializers.Serializer):
    """POST /stacks/upload/ (multipart): a project archive for stack `name`; `environment`
    and `target` only when the stack does not exist yet."""

    archive = serializers.FileField(allow_empty_file=False)
    name = serializers.CharField(max_length=63)
    environment = serializers.SlugRelatedField(
        slug_field="slug", queryset=Environment.objects.all(), required=False, allow_null=True
    )
    target = TargetField(required=False, allow_null=True)
    compose_files = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=2000
    )
    subfolder = serializers.CharField(required=False, allow_blank=True, default="", max_length=255)
    message = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)


class GitSourceUpdateSerializer(serializers.Serializer):
    """PATCH /stacks/{name}/source/: what to change (then the repository is fetched again)."""

    url = serializers.CharField(max_length=500, required=False)
    ref = serializers.CharField(max_length=255, required=False)
    subfolder = serializers.CharField(max_length=255, required=False, allow_blank=True)
    compose_files = serializers.ListField(
        child=serializers.CharField(max_length=255), required=False, max_length=10
    )
    auth = serializers.ChoiceField(choices=GitAuth.choices, required=False)
    token_secret = serializers.CharField(max_length=128, required=False, allow_blank=True)
    poll_interval = serializers.IntegerField(required=False, min_value=0)
