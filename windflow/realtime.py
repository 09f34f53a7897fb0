"""Channels plumbing: tenant-scoped group names, publishing after commit, and the ASGI
middleware that resolves the organisation from the websocket's Host header."""

import logging
import sys
import threading
import time

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import connection, transaction

# Every Channels group name is made here: `t.<schema>.<part>...` for an organisation's
# groups (the schema keeps organisations' groups apart), `u.<user id>` for a person's
# revocations, which concern all of their organisations.


def group_name(schema: str, *parts) -> str:
    """`t.<schema>.<part>...`: the schema keeps organisations' groups apart."""
    return ".".join(["t", schema, *map(str, parts)])


def deployment_group(deployment_id: int, schema: str | None = None) -> str:
    """A deployment's log lines, service rows and status (`t.<schema>.deployment.<id>`)."""
    return group_name(schema or current_schema(), "deployment", deployment_id)


def stack_group(stack_id: int, schema: str | None = None) -> str:
    """The Channels group that hears about the stack's run time (`t.<schema>.stack.<id>`)."""
    return group_name(schema or current_schema(), "stack", stack_id)


def prepare_group(schema: str, target_id: int) -> str:
    """The output of "prepare server" (`t.<schema>.target.<id>.prepare`)."""
    return group_name(schema, "target", target_id, "prepare")


def notifications_group(schema: str, user_id: int) -> str:
    """A member's live notifications in one organisation (`t.<schema>.user.<id>.notifications`)."""
    return group_name(schema, "user", user_id, "notifications")


def revocation_group(user_id) -> str:
    """Every open socket of one person, in any organisation (`u.<id>`)."""
    return f"u.{user_id}"


logger = logging.getLogger(__name__)

# A final event (a deployment's outcome) is sent again in the background for this long when
# Redis is away; the page also catches up from the database when it reconnects.
RETRY_IMPORTANT_FOR = 30.0


def publish(group: str, event: dict, *, important: bool = False) -> None:
    """Send to a group once the current transaction commits (the row exists first).

    Best-effort: the database holds the truth and the pages catch up from it, so a publish
    that fails (Redis away) is logged and never fails the caller, nor keeps the other
    on-commit hooks from running. An `important` event is retried in the background."""
    transaction.on_commit(lambda: _send_or_retry(group, event, important), robust=True)


def send_now(group: str, event: dict) -> bool:
    """One attempt; False (logged) when the channel layer cannot be reached."""
    try:
        async_to_sync(get_channel_layer().group_send)(group, event)
    except Exception as exc:  # Redis away, or a full channel: the database has the event
        logger.warning("publish to %s failed (%s: %s)", group, type(exc).__name__, exc)
        return False
    return True


def _send_or_retry(group: str, event: dict, important: bool) -> None:
    if send_now(group, event) or not important:
        return

    def again():
        deadline, delay = time.monotonic() + RETRY_IMPORTANT_FOR, 0.5
        while time.monotonic() < deadline:
            time.sleep(delay)
            if sys.is_finalizing() or send_now(group, event):
                return
            delay = min(delay * 2, 5.0)

    threading.Thread(target=again, name=f"publish-{group}", daemon=True).start()


def current_schema() -> str:
    return connection.schema_name


@database_sync_to_async
def _organization_for_host(hostname: str):
    from apps.tenants.models import Domain

    domain = Domain.objects.select_related("tenant").filter(domain=hostname).first()
    return domain.tenant if domain else None


class TenantWebsocketMiddleware:
    """Puts the organisation of the Host header in scope["tenant"]; closes the socket for an
    unknown host."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers", []))
        host = headers.get(b"host", b"").decode("latin-1").split(":")[0].lower()
        organization = await _organization_for_host(host)
        if organization is None or organization.is_public:
            await send({"type": "websocket.close", "code": 4404})
            return
        if organization.is_suspended:  # live views are refused (apps.tenants.suspension)
            await close_after_accept(receive, send, 4403)
            return
        return await self.inner(dict(scope, tenant=organization), receive, send)


async def close_after_accept(receive, send, code: int) -> None:
    """Accept, then close with `code`: the page's script reads the code and falls back to
    polling (a socket refused before its handshake reaches the browser as 1006, a console
    error and a retry)."""
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": code})


DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}


def _netloc(scheme: str, netloc: str) -> str:
    """host[:port] in lower case, without the scheme's default port."""
    netloc = netloc.strip().lower()
    host, sep, port = netloc.rpartition(":")
    if sep and "]" not in port and port == DEFAULT_PORTS.get(scheme):
        return host
    return netloc


def same_origin(origin: str, host: str) -> bool:
    """Whether a websocket's Origin header names exactly the host it connects to (scheme
    aside): a page of another organisation's subdomain, or of any other site, may not
    open a socket here with the visitor's cookies."""
    from urllib.parse import urlsplit

    if not origin or not host or origin == "null":
        return False
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
        return False
    scheme = parts.scheme
    return _netloc(scheme, parts.netloc) == _netloc(scheme, host)


# "Try again later" (RFC 6455): what a socket gets when PostgreSQL or Redis is away.
CLOSE_TRY_AGAIN = 1013


class DependencyGuardMiddleware:
    """Outermost websocket middleware: a socket that meets PostgreSQL or Redis away (signing
    in, joining its groups, or the channel layer lost under it by a Redis restart) is closed
    with 1013 "try again later" instead of crashing; the page reconnects and catches up from
    the database."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        closed = False

        async def tracking_send(message):
            nonlocal closed
            if message.get("type") == "websocket.close":
                closed = True
            await send(message)

        try:
            return await self.inner(scope, receive, tracking_send)
        except Exception as exc:
            from windflow.resilience import dependency_of

            dependency = dependency_of(exc)
            if scope.get("type") != "websocket" or dependency is None:
                raise
            logger.warning("websocket %s closed: %s unavailable", scope.get("path"), dependency)
            if not closed:
                try:
                    await send({"type": "websocket.close", "code": CLOSE_TRY_AGAIN})
                except Exception:  # the client went away meanwhile
                    logger.debug("closing a websocket failed", exc_info=True)
            return None


class SameOriginMiddleware:
    """Refuses (close 4403, before accepting) a websocket whose Origin is not the host it
    connects to. Channels' AllowedHostsOriginValidator accepted every host of
    ALLOWED_HOSTS, so any sibling subdomain passed."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        if scope.get("type") == "websocket":
            headers = dict(scope.get("headers", []))
            origin = headers.get(b"origin", b"").decode("latin-1")
            host = headers.get(b"host", b"").decode("latin-1")
            if not same_origin(origin, host):
                await send({"type": "websocket.close", "code": 4403})
                return None
        return await self.inner(scope, receive, send)
