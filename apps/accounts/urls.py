from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("members/", views.MemberListView.as_view(), name="member_list"),
    path("members/<int:pk>/role/", views.MemberRoleView.as_view(), name="member_role"),
    path("members/<int:pk>/remove/", views.MemberRemoveView.as_view(), name="member_remove"),
    path("invitations/", views.InvitationListView.as_view(), name="invitation_list"),
    path(
        "invitations/<int:pk>/revoke/",
        views.InvitationRevokeView.as_view(),
        name="invitation_revoke",
    ),
    path("tokens/", views.TokenListView.as_view(), name="token_list"),
    path("tokens/<int:pk>/revoke/", views.TokenRevokeView.as_view(), name="token_revoke"),
]
