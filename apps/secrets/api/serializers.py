from rest_framework import serializers

from apps.environments.models import Environment

from ..models import SecretRef, SecretVersion


class SecretSerializer(serializers.ModelSerializer):
    """`value` is write-only: accepted on create, never returned."""

    value = serializers.CharField(write_only=True, trim_whitespace=False)
    environment = serializers.SlugRelatedField(
        slug_field="slug", queryset=Environment.objects.all(), required=False, allow_null=True
    )

    class Meta:
        model = SecretRef
        fields = [
            "id",
            "name",
            "scope",
            "environment",
            "backend",
            "version",
            "description",
            "created_at",
            "rotated_at",
            "value",
        ]
        read_only_fields = ["id", "scope", "backend", "version", "created_at", "rotated_at"]
        extra_kwargs = {"name": {"validators": []}}
        validators = []  # uniqueness (per scope) is the service's, with a clear message


class SecretUpdateSerializer(serializers.ModelSerializer):
    class Meta:
        model = SecretRef
        fields = ["description"]


class RotateSerializer(serializers.Serializer):
    value = serializers.CharField(write_only=True, trim_whitespace=False)


class SecretVersionSerializer(serializers.ModelSerializer):
    created_by = serializers.EmailField(source="created_by.email", read_only=True, default=None)

    class Meta:
        model = SecretVersion
        fields = ["version", "created_at", "created_by"]
