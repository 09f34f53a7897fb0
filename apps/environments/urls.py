from django.urls import path

from . import views

app_name = "environments"

urlpatterns = [
    path("", views.EnvironmentListView.as_view(), name="environment_list"),
    path("add/", views.EnvironmentEditView.as_view(), name="environment_add"),
    path("compose-policy/", views.ComposePolicyView.as_view(), name="compose_policy"),
    path("<slug:slug>/", views.EnvironmentDetailView.as_view(), name="environment_detail"),
    path("<slug:slug>/edit/", views.EnvironmentEditView.as_view(), name="environment_edit"),
    path("<slug:slug>/delete/", views.EnvironmentDeleteView.as_view(), name="environment_delete"),
    path("<slug:slug>/grants/", views.EnvironmentGrantView.as_view(), name="environment_grant"),
    path(
        "<slug:slug>/compose-policy/",
        views.EnvironmentPolicyView.as_view(),
        name="environment_policy",
    ),
]
