"""Open websockets follow revocations too.

A websocket is authorised once, when it connects (`authorize` below). Each one also
joins its person's channel group, `u.<user id>`. Whenever something about that person's
access changes (a new password, a deactivation, a membership removed or its role changed,
from any write path: see apps.accounts.signals), a `credentials.revoked` message goes to that
group. Every socket of theirs then checks again, against the database, that:

- the person is still active;
- their session is still theirs (its hash matches the current password and sign-in
  generation);
- they may still do what the socket was opened for;
- the organisation still exists and is not suspended;
- for platform staff, the support access their session opened is still in force (its end
  or expiry sends the same message: apps.accounts.services.end_support_access).

A socket that fails the check is closed: 4401 when signed out, 4403 when no longer allowed.
"""

from __future__ import annotations

import logging
import types

from channels.db import database_sync_to_async

from windflow.realtime import revocation_group

from . import permissions, services

logger = logging.getLogger(__name__)

MESSAGE_TYPE = "credentials.revoked"


def notify_on_commit(user_id) -> None:
    """Ask every open socket of this person to check its access again, once committed."""
    from django.db import transaction

    transaction.on_commit(lambda: _notify(user_id))


def _notify(user_id) -> None:
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(revocation_group(user_id), {"type": MESSAGE_TYPE})
    except Exception:  # the change stands; sockets still end when they next reconnect
        logger.exception("could not tell the open websockets of user %s to check again", user_id)


async def watch(consumer, action: str | None) -> None:
    """Called by `authorize` once a socket is allowed: join the person's
    group, with a handler that checks the socket's access again on each revocation."""
    user = consumer.scope["user"]
    if getattr(consumer, "channel_layer", None) is None:  # a consumer outside the layer
        logger.warning("%s has no channel layer: revocations cannot reach it", type(consumer))
        return
    await consumer.channel_layer.group_add(revocation_group(user.pk), consumer.channel_name)

    async def credentials_revoked(self, message):
        code = await database_sync_to_async(still_allowed)(self.scope, self.tenant, action)
        if code is not None:
            await self.channel_layer.group_discard(revocation_group(user.pk), self.channel_name)
            await self.close(code=code)

    # Channels finds a message's handler by name on the consumer: this one, on this socket.
    consumer.credentials_revoked = types.MethodType(credentials_revoked, consumer)


def still_allowed(scope, tenant, action: str | None) -> int | None:
    """None when the socket may stay open, else the close code (4401 signed out, 4403 not
    allowed any more). Reads everything afresh."""
    from django.contrib.auth import HASH_SESSION_KEY
    from django.utils.crypto import constant_time_compare

    from apps.tenants.models import Organization, OrganizationStatus

    from . import permissions
    from .models import User

    user = User.objects.filter(pk=scope["user"].pk, is_active=True).first()
    if user is None:
        return 4401
    if not Organization.objects.filter(pk=tenant.pk, status=OrganizationStatus.ACTIVE).exists():
        return 4403  # suspended or deleted since the socket opened
    session = scope.get("session")
    if session is not None and session.session_key:
        stored = session.__class__(session_key=session.session_key).get(HASH_SESSION_KEY)
        if not stored or not constant_time_compare(stored, user.get_session_auth_hash()):
            return 4401
    membership = membership_in_scope(scope, user, tenant)
    allowed = membership is not None if action is None else permissions.can(membership, action)
    return None if allowed else 4403


def membership_in_scope(scope, user, tenant):
    """The member behind a socket: the person's membership, or, for platform staff, the
    support access that their session opened in this organisation while it is in force
    (sockets only speak: read-only needs nothing more here)."""
    session = scope.get("session")
    opened = session.get(services.SUPPORT_SESSION_KEY) if session is not None else None
    if opened and opened.get("org") == tenant.schema_name:
        grant = services.active_support_access(user, tenant, opened.get("id"))
        return services.support_membership(grant) if grant is not None else None
    return permissions.get_membership(user, tenant)


async def authorize(consumer, action: str | None = None):
    """The membership behind a websocket, when its user may `action` (None: any member) in
    the organisation of its host; otherwise the socket is closed (4401 not signed in, 4403
    not allowed) and None returned. Also sets `consumer.tenant` and `consumer.membership`."""
    user, tenant = consumer.scope.get("user"), consumer.scope.get("tenant")
    if user is None or not user.is_authenticated or tenant is None:
        await consumer.close(code=4401)
        return None
    membership = await database_sync_to_async(membership_in_scope)(consumer.scope, user, tenant)
    allowed = membership is not None if action is None else permissions.can(membership, action)
    if not allowed:
        await consumer.close(code=4403)
        return None
    consumer.tenant, consumer.membership = tenant, membership
    await watch(consumer, action)  # closed at once if a revocation ends this access
    return membership
