import os

from windflow.handlers import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "windflow.settings.dev")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from apps.deployments.routing import websocket_urlpatterns as deployment_sockets  # noqa: E402
from apps.notifications.routing import websocket_urlpatterns as notification_sockets  # noqa: E402
from apps.stacks.routing import websocket_urlpatterns as stack_sockets  # noqa: E402
from apps.targets.routing import websocket_urlpatterns as target_sockets  # noqa: E402
from windflow.realtime import (  # noqa: E402
    DependencyGuardMiddleware,
    SameOriginMiddleware,
    TenantWebsocketMiddleware,
)

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # The Origin must be the socket's own host; then the host names the organisation.
        # PostgreSQL or Redis away: closed with 1013 "try again later", never crashed.
        "websocket": DependencyGuardMiddleware(
            SameOriginMiddleware(
                TenantWebsocketMiddleware(
                    AuthMiddlewareStack(
                        URLRouter(
                            notification_sockets
                            + target_sockets
                            + stack_sockets
                            + deployment_sockets
                        )
                    )
                )
            )
        ),
    }
)
