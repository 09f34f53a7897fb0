import dramatiq
from django.utils.translation import gettext as _

from apps.accounts.choices import Role
from apps.accounts.models import Invitation, User

from . import services


@dramatiq.actor(max_retries=3, time_limit=30_000)
def notify_invitation_accepted(invitation_id: int) -> None:
    """Tell the organisation's owners and admins (and the inviter) that someone joined."""
    invitation = (
        Invitation.objects.select_related("accepted_by", "organization")
        .filter(pk=invitation_id)
        .first()
    )
    if invitation is None or invitation.accepted_by is None:
        return
    organization = invitation.organization
    recipients = User.objects.filter(
        memberships__organization=organization,
        memberships__role__in=[Role.OWNER, Role.ADMIN],
    ).exclude(pk=invitation.accepted_by_id)
    if invitation.invited_by_id:
        recipients = recipients | User.objects.filter(pk=invitation.invited_by_id)
    services.notify(
        recipients.distinct(),
        verb="invitation.accepted",
        text=lambda: (
            _("%(email)s accepted the invitation and joined as %(role)s.")
            % {"email": invitation.accepted_by.email, "role": invitation.get_role_display()}
        ),
        url="/settings/members/",
    )
