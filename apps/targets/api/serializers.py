from rest_framework import serializers

from apps.environments.models import Environment

from ..choices import TargetKind
from ..models import PrepareRun, Target, TargetCheck


class TargetSerializer(serializers.ModelSerializer):
    environments = serializers.SlugRelatedField(
        slug_field="slug", many=True, queryset=Environment.objects.all(), required=False
    )

    class Meta:
        model = Target
        fields = [
            "id",
            "name",
            "slug",
            "kind",
            "host",
            "port",
            "user",
            "socket_path",
            "public_key",
            "host_key_fingerprint",
            "pending_host_key_fingerprint",
            "host_key_type",
            "labels",
            "environments",
            "status",
            "last_seen",
            "facts",
            "created_at",
        ]
        read_only_fields = [
            "slug",
            "public_key",
            "host_key_fingerprint",
            "pending_host_key_fingerprint",
            "host_key_type",
            "status",
            "last_seen",
            "facts",
            "created_at",
        ]


class TargetCreateSerializer(TargetSerializer):
    """Create: a private key (write-only) or `generate_key`, never returned."""

    private_key = serializers.CharField(
        write_only=True, required=False, allow_blank=True, trim_whitespace=False
    )
    passphrase = serializers.CharField(
        write_only=True, required=False, allow_blank=True, trim_whitespace=False
    )
    generate_key = serializers.BooleanField(write_only=True, required=False, default=False)
    ca_pem = serializers.CharField(
        write_only=True, required=False, allow_blank=True, trim_whitespace=False
    )
    cert_pem = serializers.CharField(
        write_only=True, required=False, allow_blank=True, trim_whitespace=False
    )
    key_pem = serializers.CharField(
        write_only=True, required=False, allow_blank=True, trim_whitespace=False
    )
    kind = serializers.ChoiceField(choices=TargetKind.choices)

    class Meta(TargetSerializer.Meta):
        fields = [
            *TargetSerializer.Meta.fields,
            "private_key",
            "passphrase",
            "generate_key",
            "ca_pem",
            "cert_pem",
            "key_pem",
        ]
        extra_kwargs = {"name": {"validators": []}}


class TargetUpdateSerializer(serializers.ModelSerializer):
    environments = serializers.SlugRelatedField(
        slug_field="slug", many=True, queryset=Environment.objects.all(), required=False
    )

    class Meta:
        model = Target
        fields = ["labels", "environments"]


class ConfirmHostKeySerializer(serializers.Serializer):
    fingerprint = serializers.CharField()


class TargetCheckSerializer(serializers.ModelSerializer):
    class Meta:
        model = TargetCheck
        fields = ["id", "started_at", "duration_ms", "status", "results"]


class PrepareRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = PrepareRun
        fields = ["id", "status", "exit_code", "output", "created_at", "finished_at"]
