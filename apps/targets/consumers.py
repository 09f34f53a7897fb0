from channels.generic.websocket import AsyncJsonWebsocketConsumer

from windflow.realtime import authorize

from .tasks import prepare_group


class PrepareOutputConsumer(AsyncJsonWebsocketConsumer):
    """Live output of "prepare server" for members of the target's organisation."""

    async def connect(self):
        if await authorize(self, "target.view") is None:
            return
        target_id = int(self.scope["url_route"]["kwargs"]["target_id"])
        self.group = prepare_group(self.tenant.schema_name, target_id)
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
