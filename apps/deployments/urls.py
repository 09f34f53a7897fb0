from django.urls import path

from . import views

app_name = "deployments"

urlpatterns = [
    path("", views.DeploymentListView.as_view(), name="deployment_list"),
    path("new/", views.DeploymentCreateView.as_view(), name="deployment_create"),
    path("<int:pk>/", views.DeploymentDetailView.as_view(), name="deployment_detail"),
    path("<int:pk>/status/", views.DeploymentStatusView.as_view(), name="deployment_status"),
    path("<int:pk>/log/", views.DeploymentLogView.as_view(), name="deployment_log"),
    path("<int:pk>/cancel/", views.DeploymentCancelView.as_view(), name="deployment_cancel"),
    path("<int:pk>/resume/", views.DeploymentResumeView.as_view(), name="deployment_resume"),
    path("<int:pk>/approve/", views.DeploymentApproveView.as_view(), name="deployment_approve"),
    path("<int:pk>/reject/", views.DeploymentRejectView.as_view(), name="deployment_reject"),
]
