from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.accounts.revocation import authorize
from windflow.realtime import notifications_group


class NotificationConsumer(AsyncJsonWebsocketConsumer):
    """Live notifications of the signed-in member, in this organisation only."""

    async def connect(self):
        if await authorize(self) is None:
            return
        self.group = notifications_group(self.tenant.schema_name, self.scope["user"].pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def notification_new(self, event):
        await self.send_json(event["notification"])
