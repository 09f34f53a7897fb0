from django.urls import path

from . import views
from .runtime_views import runtime_urlpatterns

app_name = "stacks"

urlpatterns = [
    path("", views.StackListView.as_view(), name="stack_list"),
    path("add/", views.StackCreateView.as_view(), name="stack_add"),
    path("validate/", views.StackValidateView.as_view(), name="stack_validate"),
    *runtime_urlpatterns,
    path("<str:name>/", views.StackDetailView.as_view(), name="stack_detail"),
    path("<str:name>/edit/", views.StackReviseView.as_view(), name="stack_edit"),
    path("<str:name>/settings/", views.StackSettingsView.as_view(), name="stack_settings"),
    path("<str:name>/delete/", views.StackDeleteView.as_view(), name="stack_delete"),
    path("<str:name>/revisions/", views.RevisionListView.as_view(), name="revision_list"),
    path(
        "<str:name>/revisions/<int:number>/",
        views.RevisionDetailView.as_view(),
        name="revision_detail",
    ),
    path(
        "<str:name>/revisions/<int:number>/diff/",
        views.RevisionDiffView.as_view(),
        name="revision_diff",
    ),
    path(
        "<str:name>/revisions/<int:number>/rollback/",
        views.RevisionRollbackView.as_view(),
        name="revision_rollback",
    ),
]
