from rest_framework import serializers

from apps.environments.models import Environment

from ..choices import TargetKind
from ..models import PrepareRun, Target, TargetCheck


class TargetSerializer(serializers.ModelSerializer):
    environments = serializers.SlugRelatedField(
        slug_field="slug", many=True, queryset=Environment.objects.all(), required=False
    )
    engine = serializers.SerializerMethodField(
        help_text="The local Docker engine (assigned by platform staff) of a local target."
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
            "engine",
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

    def get_engine(self, target) -> str | None:
        if target.engine_id is None:
            return None
        from apps.tenants.models import LocalEngine

        engine = LocalEngine.objects.filter(pk=target.engine_id).first()
        return engine.name if engine else None


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
    engine = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=63,
        help_text=(
            "Local target (WINDFLOW_LOCAL_TARGETS=staff): the name of a local engine assigned "
            "to the organisation (optional when there is one)."
        ),
    )
    socket_path = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=200,
        help_text=(
            "Local target (WINDFLOW_LOCAL_TARGETS=all): one of the sockets of "
            "WINDFLOW_LOCAL_SOCKETS."
        ),
    )

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
