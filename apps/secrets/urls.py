from django.urls import path

from . import views

app_name = "secrets"

urlpatterns = [
    path("", views.SecretListView.as_view(), name="secret_list"),
    path("add/", views.SecretCreateView.as_view(), name="secret_add"),
    path("<int:pk>/", views.SecretDetailView.as_view(), name="secret_detail"),
    path("<int:pk>/delete/", views.SecretDeleteView.as_view(), name="secret_delete"),
]
