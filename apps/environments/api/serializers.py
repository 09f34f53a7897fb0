from rest_framework import serializers

from ..models import Environment
from ..validators import validate_variables


class EnvironmentSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(
        view_name="environments-api:environment-detail", lookup_field="slug"
    )
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
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "slug", "created_at", "updated_at"]
        extra_kwargs = {"name": {"validators": []}}
