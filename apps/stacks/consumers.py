"""Live logs of one of a stack's containers over a websocket.

A background thread follows the Docker log stream (blocking I/O) and appends lines to a
buffer; a task on the event loop sends the buffer in batches: at most FLUSH_SECONDS after
the first line of a batch arrives, or at once when MAX_BATCH lines are waiting. Closing
the socket cancels the stream (CancelToken), which closes the Docker connection.

Messages: ``{"type": "lines", "lines": ["<RFC 3339 time> <text>", ...]}``, then
``{"type": "end"}`` when the container stops, or ``{"type": "error", "message"}``; and
``{"type": "skipped", "count": n}`` if a client reads too slowly and lines were dropped.
When a redeploy replaces the container (same name), the socket follows the new one from
its first line, after ``{"type": "replaced", "name", "short_id"}``; a restarted container
is followed on (runtime.next_container).
Close codes: 4401 not signed in, 4403 not allowed, 4404 no such stack or container.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.db import connection
from django_tenants.utils import tenant_context

from apps.accounts.revocation import authorize
from windflow.engine.drivers import CancelToken
from windflow.errors import NotFound, ServiceError

from . import runtime, services
from .models import Stack

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 0.025
MAX_BATCH = 500
MAX_PENDING = 50_000  # lines buffered for a slow reader before the oldest are dropped
MAX_QUIET_RESTARTS = 3  # a stream that keeps ending with no line is not reopened forever


def _tail(scope) -> int:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("tail") or [None]
    return runtime.clamp_tail(values[0])


class ContainerLogConsumer(AsyncJsonWebsocketConsumer):
    # Lines come from Docker, never from a group; the channel layer only carries the
    # person's revocations (apps.accounts.revocation.authorize), which close this socket too.

    async def connect(self):
        self.cancel = CancelToken()
        if await authorize(self, "stack.view") is None:
            return
        kwargs = self.scope["url_route"]["kwargs"]
        try:
            # Docker may be slow: not on the shared database thread.
            found = await sync_to_async(self._find, thread_sensitive=False)(
                kwargs["name"], kwargs["container"]
            )
        except NotFound:
            await self.close(code=4404)
            return
        except ServiceError as exc:
            await self.close(code=4404 if exc.code == "not_found" else 4503)
            return
        self.stack, self.container = found
        await self.accept()
        self.loop = asyncio.get_running_loop()
        self.lock = threading.Lock()
        self.pending: list[str] = []
        self.skipped = 0
        self.finished: dict | None = None
        self.wake = asyncio.Event()
        self.sender = asyncio.create_task(self._send_batches())
        self.reader = threading.Thread(
            target=self._follow, args=(_tail(self.scope),), name="container-logs", daemon=True
        )
        self.reader.start()

    async def disconnect(self, code):
        self.cancel.cancel()
        sender = getattr(self, "sender", None)
        if sender is not None and sender is not asyncio.current_task():
            sender.cancel()

    async def receive_json(self, content, **kwargs):
        """The socket only speaks; whatever a client sends is ignored."""

    # --- Database and Docker work (threads) ------------------------------------------------

    def _find(self, name: str, container_id: str) -> tuple[Stack, dict]:
        """The stack (visible to the member, in this organisation) and its container; else
        NotFound, or ServiceError "not_found" for a container that is not the stack's."""
        try:
            with tenant_context(self.tenant):
                stack = services.get_stack_for(self.membership, name)
                return stack, runtime.stack_container(stack, container_id)
        finally:
            connection.close()

    def _follow(self, tail: int) -> None:
        """The reader thread: Docker lines into the buffer until cancelled or the end; then
        the container that took its place, if any (a redeploy), and so on."""
        finished: dict = {"type": "end"}
        container, quiet_restarts = self.container, 0
        try:
            with tenant_context(self.tenant):
                while not self.cancel.cancelled:
                    count = self._stream(container, tail)
                    if self.cancel.cancelled:
                        break
                    following = runtime.next_container(self.stack, container, cancel=self.cancel)
                    if following is None:
                        break
                    if following["replaced"]:
                        self._push(
                            {
                                "type": "replaced",
                                "name": following["name"],
                                "short_id": following["short_id"],
                            }
                        )
                        tail, quiet_restarts = runtime.MAX_TAIL, 0
                    else:  # the same container again (restarted): only its new lines
                        tail = 0
                        quiet_restarts = quiet_restarts + 1 if count == 0 else 0
                        if quiet_restarts > MAX_QUIET_RESTARTS:
                            break
                    container = following
        except ServiceError as exc:
            finished = {"type": "error", "message": exc.message}
        except Exception as exc:
            logger.exception("following the logs of %s failed", self.container.get("name"))
            finished = {"type": "error", "message": str(exc) or type(exc).__name__}
        finally:
            connection.close()
            self.finished = finished
            if not self.cancel.cancelled:
                self._wake()

    def _stream(self, container: dict, tail: int) -> int:
        """Push one container's lines until its stream ends; how many there were."""
        count = 0
        for line in runtime.follow_container_logs(
            self.stack, container["id"], tail=tail, cancel=self.cancel
        ):
            self._push(line)
            if not count:
                # The stream needs no database: give the connection back now.
                connection.close()
            count += 1
        return count

    def _push(self, line: str | dict) -> None:
        with self.lock:
            self.pending.append(line)
            count = len(self.pending)
            if count > MAX_PENDING:
                drop = count - MAX_PENDING
                del self.pending[:drop]
                self.skipped += drop
        if count == 1 or count == MAX_BATCH:
            self._wake()

    def _wake(self) -> None:
        try:
            self.loop.call_soon_threadsafe(self.wake.set)
        except RuntimeError:  # the event loop is gone: so is the socket
            self.cancel.cancel()

    # --- The sender (event loop) --------------------------------------------------------------

    def _take(self) -> tuple[list[str], int]:
        with self.lock:
            batch = self.pending[:MAX_BATCH]
            del self.pending[:MAX_BATCH]
            skipped, self.skipped = self.skipped, 0
        return batch, skipped

    async def _send_batch(self, batch: list) -> None:
        """Lines as one message; an event in the batch (a replaced container) in its place."""
        lines: list[str] = []
        for item in batch:
            if isinstance(item, str):
                lines.append(item)
                continue
            if lines:
                await self.send_json({"type": "lines", "lines": lines})
                lines = []
            await self.send_json(
                {"type": item["type"], "name": item["name"], "short_id": item["short_id"]}
            )
        if lines:
            await self.send_json({"type": "lines", "lines": lines})

    async def _send_batches(self) -> None:
        try:
            while True:
                await self.wake.wait()
                self.wake.clear()
                if len(self.pending) < MAX_BATCH and self.finished is None:
                    await asyncio.sleep(FLUSH_SECONDS)  # let a batch gather
                while True:
                    batch, skipped = self._take()
                    if skipped:
                        await self.send_json({"type": "skipped", "count": skipped})
                    if not batch:
                        break
                    await self._send_batch(batch)
                if self.finished is not None and not self.pending:
                    await self.send_json(self.finished)
                    await self.close(code=1000)
                    return
        except asyncio.CancelledError:
            raise
        except Exception:  # the socket went away meanwhile
            self.cancel.cancel()
