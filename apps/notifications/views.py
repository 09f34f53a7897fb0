from django.shortcuts import render
from django.views.decorators.http import require_POST

from windflow.views import OrganizationView, redirect_after_post

from . import services


class NotificationListView(OrganizationView):
    """The bell's dropdown (HTMX partial) and the full list page."""

    action = "notification.view"

    def get(self, request):
        notifications = services.for_user(request.user)[:20]
        template = (
            "notifications/htmx/dropdown.html"
            if getattr(request, "htmx", False)
            else "notifications/notification_list.html"
        )
        return render(request, template, {"notifications": notifications})


class UnreadCountView(OrganizationView):
    action = "notification.view"

    def get(self, request):
        return render(
            request,
            "notifications/htmx/unread_count.html",
            {"unread_count": services.unread_count(request.user)},
        )


class MarkAllReadView(OrganizationView):
    action = "notification.view"

    def post(self, request):
        services.mark_all_read(request.user)
        return redirect_after_post(request, request.POST.get("next") or "/notifications/")


mark_all_read = require_POST(MarkAllReadView.as_view())
