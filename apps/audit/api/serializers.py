from rest_framework import serializers

from ..models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "timestamp",
            "organization",
            "actor_type",
            "actor_id",
            "actor_label",
            "action",
            "object_type",
            "object_id",
            "object_label",
            "changes",
            "ip",
            "user_agent",
            "request_id",
            "prev_hash",
            "hash",
        ]
        read_only_fields = fields


class AuditFilterSerializer(serializers.Serializer):
    actor = serializers.CharField(required=False)
    action = serializers.CharField(required=False)
    object_type = serializers.CharField(required=False)
    object_id = serializers.CharField(required=False)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
