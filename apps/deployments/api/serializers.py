from rest_framework import serializers

from ..models import Deployment, DeploymentLogLine, DeploymentService

MAX_INT = 2**31 - 1  # PostgreSQL integer


class DeploymentServiceSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeploymentService
        fields = ["service", "phase", "progress", "message", "updated_at"]


class DeploymentLogLineSerializer(serializers.ModelSerializer):
    time = serializers.DateTimeField(source="created_at")

    class Meta:
        model = DeploymentLogLine
        fields = ["seq", "time", "level", "service", "message"]


class DeploymentSerializer(serializers.ModelSerializer):
    stack = serializers.CharField(source="stack.name", read_only=True)
    revision = serializers.IntegerField(source="revision.number", read_only=True)
    target = serializers.CharField(source="target.slug", read_only=True, default=None)
    environment = serializers.CharField(source="environment.slug", read_only=True, default=None)
    triggered_by = serializers.EmailField(source="triggered_by.email", read_only=True, default=None)
    # Who approved or rejected it, when it awaited an approval.
    decided_by = serializers.EmailField(source="decided_by.email", read_only=True, default=None)
    resumed_from = serializers.PrimaryKeyRelatedField(read_only=True)
    rolled_back_to = serializers.IntegerField(
        source="rolled_back_to.number", read_only=True, default=None
    )
    finished = serializers.BooleanField(source="is_finished", read_only=True)
    duration_seconds = serializers.SerializerMethodField()

    class Meta:
        model = Deployment
        fields = [
            "id",
            "stack",
            "number",
            "revision",
            "target",
            "environment",
            "kind",
            "status",
            "finished",
            "reason",
            "diagnosis",
            "resumed_from",
            "rolled_back_to",
            "triggered_by",
            "decided_by",
            "decided_at",
            "created_at",
            "started_at",
            "finished_at",
            "duration_seconds",
            "cancel_requested_at",
            "last_seq",
        ]
        read_only_fields = fields

    def get_duration_seconds(self, obj) -> float | None:
        duration = obj.duration
        return round(duration.total_seconds(), 1) if duration is not None else None


class DeploymentDetailSerializer(DeploymentSerializer):
    services = DeploymentServiceSerializer(many=True, read_only=True)

    class Meta(DeploymentSerializer.Meta):
        fields = [*DeploymentSerializer.Meta.fields, "services"]
        read_only_fields = fields


class DeploymentCreateSerializer(serializers.Serializer):
    """Create means deploy: the stack by name and, optionally, a revision number (default:
    the latest)."""

    stack = serializers.CharField(max_length=63)
    revision = serializers.IntegerField(
        min_value=1, max_value=MAX_INT, required=False, allow_null=True
    )


class LogQuerySerializer(serializers.Serializer):
    after = serializers.IntegerField(min_value=0, max_value=MAX_INT, required=False, default=0)
    limit = serializers.IntegerField(min_value=1, max_value=5000, required=False, default=500)
    follow = serializers.BooleanField(required=False, default=False)


class LogPageSerializer(serializers.Serializer):
    lines = DeploymentLogLineSerializer(many=True)
    next_after = serializers.IntegerField()
    finished = serializers.BooleanField()


class RejectSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True)
