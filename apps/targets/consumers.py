from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django_tenants.utils import tenant_context

from apps.accounts.revocation import authorize
from windflow.realtime import prepare_group

from .services import visible_targets


class PrepareOutputConsumer(AsyncJsonWebsocketConsumer):
    """Live output of "prepare server" for members of the target's organisation."""

    async def connect(self):
        if await authorize(self, "target.view") is None:
            return
        target_id = int(self.scope["url_route"]["kwargs"]["target_id"])
        if not await database_sync_to_async(self._visible)(target_id):
            await self.close(code=4404)  # not a server of this organisation
            return
        self.group = prepare_group(self.tenant.schema_name, target_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    def _visible(self, target_id: int) -> bool:
        with tenant_context(self.tenant):
            return visible_targets(self.membership).filter(pk=target_id).exists()

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def target_prepare_line(self, event):
        await self.send_json({"type": "line", "line": event["line"]})

    async def target_prepare_done(self, event):
        await self.send_json(
            {"type": "done", "status": event["status"], "exit_code": event["exit_code"]}
        )
