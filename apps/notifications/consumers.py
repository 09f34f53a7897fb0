from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.accounts import permissions

from .services import user_group


class NotificationConsumer(AsyncJsonWebsocketConsumer):
    """Live notifications of the signed-in member, in this organisation only."""

    async def connect(self):
        user = self.scope.get("user")
        tenant = self.scope.get("tenant")
        if user is None or not user.is_authenticated or tenant is None:
            await self.close(code=4401)
            return
        if not await database_sync_to_async(permissions.get_membership)(user, tenant):
            await self.close(code=4403)
            return
        self.group = user_group(tenant.schema_name, user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def notification_new(self, event):
        await self.send_json(event["notification"])
