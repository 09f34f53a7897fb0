from django.urls import path

from .consumers import PrepareOutputConsumer

websocket_urlpatterns = [
    path("ws/targets/<int:target_id>/prepare/", PrepareOutputConsumer.as_asgi()),
]
