from django.urls import path

from . import views

app_name = "targets"

urlpatterns = [
    path("", views.TargetListView.as_view(), name="target_list"),
    path("add/", views.TargetCreateView.as_view(), name="target_add"),
    path("<slug:slug>/", views.TargetDetailView.as_view(), name="target_detail"),
    path("<slug:slug>/delete/", views.TargetDeleteView.as_view(), name="target_delete"),
    path("<slug:slug>/edit/", views.TargetEditView.as_view(), name="target_edit"),
    path("<slug:slug>/containers/", views.TargetContainersView.as_view(), name="target_containers"),
    path(
        "<slug:slug>/prepare/output/",
        views.PrepareOutputView.as_view(),
        name="target_prepare_output",
    ),
    path("<slug:slug>/<str:verb>/", views.TargetActionView.as_view(), name="target_action"),
]
