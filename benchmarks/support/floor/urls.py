from django.urls import path

from .views import EnvironmentList, healthz

urlpatterns = [
    path("api/v1/environments/", EnvironmentList.as_view()),
    path("healthz", healthz),
]
