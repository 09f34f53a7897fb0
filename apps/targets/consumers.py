from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.accounts import permissions

from .tasks import prepare_group


class PrepareOutputConsumer(AsyncJsonWebsocketConsumer):
    """Live output of "prepare server" for members of the target's organisation."""

    async def connect(self):
        user, tenant = self.scope.get("user"), self.scope.get("tenant")
        if user is None or not user.is_authenticated or tenant is None:
            await self.close(code=4401)
            return
        membership = await database_sync_to_async(permissions.get_membership)(user, tenant)
        if not permissions.can(membership, "target.view"):
            await self.close(code=4403)
            return
        target_id = int(self.scope["url_route"]["kwargs"]["target_id"])
        self.group = prepare_group(tenant.schema_name, target_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def target_prepare_line(self, event):
        await self.send_json({"type": "line", "line": event["line"]})

    async def target_prepare_done(self, event):
        await self.send_json(
            {"type": "done", "status": event["status"], "exit_code": event["exit_code"]}
        )
