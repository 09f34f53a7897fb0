"""The live log of a deployment: backfilled from PostgreSQL, then followed live."""

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django_tenants.utils import tenant_context

from apps.accounts.revocation import authorize
from windflow.errors import NotFound
from windflow.realtime import deployment_group

from . import journal, services

BACKFILL_BATCH = 500


def _after(scope) -> int:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("after") or ["0"]
    try:
        return min(max(0, int(values[0])), 2**31 - 1)
    except ValueError:
        return 0


class DeploymentConsumer(AsyncJsonWebsocketConsumer):
    """Members who may see deployments follow one of their organisation's. The group is
    joined before the backfill so nothing published meanwhile is lost; lines the backfill
    already sent are not sent twice (and the client dedupes by `seq` anyway)."""

    async def connect(self):
        if await authorize(self, "deployment.view") is None:
            return
        self.deployment_id = int(self.scope["url_route"]["kwargs"]["deployment_id"])
        if not await self._visible():
            await self.close(code=4404)
            return
        self.group = deployment_group(self.deployment_id, self.tenant.schema_name)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        self.sent_seq = _after(self.scope)
        while True:
            lines = await self._lines(self.sent_seq)
            if lines:
                await self.send_json({"type": "log", "lines": lines})
                self.sent_seq = lines[-1]["seq"]
            if len(lines) < BACKFILL_BATCH:
                break
        rows, status = await self._state()
        await self.send_json({"type": "services", "services": rows})
        await self.send_json({"type": "status", **status})

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        """The socket only speaks; whatever a client sends is ignored."""

    # --- Database work, with the organisation's schema active -------------------------------

    def _deployment(self):
        try:
            return services.get_deployment_for(self.membership, self.deployment_id)
        except NotFound:
            return None

    @database_sync_to_async
    def _visible(self) -> bool:
        with tenant_context(self.tenant):
            return self._deployment() is not None

    @database_sync_to_async
    def _lines(self, after: int) -> list[dict]:
        with tenant_context(self.tenant):
            deployment = self._deployment()
            if deployment is None:
                return []
            return services.log_window(deployment, after=after, limit=BACKFILL_BATCH)["lines"]

    @database_sync_to_async
    def _state(self) -> tuple[list[dict], dict]:
        with tenant_context(self.tenant):
            deployment = self._deployment()
            if deployment is None:
                return [], {}
            rows = [row.as_dict() for row in deployment.services.all()]
            return rows, journal.status_event(deployment)

    # --- Group events ------------------------------------------------------------------------

    async def deploy_log(self, event):
        line = event["line"]
        if line["seq"] <= self.sent_seq:
            return
        if line["seq"] > self.sent_seq + 1:
            # A publish was lost (Redis away a moment): the database has the lines between.
            missed = await self._lines(self.sent_seq)
            lines = [row for row in missed if row["seq"] < line["seq"]] + [line]
        else:
            lines = [line]
        self.sent_seq = line["seq"]
        await self.send_json({"type": "log", "lines": lines})

    async def deploy_service(self, event):
        await self.send_json({"type": "service", "service": event["service"]})

    async def deploy_status(self, event):
        payload = {key: value for key, value in event.items() if key != "type"}
        await self.send_json({"type": "status", **payload})
