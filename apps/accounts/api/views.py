from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from windflow.api.viewsets import OrganizationModelViewSet

from .. import services
from ..models import ApiToken, Invitation, Membership
from .serializers import (
    ApiTokenSerializer,
    InvitationSerializer,
    MemberSerializer,
    TokenObtainSerializer,
    TokenPairSerializer,
    TokenRefreshSerializer,
)


class MemberViewSet(OrganizationModelViewSet):
    """Members of the organisation. Changing a role or removing someone needs admin; owners
    alone change owners; the last owner stays."""

    resource = "member"
    action_verbs = {
        "list": "view",
        "retrieve": "view",
        "update": "change",
        "partial_update": "change",
        "destroy": "view",  # every member may leave; removing others: the service decides
    }
    serializer_class = MemberSerializer
    queryset = Membership.objects.select_related("user")
    get_object_for = staticmethod(services.get_member_for)
    http_method_names = ["get", "patch", "delete", "head", "options"]  # invitations add members

    def get_queryset(self):
        return services.visible_members(self.membership, super().get_queryset())

    def perform_update(self, serializer):
        role = serializer.validated_data.get("role", serializer.instance.role)
        serializer.instance = services.change_role(self.membership, serializer.instance, role)

    def perform_destroy(self, instance):
        services.remove_member(self.membership, instance)


class InvitationViewSet(OrganizationModelViewSet):
    """Pending and past invitations. Creating one emails a single-use link; deleting revokes."""

    resource = "invitation"
    action_verbs = {"list": "view", "retrieve": "view", "create": "add", "destroy": "delete"}
    serializer_class = InvitationSerializer
    queryset = Invitation.objects.all()
    get_object_for = staticmethod(services.get_invitation_for)
    http_method_names = ["get", "post", "delete", "head", "options"]  # never changed: revoked

    def get_queryset(self):
        return services.visible_invitations(self.membership, super().get_queryset())

    def perform_create(self, serializer):
        invitation, _url = services.invite(self.membership, **serializer.validated_data)
        serializer.instance = invitation

    def perform_destroy(self, instance):
        services.revoke_invitation(self.membership, instance)


class ApiTokenViewSet(OrganizationModelViewSet):
    """Your personal access tokens in this organisation. The secret is in the create
    response only."""

    resource = "token"
    view_verb = "use"
    action_verbs = {"list": "use", "retrieve": "use", "create": "use", "destroy": "use"}
    serializer_class = ApiTokenSerializer
    queryset = ApiToken.objects.all()
    get_object_for = staticmethod(services.get_token_for)
    http_method_names = ["get", "post", "delete", "head", "options"]  # never changed: revoked

    def get_queryset(self):  # your own, whatever your role
        return services.visible_tokens(self.membership, super().get_queryset()).filter(
            user=self.request.user
        )

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, secret = services.create_api_token(self.membership, **serializer.validated_data)
        body = dict(self.get_serializer(token).data, token=secret)
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        services.revoke_api_token(self.membership, instance)


class TokenObtainView(APIView):
    """Exchange email and password for a JWT pair valid in this organisation only. The same
    lockout and rate limits as the sign-in form apply; a wrong password and a right password
    of someone who is not a member here get the same answer."""

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(request=TokenObtainSerializer, responses={200: TokenPairSerializer})
    def post(self, request):
        serializer = TokenObtainSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        pair = services.obtain_token_pair(request, request.tenant, **serializer.validated_data)
        return Response(pair)


class OrganizationTokenRefreshView(APIView):
    """A new access token and the next refresh token of the same sign-in. A refresh token is
    good once: presenting it again revokes the whole sign-in."""

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(request=TokenRefreshSerializer, responses={200: TokenPairSerializer})
    def post(self, request):
        serializer = TokenRefreshSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        pair = services.refresh_token_pair(serializer.validated_data["refresh"], request.tenant)
        return Response(pair)


class MeSerializer(serializers.Serializer):
    email = serializers.EmailField()
    full_name = serializers.CharField()
    organization = serializers.CharField()
    role = serializers.CharField()
    auth = serializers.ChoiceField(choices=["token", "session_or_jwt"])
    language = serializers.CharField(
        help_text="The pages' language the person chose (en, fr), or empty for the browser's."
    )


class MeView(APIView):
    """Who the credential belongs to, and their role here."""

    @extend_schema(responses=MeSerializer)
    def get(self, request):
        from apps.accounts.middleware import membership_of

        membership = membership_of(request)
        return Response(
            {
                "email": request.user.email,
                "full_name": request.user.full_name,
                "organization": request.tenant.slug,
                "role": membership.role,
                "auth": "token" if isinstance(request.auth, ApiToken) else "session_or_jwt",
                "language": request.user.language,
            }
        )

    def required_action(self, request):
        return None
