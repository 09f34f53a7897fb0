from rest_framework import serializers

from ..models import AuditEvent
from ..services import EXPORT_FIELDS


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = list(EXPORT_FIELDS)
        read_only_fields = fields


class AuditFilterSerializer(serializers.Serializer):
    actor = serializers.CharField(required=False)
    action = serializers.CharField(required=False)
    object_type = serializers.CharField(required=False)
    object_id = serializers.CharField(required=False)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
