from django.urls import path

from . import views

app_name = "notifications"

urlpatterns = [
    path("", views.NotificationListView.as_view(), name="notification_list"),
    path("unread/", views.UnreadCountView.as_view(), name="notification_unread"),
    path("read/", views.mark_all_read, name="notification_read_all"),
]
