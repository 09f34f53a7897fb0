"""Members, invitations, API tokens and the cross-host sign-in handoff."""

import contextlib
import secrets
import string
import time
from datetime import timedelta
from typing import NamedTuple

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _

from apps.audit.services import record_in
from apps.tenants import index as operator_index
from windflow import hotcache
from windflow.errors import Conflict, Forbidden, ServiceError

from . import permissions
from .choices import Role, TokenScope
from .models import (
    ApiToken,
    Invitation,
    Membership,
    SupportAccess,
    TokenFamily,
    User,
    hash_secret,
)

TOKEN_ALPHABET = string.ascii_letters + string.digits
TOKEN_BODY_LENGTH = 40
HANDOFF_SALT = "windflow.handoff"


# --- Access: how pages and the API reach a member, an invitation, a token --------------------


def _of_organization(actor: Membership | None, queryset, action: str):
    """The part of `queryset` (rows of the public schema) that belongs to `actor`'s
    organisation and that `actor` may see for `action`."""
    if actor is None:
        return queryset.none()
    return permissions.visible(
        actor, queryset.filter(organization_id=actor.organization_id), action
    )


def visible_members(actor: Membership | None, queryset=None):
    """The members of `actor`'s organisation."""
    if queryset is None:
        queryset = Membership.objects.select_related("user")
    return _of_organization(actor, queryset, "member.view")


def get_member_for(actor: Membership | None, pk, action="member.view", *, queryset=None):
    """Membership `pk` in `actor`'s organisation, for `action` on it: NotFound, or Forbidden
    by the role (finer rules, such as rank and the last owner, are the services')."""
    return permissions.get_visible(actor, visible_members(actor, queryset), action, pk=pk)


def visible_invitations(actor: Membership | None, queryset=None):
    """The invitations of `actor`'s organisation, for those who may see them."""
    if queryset is None:
        queryset = Invitation.objects.select_related("invited_by", "accepted_by")
    return _of_organization(actor, queryset, "invitation.view")


def get_invitation_for(actor: Membership | None, pk, action="invitation.view", *, queryset=None):
    """Invitation `pk` of `actor`'s organisation: NotFound, or Forbidden by the role."""
    return permissions.get_visible(actor, visible_invitations(actor, queryset), action, pk=pk)


def visible_tokens(actor: Membership | None, queryset=None):
    """The API tokens of `actor`'s organisation. Which of them `actor` may revoke is
    `revoke_api_token`'s rule; lists show a member their own (`listed_tokens`)."""
    if queryset is None:
        queryset = ApiToken.objects.select_related("user")
    return _of_organization(actor, queryset, "token.use")


def listed_tokens(actor: Membership | None, queryset=None):
    """The tokens a list shows `actor`: their own; everyone's to those who may see other
    members' tokens."""
    tokens = visible_tokens(actor, queryset)
    if not permissions.can(actor, "token.view"):
        tokens = tokens.filter(user_id=actor.user_id) if actor else tokens.none()
    return tokens


def get_token_for(actor: Membership | None, pk, action="token.use", *, queryset=None):
    """API token `pk` of `actor`'s organisation: NotFound, or Forbidden by the role."""
    return permissions.get_visible(actor, visible_tokens(actor, queryset), action, pk=pk)


# --- Members ----------------------------------------------------------------------------------


def _forget_membership(membership: Membership) -> None:
    """Once committed, requests stop seeing the old role, also those made with the member's
    tokens, which are cached with it (apps.accounts.signals does the same for every other
    write path)."""
    pair = {"user_id": membership.user_id, "organization_id": membership.organization_id}
    tokens = ApiToken.objects.filter(**pair).values_list("token_hash", flat=True)
    hotcache.forget_on_commit(
        hotcache.membership_key(membership.user_id, membership.organization_id),
        *[hotcache.token_key(token_hash) for token_hash in tokens],
    )


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


def _refuse_unknown_role(role: str) -> None:
    if role not in Role.values:
        raise ServiceError(_("Unknown role “%(role)s”.") % {"role": role}, field="role")


def _set_role(membership: Membership, role: str, record) -> Membership:
    """Give `membership` the role `role` (kept if it has it already; never the last owner
    demoted); `record(membership, changes)` writes the audit event of the change."""
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
        record(membership, {"role": [before, role]})
    return membership


def change_role(actor: Membership, membership: Membership, role: str) -> Membership:
    _refuse_unknown_role(role)
    if not permissions.can_change_member(actor, membership):
        raise Forbidden(_("You cannot change the role of %(email)s.") % {"email": membership.user})
    if Role(role) not in permissions.assignable_roles(actor):
        raise Forbidden(_("You cannot give the role %(role)s.") % {"role": Role(role).label})

    def record(membership, changes):
        record_in(
            membership.organization,
            "member.role_change",
            obj=membership.user,
            object_type="member",
            changes=changes,
            actor=actor,
        )

    return _set_role(membership, role, record)


def remove_member(actor: Membership, membership: Membership) -> None:
    """Remove a member; a member may also remove themselves (leave)."""
    leaving = actor.pk == membership.pk
    if not leaving and not permissions.can_change_member(actor, membership, "member.delete"):
        raise Forbidden(_("You cannot remove %(email)s.") % {"email": membership.user})
    with transaction.atomic():
        membership = Membership.objects.select_for_update().get(pk=membership.pk)
        _refuse_if_last_owner(membership, action=_("removed"))
        # The membership's post_delete signal deletes the member's tokens here and its JWT
        # sign-ins cascade: a member who rejoins starts with no credential.
        membership.delete()
        _forget_membership(membership)
        record_in(
            membership.organization,
            "member.leave" if leaving else "member.remove",
            obj=membership.user,
            object_type="member",
            changes={"role": membership.role},
            actor=actor,
        )


# Platform staff change memberships from the platform admin (apps.tenants.admin and
# apps.accounts.admin): the same rules (last owner), each change in the organisation's trail
# and in the platform's, with staff as the actor.


def _record_member_event(staff: User, membership: Membership, action: str, changes) -> None:
    for organization in (membership.organization, None):
        record_in(
            organization,
            action,
            obj=membership.user,
            object_type="member",
            object_label=f"{membership.user.email} in {membership.organization.slug}",
            changes=changes,
            actor=staff,
        )


def check_staff_member_change(membership: Membership, *, role: str | None = None) -> None:
    """Conflict when demoting (`role`) or removing (None) `membership` would leave its
    organisation without an owner; for a form to say before anything is saved."""
    if membership.pk is None or membership.role != Role.OWNER or role == Role.OWNER:
        return
    owners = Membership.objects.filter(organization_id=membership.organization_id, role=Role.OWNER)
    if owners.count() <= 1:
        raise Conflict(
            _("%(email)s is the last owner of %(org)s: make someone else an owner first.")
            % {"email": membership.user.email, "org": membership.organization.name},
            field="role",
            code="last_owner",
        )


def staff_add_member(staff: User, organization, user: User, role: str) -> Membership:
    _refuse_unknown_role(role)
    with transaction.atomic():
        membership, created = Membership.objects.get_or_create(
            user=user, organization=organization, defaults={"role": role}
        )
        if not created:
            raise Conflict(
                _("%(email)s is already a member of %(org)s.")
                % {"email": user.email, "org": organization.name},
                field="user",
            )
        _forget_membership(membership)
        _record_member_event(staff, membership, "member.add", {"role": role})
    return membership


def staff_change_role(staff: User, membership: Membership, role: str) -> Membership:
    _refuse_unknown_role(role)

    def record(membership, changes):
        _record_member_event(staff, membership, "member.role_change", changes)

    return _set_role(membership, role, record)


def staff_remove_member(staff: User, membership: Membership) -> None:
    with transaction.atomic():
        membership = Membership.objects.select_for_update().get(pk=membership.pk)
        _refuse_if_last_owner(membership, action=_("removed"))
        membership.delete()
        _forget_membership(membership)
        _record_member_event(staff, membership, "member.remove", {"role": membership.role})


def deactivate_user(actor: User, user: User) -> None:
    """A platform operator turns an account off: every session, JWT and personal token of
    theirs is refused from the next request (User.save raises the sign-in generation; the
    model signals clear the request cache). Reactivating brings back personal tokens, not
    sign-ins."""
    if not user.is_active:
        return
    user.is_active = False
    user.save(update_fields=["is_active"])
    record_in(None, "user.deactivate", obj=user, actor=actor)
    operator_index.security_event(
        "revocation",
        actor=actor.email if actor is not None else "",
        summary=f"account {user.email} deactivated",
        platform=True,
    )


def set_language(user: User, language: str) -> None:
    """Remember the pages' language of a person ("" = their browser's), for every host."""
    if language not in {"", *dict(settings.LANGUAGES)}:
        raise ServiceError(_("This language is not available."), code="unknown_language")
    if user.language != language:
        user.language = language
        user.save(update_fields=["language"])


# --- Invitations ------------------------------------------------------------------------------


def invite(actor: Membership, *, email: str, role: str) -> tuple[Invitation, str]:
    """Create an invitation and queue its email. Returns the invitation and its accept URL."""
    permissions.require(actor, "invitation.add")
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
    invitation = Invitation.objects.create(
        organization=organization,
        email=email,
        role=role,
        token_hash=hash_secret(secrets.token_urlsafe(32)),  # replaced below, never given out
        invited_by=actor.user,
        expires_at=timezone.now() + timedelta(days=settings.WINDFLOW_INVITATION_DAYS),
    )
    raw = _invitation_token(invitation)
    invitation.token_hash = hash_secret(raw)
    invitation.save(update_fields=["token_hash"])
    accept_url = organization.url(f"/invitations/{raw}/")
    record_in(
        organization,
        "invitation.create",
        obj=invitation,
        changes={"email": email, "role": role},
        actor=actor,
    )
    from windflow.workers import send_on_commit

    from .tasks import send_invitation_email

    send_on_commit(send_invitation_email, invitation.pk, accept_url, organization=organization)
    return invitation, accept_url


def _invitation_token(invitation: Invitation) -> str:
    """The secret of an invitation's link: derived from the invitation with the server's
    key, so that the invitations page can give the link again (invitation_url); only its
    hash is stored, as for any token."""
    value = f"{invitation.organization_id}:{invitation.pk}:{invitation.created_at.isoformat()}"
    return salted_hmac("windflow.accounts.invitation", value, algorithm="sha256").hexdigest()


def invitation_url(actor: Membership, invitation: Invitation) -> str:
    """The accept link of a pending invitation, for a member who may invite (to copy from the
    page); "" for anyone else, for a used, revoked or expired invitation, and for a link that
    cannot be derived again (made with another server key)."""
    if invitation.status != "pending" or not permissions.can(actor, "invitation.add"):
        return ""
    if invitation.organization_id != actor.organization.pk:
        return ""
    raw = _invitation_token(invitation)
    if hash_secret(raw) != invitation.token_hash:
        return ""
    return actor.organization.url(f"/invitations/{raw}/")


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
    permissions.require(actor, "invitation.delete")
    if invitation.organization_id != actor.organization_id:
        raise Forbidden(_("This invitation belongs to another organisation."))
    if invitation.status != "pending":
        raise Conflict(_("Only a pending invitation can be revoked."))
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    record_in(invitation.organization, "invitation.revoke", obj=invitation, actor=actor)


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
        actor=membership,
    )
    return token, raw


def revoke_api_token(actor: Membership, token: ApiToken) -> None:
    own = token.user_id == actor.user_id and token.organization_id == actor.organization_id
    if not own and not (
        token.organization_id == actor.organization_id and permissions.can(actor, "token.delete")
    ):
        raise Forbidden(_("You cannot revoke this token."))
    _revoke_token(token, actor=actor, by=actor.user, trails=[token.organization])


def staff_revoke_api_token(staff: User, token: ApiToken) -> bool:
    """Platform staff revoke a token from the platform admin; recorded in the organisation's
    trail and the platform's. False when it was revoked already."""
    return _revoke_token(token, actor=staff, by=staff, trails=[token.organization, None])


def _revoke_token(token: ApiToken, *, actor, by: User, trails) -> bool:
    if token.revoked_at is not None:
        return False
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    hotcache.forget_on_commit(hotcache.token_key(token.token_hash))
    for organization in trails:
        record_in(organization, "token.revoke", obj=token, actor=actor)
    operator_index.security_event(
        "revocation",
        actor=by.email,
        summary=f"API token {token.name} ({token.prefix}…) of {token.user.email}",
        organization=token.organization,
    )
    return True


LAST_USED_RESOLUTION = timedelta(minutes=1)


def _load_token_with_membership(token_hash: str) -> ApiToken | None:
    """The token with this hash, its user and (`token.membership`) its holder's membership in
    its organisation; None when either is missing. Cached as one entry, so that a request
    makes one round trip to Redis for both: whatever changes the membership forgets the
    entries of the pair's tokens too (apps.accounts.signals.membership_saved)."""
    found = ApiToken.objects.select_related("user").filter(token_hash=token_hash)
    token = next(iter(found.order_by()[:1]), None)  # unique hash: no ordering needed
    if token is None:
        return None
    members = Membership.objects.select_related("user", "organization").filter(
        user_id=token.user_id, organization_id=token.organization_id
    )
    token.membership = next(iter(members.order_by()[:1]), None)  # the pair is unique
    return token if token.membership is not None else None


def resolve_api_token(raw: str, organization) -> ApiToken | None:
    """The active token with this secret for this organisation, or None. `token.membership`
    is its holder's membership there (the request's: no second lookup)."""
    token_hash = hash_secret(raw)
    token = hotcache.remember(
        hotcache.token_key(token_hash), lambda: _load_token_with_membership(token_hash)
    )
    if token is None or token.organization_id != organization.pk or not token.is_active:
        return None
    if not token.user.is_active:
        return None
    if token.created_at < token.membership.created_at:
        return None  # a token of an earlier membership never opens a later one
    _note_token_used(token, token_hash)
    return token


# token hash -> monotonic time this process last asked Redis whether to record a use
_uses_noted: dict[str, float] = {}
_USES_NOTED_MAX = 10_000


def _note_token_used(token: ApiToken, token_hash: str) -> None:
    """Record `last_used_at`, about once a minute per token: writing on every call would cost
    a row update per request. This process asks Redis (one marker for every process) at most
    once a minute per token, rather than on every request. The marker is apart from the
    cached token, which only a forget ever replaces."""
    now_monotonic = time.monotonic()
    resolution = LAST_USED_RESOLUTION.total_seconds()
    if now_monotonic - _uses_noted.get(token_hash, -resolution) < resolution:
        return
    if len(_uses_noted) >= _USES_NOTED_MAX:
        _uses_noted.clear()
    _uses_noted[token_hash] = now_monotonic
    if hotcache.mark_once(f"token-used:{token_hash}", int(resolution)):
        now = timezone.now()
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


# --- Signing in on an organisation's host -----------------------------------------------------


def handoff_url(user: User, organization, next_path: str = "/", welcome: bool = False) -> str:
    """A short-lived, single-use link that signs `user` in on the organisation's host (each
    host has its own session cookie on developer machines)."""
    token = handoff_token(user, organization, next_path, welcome)
    return organization.url(f"/accounts/handoff/?token={token}")


def support_handoff(grant: SupportAccess, next_path: str = "/admin/") -> tuple[str, str]:
    """(address, token) that sign the staff of `grant` in on its organisation's host, for a
    form to POST there: the token travels in the body, never in an address that logs keep."""
    token = handoff_token(grant.staff, grant.organization, next_path, support=grant)
    return grant.organization.url("/accounts/handoff/"), token


def handoff_token(
    user: User,
    organization,
    next_path: str = "/",
    welcome: bool = False,
    *,
    support: SupportAccess | None = None,
) -> str:
    """The signed, short-lived, single-use token of a handoff; with `support`, it opens that
    support access (platform staff, who are not members) instead of a membership."""
    payload = {
        "u": user.pk,
        "o": organization.schema_name,
        "n": secrets.token_urlsafe(12),
        "p": next_path if next_path.startswith("/") and not next_path.startswith("//") else "/",
        "w": welcome,
    }
    if support is not None:
        payload["s"] = support.pk
    return signing.dumps(payload, salt=HANDOFF_SALT, compress=True)


class Handoff(NamedTuple):
    """What a consumed sign-in link gives: who, where to, whether to welcome them, and the
    support access it opens (None for a member)."""

    user: User
    next_path: str
    welcome: bool
    support: SupportAccess | None = None


def consume_handoff(token: str, organization, *, posted: bool = False) -> Handoff:
    """The sign-in that `token` hands over, once. A support access opens only from a POSTed
    token (`posted`): its token is never in an address."""
    try:
        payload = signing.loads(token, salt=HANDOFF_SALT, max_age=settings.WINDFLOW_HANDOFF_SECONDS)
    except signing.BadSignature as exc:
        raise ServiceError(_("This sign-in link is invalid or has expired.")) from exc
    if payload.get("o") != organization.schema_name:
        raise ServiceError(_("This sign-in link is for another organisation."))
    if not cache.add(f"handoff:{payload['n']}", 1, settings.WINDFLOW_HANDOFF_SECONDS * 2):
        raise ServiceError(_("This sign-in link has already been used."))
    user = User.objects.filter(pk=payload["u"], is_active=True).first()
    support = None
    if payload.get("s") is not None:
        if not posted:
            raise ServiceError(_("Open support access from the platform admin."))
        support = active_support_access(user, organization, payload["s"])
        if support is None:
            raise Forbidden(_("This support access has ended or expired."))
    elif user is None or permissions.get_membership(user, organization) is None:
        raise Forbidden(_("You are not a member of this organisation."))
    return Handoff(user, payload["p"], bool(payload.get("w")), support)


# --- Support access: platform staff in an organisation, for a while, with a reason ------------

SUPPORT_DEFAULT_DURATION = timedelta(hours=1)
SUPPORT_MAX_DURATION = timedelta(hours=4)
# The session key, on the organisation's host, of the support access it was opened with.
SUPPORT_SESSION_KEY = "windflow.support_access"


def may_open_read_write(staff: User) -> bool:
    """Read-write support access needs its own permission (superusers have every one)."""
    allowed = staff.has_perm("accounts.read_write_supportaccess")
    return staff.is_active and staff.is_staff and allowed


def _support_changes(grant: SupportAccess) -> dict:
    return {
        "staff": grant.staff.email,
        "reason": grant.reason,
        "mode": "read-write" if grant.read_write else "read-only",
        "expires_at": grant.expires_at.isoformat(),
    }


def _record_support(grant: SupportAccess, action: str, actor, **extra) -> None:
    """In the organisation's trail and in the platform's."""
    changes = {**_support_changes(grant), **extra}
    for organization in (grant.organization, None):
        record_in(
            organization,
            action,
            obj=grant,
            object_type="support_access",
            object_label=f"{grant.staff.email} in {grant.organization.slug}",
            changes=changes,
            actor=actor,
        )


def start_support_access(
    staff: User,
    organization,
    *,
    reason: str,
    read_write: bool = False,
    duration: timedelta = SUPPORT_DEFAULT_DURATION,
) -> SupportAccess:
    """Open `staff`'s access to `organization` for `duration` (at most
    SUPPORT_MAX_DURATION), read-only unless `read_write` (which needs its permission). A
    previous access of the same person to the same organisation ends first."""
    if not (staff.is_active and staff.is_staff):
        raise Forbidden(_("Only platform staff can open support access."))
    if organization is None or organization.is_public:
        raise ServiceError(_("Choose an organisation."), field="organization")
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(
            _("Say why you need access: the organisation reads it in its audit log."),
            field="reason",
            code="reason_required",
        )
    if not timedelta(0) < duration <= SUPPORT_MAX_DURATION:
        raise ServiceError(
            _("Support access lasts between a minute and %(hours)d hours.")
            % {"hours": SUPPORT_MAX_DURATION.total_seconds() // 3600},
            field="duration",
        )
    if read_write and not may_open_read_write(staff):
        raise Forbidden(
            _("You are not allowed to open read-write support access: ask for read-only."),
            field="read_write",
        )
    for previous in SupportAccess.objects.active().filter(staff=staff, organization=organization):
        end_support_access(previous, actor=staff)
    now = timezone.now()
    with transaction.atomic():
        grant = SupportAccess.objects.create(
            staff=staff,
            organization=organization,
            reason=reason[:500],
            read_write=read_write,
            started_at=now,
            expires_at=now + duration,
        )
        _record_support(grant, "support.start", staff)
    return grant


def end_support_access(grant: SupportAccess, *, actor=None) -> SupportAccess:
    """End `grant` now (or record that it expired), once, in both audit trails."""
    with transaction.atomic():
        grant = (
            SupportAccess.objects.select_for_update()
            .select_related("staff", "organization")
            .get(pk=grant.pk)
        )
        if grant.end_recorded:
            return grant
        now = timezone.now()
        expired = grant.ended_at is None and grant.expires_at <= now
        if grant.ended_at is None and not expired:
            grant.ended_at = now
        grant.end_recorded = True
        grant.save(update_fields=["ended_at", "end_recorded"])
        _record_support(
            grant,
            "support.expire" if expired else "support.end",
            None if expired else actor,
        )
    return grant


def record_expired_support_accesses() -> int:
    """Record the end of every support access that expired (the scheduler, every minute;
    the access itself stopped at its expiry, whatever this records)."""
    expired = SupportAccess.objects.filter(end_recorded=False, expires_at__lte=timezone.now())
    count = 0
    for grant in expired:
        end_support_access(grant)
        count += 1
    return count


def record_support_end(grant_id) -> None:
    """A session found its support access over: record its end if not yet done."""
    try:
        grant = SupportAccess.objects.filter(pk=int(grant_id), end_recorded=False).first()
    except (TypeError, ValueError):
        return
    if grant is not None and not grant.is_active:
        end_support_access(grant)


def active_support_access(staff: User | None, organization, pk) -> SupportAccess | None:
    """The support access `pk` of `staff` to `organization`, if it is in force now."""
    if staff is None or not staff.is_active or not staff.is_staff or organization is None:
        return None
    try:
        found = SupportAccess.objects.active().select_related("staff", "organization")
        return found.filter(pk=int(pk), staff=staff, organization=organization).first()
    except (TypeError, ValueError):
        return None


class SupportNotice(NamedTuple):
    """What an organisation's pages say of a support access in force (its banner)."""

    id: int
    staff: str
    reason: str
    read_write: bool
    expires_at: object

    @property
    def mode_label(self) -> str:
        return str(_("read-write") if self.read_write else _("read-only"))


def support_key(organization_id) -> str:
    return f"support:{organization_id}"


def support_notices(organization) -> list[SupportNotice]:
    """The support accesses in force in `organization`, for the banner of every page (cached
    with the request lookups: forgotten whenever an access is saved, apps.accounts.signals)."""

    def load():
        grants = SupportAccess.objects.active().filter(organization=organization)
        return [
            SupportNotice(
                grant.pk, grant.staff.email, grant.reason, grant.read_write, grant.expires_at
            )
            for grant in grants.select_related("staff").order_by("expires_at")
        ]

    now = timezone.now()
    notices = hotcache.remember(support_key(organization.pk), load) or []
    return [notice for notice in notices if notice.expires_at > now]


def support_membership(grant: SupportAccess) -> Membership:
    """Stands for a membership while `grant` lasts: an admin's role (read-only is enforced
    on every write by apps.accounts.middleware.SupportAccessMiddleware), never saved."""
    membership = Membership(user=grant.staff, organization=grant.organization, role=Role.ADMIN)
    membership.support = grant
    return membership


# --- JWT sign-ins (the CLI) -------------------------------------------------------------------

ORG_CLAIM = "org"  # the organisation's schema: a JWT opens that organisation only
FAMILY_CLAIM = "fam"  # the TokenFamily (one sign-in and its rotations)
VERSION_CLAIM = "ver"  # User.token_version when issued


class WrongCredentials(ServiceError):
    status_code = 400
    code = "invalid_credentials"


class LockedOut(ServiceError):
    status_code = 429
    code = "throttled"


class SignInEnded(ServiceError):
    """A JWT that no longer opens anything: revoked, reused, expired or of another place."""

    status_code = 401
    code = "authentication_failed"


def _wrong_credentials() -> WrongCredentials:
    return WrongCredentials(_("Wrong email or password."))


def obtain_token_pair(request, organization, *, email: str, password: str) -> dict:
    """A JWT pair for `email` in `organization`, through the sign-in form's own lockout and
    rate limits (django-allauth's, counted per person and per client address). A right
    password of someone who is not a member gets the wrong password's answer, and counts as
    a failure like it, so no answer tells that a password was right."""
    from allauth.account.adapter import get_adapter
    from allauth.core import ratelimit
    from allauth.mfa.utils import is_mfa_enabled
    from django.contrib.auth.signals import user_login_failed
    from django.core.exceptions import ValidationError

    http_request = getattr(request, "_request", request)
    if not ratelimit.consume(http_request, action="login"):
        raise LockedOut(_("Too many sign-in attempts from your address. Try again later."))
    adapter = get_adapter(http_request)
    credentials = {"email": email.strip().lower(), "password": password}
    try:
        user = adapter.authenticate(http_request, **credentials)
    except ValidationError as exc:  # the lockout: too many failures for this person or address
        raise LockedOut(" ".join(exc.messages)) from exc
    # allauth hands back an inactive account with a right password (for its own page).
    if user is not None and not user.is_active:
        user = None
    membership = permissions.get_membership(user, organization) if user else None
    if user is not None and membership is None:
        user_login_failed.send(
            sender=__name__, credentials={"email": credentials["email"]}, request=http_request
        )
        # allauth gave back the attempt it counted, as for any right password: count it again.
        with contextlib.suppress(ValidationError):
            adapter.pre_authenticate(http_request, email=credentials["email"])
        user = None
    if user is None:
        raise _wrong_credentials()
    if is_mfa_enabled(user):
        raise ServiceError(
            _("Your account uses two-factor authentication: use a personal access token."),
            code="mfa_required",
        )
    return issue_token_pair(membership)


def _new_refresh(membership: Membership, family: TokenFamily):
    from rest_framework_simplejwt.tokens import RefreshToken

    refresh = RefreshToken.for_user(membership.user)
    refresh[ORG_CLAIM] = membership.organization.schema_name
    refresh[FAMILY_CLAIM] = str(family.pk)
    refresh[VERSION_CLAIM] = membership.user.token_version
    return refresh


def issue_token_pair(membership: Membership) -> dict:
    family = TokenFamily(membership=membership)
    refresh = _new_refresh(membership, family)
    family.current_jti = refresh["jti"]
    family.save()
    return {"refresh": str(refresh), "access": str(refresh.access_token)}


def refresh_token_pair(raw: str, organization) -> dict:
    """Rotation: a refresh token is good once. It gives a new access token and a new refresh
    token of the same family; presenting it again revokes the family (every access and
    refresh token of that sign-in), since two holders of one token means one is a thief."""
    import uuid

    from rest_framework_simplejwt.exceptions import TokenError
    from rest_framework_simplejwt.tokens import RefreshToken

    ended = _("This sign-in has ended (signed out, revoked or expired). Sign in again.")
    try:
        old = RefreshToken(raw)
        family_id = uuid.UUID(str(old.get(FAMILY_CLAIM)))
    except (TokenError, ValueError) as exc:
        raise SignInEnded(_("Invalid or expired refresh token.")) from exc
    if old.get(ORG_CLAIM) != organization.schema_name:
        raise SignInEnded(_("This token is for another organisation."))
    with transaction.atomic():
        family = (
            TokenFamily.objects.select_for_update(of=("self",))
            .select_related("membership__user", "membership__organization")
            .filter(pk=family_id)
            .first()
        )
        if family is None or family.revoked_at is not None:
            raise SignInEnded(ended)
        if family.current_jti != old.get("jti"):
            _revoke_family(family, reason="reuse")
            reused = True
        else:
            reused = False
            user = family.membership.user
            if not user.is_active or old.get(VERSION_CLAIM) != user.token_version:
                raise SignInEnded(ended)
            refresh = _new_refresh(family.membership, family)
            family.current_jti = refresh["jti"]
            family.refreshed_at = timezone.now()
            family.save(update_fields=["current_jti", "refreshed_at"])
    if reused:  # raised after the commit: the revocation stands
        raise SignInEnded(
            _(
                "This refresh token has already been used. Every token of this sign-in is now "
                "revoked; sign in again."
            ),
            code="token_reused",
        )
    return {"refresh": str(refresh), "access": str(refresh.access_token)}


def staff_end_sign_in(staff: User, family: TokenFamily) -> bool:
    """Platform staff end a JWT sign-in (the CLI's) from the platform admin; recorded in the
    organisation's trail and the platform's. False when it had ended already."""
    with transaction.atomic():
        family = (
            TokenFamily.objects.select_for_update()
            .select_related("membership__user", "membership__organization")
            .get(pk=family.pk)
        )
        if family.revoked_at is not None:
            return False
        _revoke_family(family, reason="staff", actor=staff)
    return True


def _revoke_family(family: TokenFamily, *, reason: str, actor: User | None = None) -> None:
    family.revoked_at = timezone.now()
    family.revoked_reason = reason
    family.save(update_fields=["revoked_at", "revoked_reason"])
    trails = [family.membership.organization] + ([None] if actor is not None else [])
    for organization in trails:
        record_in(
            organization,
            "token.jwt_revoke",
            object_type="jwt",
            object_id=str(family.pk),
            object_label=family.membership.user.email,
            changes={"reason": reason},
            actor=actor,
        )
    operator_index.security_event(
        "revocation",
        actor=(actor or family.membership.user).email,
        summary=f"JWT sign-in revoked ({reason})",
        organization=family.membership.organization,
    )


def token_family(family_id) -> TokenFamily | None:
    """The JWT family behind an access token, from the request cache (cleared by the family's
    model signals when it is revoked or removed)."""
    import uuid

    try:
        family_id = uuid.UUID(str(family_id))
    except ValueError:
        return None

    def load():
        return TokenFamily.objects.filter(pk=family_id).order_by().first()

    return hotcache.remember(hotcache.family_key(family_id), load)


def check_jwt(validated, user: User, organization) -> None:
    """Raise SignInEnded unless this validated access token still opens `organization` for
    `user`: same sign-in generation, a live family of the user's current membership here."""
    ended = _("This sign-in has ended (signed out, revoked or expired). Sign in again.")
    if validated.get(VERSION_CLAIM) != user.token_version:
        raise SignInEnded(ended)
    family = token_family(validated.get(FAMILY_CLAIM))
    if family is None or family.revoked_at is not None:
        raise SignInEnded(ended)
    membership = permissions.get_membership(user, organization)
    if membership is None or membership.pk != family.membership_id:
        raise SignInEnded(ended)
