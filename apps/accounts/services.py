"""Members, invitations, API tokens and the cross-host sign-in handoff."""

import secrets
import string
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.audit.services import record_in
from windflow import hotcache
from windflow.errors import Conflict, Forbidden, ServiceError

from . import permissions
from .choices import Role, TokenScope
from .models import ApiToken, Invitation, Membership, User, hash_secret

TOKEN_ALPHABET = string.ascii_letters + string.digits
TOKEN_BODY_LENGTH = 40
HANDOFF_SALT = "windflow.handoff"


# --- Members ----------------------------------------------------------------------------------


def _forget_membership(membership: Membership, token_hashes=()) -> None:
    """Once committed, requests stop seeing the old role (and the revoked tokens)."""
    keys = [hotcache.membership_key(membership.user_id, membership.organization_id)]
    keys += [hotcache.token_key(h) for h in token_hashes]
    hotcache.forget_on_commit(*keys)


def _lock_owners(organization) -> list[Membership]:
    """Lock the owners' rows so that two owners cannot demote each other at the same time."""
    return list(
        Membership.objects.select_for_update().filter(organization=organization, role=Role.OWNER)
    )


def _refuse_if_last_owner(membership: Membership, *, action: str) -> None:
    owners = _lock_owners(membership.organization)
    if membership.role == Role.OWNER and len(owners) <= 1:
        raise Conflict(
            _(
                "%(email)s is the last owner of %(org)s and cannot be %(action)s. Make someone "
                "else an owner first."
            )
            % {
                "email": membership.user.email,
                "org": membership.organization.name,
                "action": action,
            },
            code="last_owner",
        )


def change_role(actor: Membership, membership: Membership, role: str) -> Membership:
    if role not in Role.values:
        raise ServiceError(_("Unknown role “%(role)s”.") % {"role": role}, field="role")
    if not permissions.can_change_member(actor, membership):
        raise Forbidden(_("You cannot change the role of %(email)s.") % {"email": membership.user})
    if Role(role) not in permissions.assignable_roles(actor):
        raise Forbidden(_("You cannot give the role %(role)s.") % {"role": Role(role).label})
    with transaction.atomic():
        membership = Membership.objects.select_for_update().get(pk=membership.pk)
        if membership.role == role:
            return membership
        if role != Role.OWNER:
            _refuse_if_last_owner(membership, action=_("demoted"))
        before = membership.role
        membership.role = role
        membership.save(update_fields=["role"])
        _forget_membership(membership)
        record_in(
            membership.organization,
            "member.role_change",
            obj=membership.user,
            object_type="member",
            changes={"role": [before, role]},
        )
    return membership


def remove_member(actor: Membership, membership: Membership) -> None:
    """Remove a member; a member may also remove themselves (leave)."""
    leaving = actor.pk == membership.pk
    if not leaving and not permissions.can_change_member(actor, membership):
        raise Forbidden(_("You cannot remove %(email)s.") % {"email": membership.user})
    with transaction.atomic():
        membership = Membership.objects.select_for_update().get(pk=membership.pk)
        _refuse_if_last_owner(membership, action=_("removed"))
        tokens = ApiToken.objects.filter(user=membership.user, organization=membership.organization)
        hashes = list(tokens.values_list("token_hash", flat=True))
        tokens.update(revoked_at=timezone.now())
        membership.delete()
        _forget_membership(membership, token_hashes=hashes)
        record_in(
            membership.organization,
            "member.leave" if leaving else "member.remove",
            obj=membership.user,
            object_type="member",
            changes={"role": membership.role},
        )


# --- Invitations ------------------------------------------------------------------------------


def invite(actor: Membership, *, email: str, role: str) -> tuple[Invitation, str]:
    """Create an invitation and queue its email. Returns the invitation and its accept URL."""
    permissions.require(actor, "invitation.manage")
    email = User.objects.normalize_email(email).lower()
    organization = actor.organization
    if Role(role) not in permissions.assignable_roles(actor):
        raise Forbidden(_("You cannot invite someone as %(role)s.") % {"role": Role(role).label})
    if Membership.objects.filter(organization=organization, user__email__iexact=email).exists():
        raise Conflict(_("%(email)s is already a member.") % {"email": email}, field="email")
    if organization.invitations.pending().filter(email__iexact=email).exists():
        raise Conflict(
            _("%(email)s already has a pending invitation; revoke it to send a new one.")
            % {"email": email},
            field="email",
        )
    raw = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        organization=organization,
        email=email,
        role=role,
        token_hash=hash_secret(raw),
        invited_by=actor.user,
        expires_at=timezone.now() + timedelta(days=settings.WINDFLOW_INVITATION_DAYS),
    )
    accept_url = organization.url(f"/invitations/{raw}/")
    record_in(
        organization, "invitation.create", obj=invitation, changes={"email": email, "role": role}
    )
    from windflow.workers import send_on_commit

    from .tasks import send_invitation_email

    send_on_commit(send_invitation_email, invitation.pk, accept_url, organization=organization)
    return invitation, accept_url


def find_invitation(raw_token: str, organization) -> Invitation:
    invitation = (
        Invitation.objects.select_related("organization", "invited_by")
        .filter(token_hash=hash_secret(raw_token), organization=organization)
        .first()
    )
    if invitation is None:
        raise ServiceError(_("This invitation link is not valid."), code="invalid_invitation")
    return invitation


def accept_invitation(raw_token: str, organization, user: User) -> Membership:
    """Turn an invitation into a membership, once. Expired, revoked or used links are refused."""
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().get(
            pk=find_invitation(raw_token, organization).pk
        )
        status = invitation.status
        if status != "pending":
            messages = {
                "accepted": _("This invitation has already been used."),
                "revoked": _("This invitation has been revoked."),
                "expired": _("This invitation has expired. Ask for a new one."),
            }
            raise ServiceError(messages[status], code=f"invitation_{status}")
        if invitation.email.lower() != user.email.lower():
            raise Forbidden(
                _("This invitation was sent to %(email)s. Sign in with that address to accept it.")
                % {"email": invitation.email},
                code="invitation_other_email",
            )
        membership, _created = Membership.objects.get_or_create(
            user=user, organization=organization, defaults={"role": invitation.role}
        )
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        record_in(
            organization,
            "invitation.accept",
            obj=invitation,
            actor=user,
            changes={"role": membership.role},
        )
        from apps.notifications.tasks import notify_invitation_accepted
        from windflow.workers import send_on_commit

        send_on_commit(notify_invitation_accepted, invitation.pk, organization=organization)
    return membership


def revoke_invitation(actor: Membership, invitation: Invitation) -> None:
    permissions.require(actor, "invitation.manage")
    if invitation.organization_id != actor.organization_id:
        raise Forbidden(_("This invitation belongs to another organisation."))
    if invitation.status != "pending":
        raise Conflict(_("Only a pending invitation can be revoked."))
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    record_in(invitation.organization, "invitation.revoke", obj=invitation)


# --- API tokens -------------------------------------------------------------------------------


def create_api_token(
    membership: Membership, *, name: str, scope: str = TokenScope.READ, expires_in_days=None
) -> tuple[ApiToken, str]:
    """Returns the token and its secret, which is never shown again."""
    permissions.require(membership, "token.use")
    if scope not in TokenScope.values:
        raise ServiceError(_("Scope must be “read” or “write”."), field="scope")
    if scope == TokenScope.WRITE and membership.role == Role.VIEWER:
        raise Forbidden(_("Viewers can only create read-only tokens."), code="scope_not_allowed")
    if expires_in_days is not None and not 1 <= int(expires_in_days) <= 366:
        raise ServiceError(_("Expiry must be between 1 and 366 days."), field="expires_in_days")
    raw = ApiToken.PREFIX + "".join(
        secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_BODY_LENGTH)
    )
    token = ApiToken.objects.create(
        user=membership.user,
        organization=membership.organization,
        name=name.strip() or "token",
        scope=scope,
        prefix=raw[:10],
        token_hash=hash_secret(raw),
        expires_at=(
            timezone.now() + timedelta(days=int(expires_in_days)) if expires_in_days else None
        ),
    )
    record_in(
        membership.organization,
        "token.create",
        obj=token,
        changes={"scope": scope, "expires_at": token.expires_at},
    )
    return token, raw


def revoke_api_token(actor: Membership, token: ApiToken) -> None:
    own = token.user_id == actor.user_id and token.organization_id == actor.organization_id
    if not own and not (
        token.organization_id == actor.organization_id
        and permissions.can(actor, "token.manage_all")
    ):
        raise Forbidden(_("You cannot revoke this token."))
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        hotcache.forget_on_commit(hotcache.token_key(token.token_hash))
        record_in(token.organization, "token.revoke", obj=token)


LAST_USED_RESOLUTION = timedelta(minutes=1)


def resolve_api_token(raw: str, organization) -> ApiToken | None:
    """The active token with this secret for this organisation, or None."""
    token_hash = hash_secret(raw)

    def load():
        found = ApiToken.objects.select_related("user").filter(token_hash=token_hash)
        return next(iter(found.order_by()[:1]), None)  # unique hash: no ordering needed

    token = hotcache.remember(hotcache.token_key(token_hash), load)
    if token is None or token.organization_id != organization.pk or not token.is_active:
        return None
    if not token.user.is_active:
        return None
    now = timezone.now()
    # Writing on every call would cost a row update per request; a minute is precise enough.
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
        hotcache.store(hotcache.token_key(token_hash), token)
    return token


# --- Signing in on an organisation's host -----------------------------------------------------


def handoff_url(user: User, organization, next_path: str = "/", welcome: bool = False) -> str:
    """A short-lived, single-use link that signs `user` in on the organisation's host (each
    host has its own session cookie on developer machines)."""
    payload = {
        "u": user.pk,
        "o": organization.schema_name,
        "n": secrets.token_urlsafe(12),
        "p": next_path if next_path.startswith("/") and not next_path.startswith("//") else "/",
        "w": welcome,
    }
    token = signing.dumps(payload, salt=HANDOFF_SALT, compress=True)
    return organization.url(f"/accounts/handoff/?token={token}")


def consume_handoff(token: str, organization) -> tuple[User, str, bool]:
    try:
        payload = signing.loads(token, salt=HANDOFF_SALT, max_age=settings.WINDFLOW_HANDOFF_SECONDS)
    except signing.BadSignature as exc:
        raise ServiceError(_("This sign-in link is invalid or has expired.")) from exc
    if payload.get("o") != organization.schema_name:
        raise ServiceError(_("This sign-in link is for another organisation."))
    if not cache.add(f"handoff:{payload['n']}", 1, settings.WINDFLOW_HANDOFF_SECONDS * 2):
        raise ServiceError(_("This sign-in link has already been used."))
    user = User.objects.filter(pk=payload["u"], is_active=True).first()
    if user is None or permissions.get_membership(user, organization) is None:
        raise Forbidden(_("You are not a member of this organisation."))
    return user, payload["p"], bool(payload.get("w"))
