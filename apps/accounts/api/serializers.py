from rest_framework import serializers

from ..choices import Role, TokenScope
from ..models import ApiToken, Invitation, Membership


class MemberSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email", read_only=True)
    full_name = serializers.CharField(source="user.full_name", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "email", "full_name", "role", "created_at"]
        read_only_fields = ["id", "email", "full_name", "created_at"]


class InvitationSerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True)
    role = serializers.ChoiceField(choices=Role.choices)

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "status", "created_at", "expires_at"]
        read_only_fields = ["id", "status", "created_at", "expires_at"]


class ApiTokenSerializer(serializers.ModelSerializer):
    scope = serializers.ChoiceField(choices=TokenScope.choices, default=TokenScope.READ)
    expires_in_days = serializers.IntegerField(
        write_only=True, required=False, allow_null=True, min_value=1, max_value=366
    )
    user = serializers.EmailField(source="user.email", read_only=True)

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "prefix",
            "scope",
            "user",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "expires_in_days",
        ]
        read_only_fields = [
            "id",
            "prefix",
            "user",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
        ]


class TokenObtainSerializer(serializers.Serializer):
    """Email and password for a JWT pair bound to this organisation (for the CLI)."""

    email = serializers.EmailField()
    password = serializers.CharField(trim_whitespace=False, style={"input_type": "password"})


class TokenRefreshSerializer(serializers.Serializer):
    """A refresh token, good once: the answer carries the next one."""

    refresh = serializers.CharField()


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
