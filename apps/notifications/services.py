"""In-app notifications: stored first, then pushed live to the recipient's open pages."""

from collections.abc import Callable

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone, translation

from windflow.realtime import current_schema, notifications_group, publish

from .models import Notification


def notify(
    recipients, *, verb: str, text: str | Callable[[], str], url: str = "", stack=None
) -> list[Notification]:
    """Store, then push, one notification per recipient. `text` is a string, or a function
    that writes it: called once per recipient in their language (`User.language`, else the
    site's), so that each reads the bell in their own. The text (and the link) is stored
    with secret values masked: those of `stack` when it is about one, and those of the
    active scope (windflow.redaction) always. Every outbound channel (email, webhook...)
    sends what is stored here, never the caller's text."""
    from apps.secrets.redaction import redact_for_stack

    url = redact_for_stack(stack, url or "")[:500]
    notifications = []
    for user in recipients:
        with translation.override(user.language or settings.LANGUAGE_CODE):
            written = text() if callable(text) else text
        written = redact_for_stack(stack, written or "")[:500]
        notifications.append(
            Notification.objects.create(recipient=user, verb=verb, text=written, url=url)
        )
    schema = current_schema()
    for notification in notifications:
        event = {"type": "notification.new", "notification": notification.as_event()}
        publish(notifications_group(schema, notification.recipient_id), event)
    return notifications


def for_user(user) -> QuerySet:
    return Notification.objects.filter(recipient=user)


def unread_count(user) -> int:
    return for_user(user).unread().count()


def mark_all_read(user) -> int:
    return for_user(user).unread().update(read_at=timezone.now())
