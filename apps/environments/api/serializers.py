from django.urls import reverse
from rest_framework import serializers

from windflow.api.serializers import FieldsBuiltOnce

from ..models import Environment
from ..validators import validate_variables


class EnvironmentSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    effective_git_policy = serializers.CharField(read_only=True)
    variables = serializers.DictField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False),
        required=False,
        validators=[validate_variables],
    )

    class Meta:
        model = Environment
        fields = [
            "id",
            "url",
            "name",
            "slug",
            "kind",
            "protected",
            "description",
            "variables",
            "git_policy",
            "effective_git_policy",
            "poll_mode",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "slug", "effective_git_policy", "created_at", "updated_at"]
        extra_kwargs = {"name": {"validators": []}}

    def get_url(self, environment) -> str:
        # One reverse() per response instead of one per row: lists are the hot path.
        if not hasattr(self, "_detail_prefix"):
            request = self.context["request"]
            sample = reverse("environments-api:environment-detail", args=["-"])
            self._detail_prefix = request.build_absolute_uri(sample[:-2])
        return f"{self._detail_prefix}{environment.slug}/"


class ComposePolicySerializer(serializers.Serializer):
    """A change of the organisation's compose policy: `rules` (feature -> least role, or
    "nobody") for the features given, and/or the whole list of `allowed_paths`."""

    rules = serializers.DictField(child=serializers.CharField(max_length=20), required=False)
    allowed_paths = serializers.ListField(
        child=serializers.CharField(max_length=500, trim_whitespace=False),
        required=False,
        max_length=50,
    )


class ComposePolicyOverridesSerializer(serializers.Serializer):
    """An environment's own rules: feature -> least role, "nobody", or null (follow the
    organisation). PUT sets exactly these; PATCH merges them into the current ones."""

    overrides = serializers.DictField(
        child=serializers.CharField(max_length=20, allow_null=True, allow_blank=True)
    )
