from django.urls import path

from .consumers import ContainerLogConsumer

websocket_urlpatterns = [
    path(
        "ws/stacks/<str:name>/containers/<str:container>/logs/",
        ContainerLogConsumer.as_asgi(),
    ),
]
