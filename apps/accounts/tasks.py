import logging

import dramatiq
from django.core.mail import send_mail
from django.template.loader import render_to_string

from .models import Invitation

logger = logging.getLogger(__name__)


@dramatiq.actor(max_retries=5, time_limit=60_000)
def send_invitation_email(invitation_id: int, accept_url: str) -> None:
    invitation = (
        Invitation.objects.select_related("organization", "invited_by")
        .filter(pk=invitation_id, accepted_at__isnull=True, revoked_at__isnull=True)
        .first()
    )
    if invitation is None:  # revoked or accepted meanwhile: nothing to send
        return
    context = {"invitation": invitation, "accept_url": accept_url}
    send_mail(
        subject=render_to_string("accounts/email/invitation_subject.txt", context).strip(),
        message=render_to_string("accounts/email/invitation.txt", context),
        from_email=None,
        recipient_list=[invitation.email],
    )


@dramatiq.actor(max_retries=0, time_limit=60_000)
def purge_expired_invitations() -> None:
    """Invitations expired for more than 30 days are of no use to anyone: delete them."""
    from datetime import timedelta

    from django.utils import timezone

    cutoff = timezone.now() - timedelta(days=30)
    deleted, _ = Invitation.objects.filter(accepted_at__isnull=True, expires_at__lt=cutoff).delete()
    logger.info("purged %d expired invitations", deleted)
