from django.contrib.auth import authenticate
from django.utils.translation import gettext as _
from rest_framework import serializers
from rest_framework_simplejwt.tokens import RefreshToken

from ..authentication import ORG_CLAIM
from ..choices import Role, TokenScope
from ..models import ApiToken, Invitation, Membership
from ..permissions import get_membership


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

    def validate(self, attrs):
        request = self.context["request"]
        user = authenticate(request, email=attrs["email"], password=attrs["password"])
        if user is None:
            raise serializers.ValidationError(_("Wrong email or password."), code="authorization")
        if get_membership(user, request.tenant) is None:
            raise serializers.ValidationError(_("You are not a member of this organisation."))
        from allauth.mfa.utils import is_mfa_enabled

        if is_mfa_enabled(user):
            raise serializers.ValidationError(
                _("Your account uses two-factor authentication: use a personal access token.")
            )
        refresh = RefreshToken.for_user(user)
        refresh[ORG_CLAIM] = request.tenant.schema_name
        return {"refresh": str(refresh), "access": str(refresh.access_token)}
