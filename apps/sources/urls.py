from django.urls import path

from . import views

app_name = "sources"

urlpatterns = [
    path("add/git/", views.GitStackCreateView.as_view(), name="git_stack_add"),
    path("add/upload/", views.UploadView.as_view(), name="archive_upload"),
    path("<str:name>/source/", views.SourceEditView.as_view(), name="source_edit"),
    path("<str:name>/source/fetch/", views.SourceSyncView.as_view(), name="source_sync"),
]
