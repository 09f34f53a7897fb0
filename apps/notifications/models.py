from django.db import models

from windflow.models import public_user_reference


class NotificationQuerySet(models.QuerySet):
    def unread(self):
        return self.filter(read_at__isnull=True)


class Notification(models.Model):
    """An in-app notification for one member of this organisation (the bell)."""

    recipient = public_user_reference()
    verb = models.CharField(max_length=64)
    text = models.CharField(max_length=500)
    url = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    read_at = models.DateTimeField(null=True, blank=True)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["recipient", "read_at"])]

    def __str__(self):
        return self.text

    def as_event(self) -> dict:
        return {
            "type": "notification.new",
            "id": self.pk,
            "verb": self.verb,
            "text": self.text,
            "url": self.url,
            "created_at": self.created_at.isoformat(),
        }
