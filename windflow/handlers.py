"""The HTTP side of the web process: Django's ASGI handler, with the middleware and the view
run as one synchronous call on a thread.

Django's own ASGI handler builds an asynchronous middleware chain. Our middleware and views
are synchronous, so each request crossed between the event loop and a worker thread several
times: into the first synchronous middleware, back to the loop at the innermost one
(async_to_sync), out again for the view, again to render the response. Each crossing costs
a future, a context copy and two thread wake-ups. Here the chain is built synchronous, as
under WSGI, and the request makes one crossing for all of it; the event loop keeps reading
the body, sending the response (streamed ones included) and watching for disconnects. An
`async def` view still works (Django runs it with async_to_sync), though none is on the hot
path. Measured in benchmarks/bench_api_environments.py (see benchmarks/README.md).
"""

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.http import FileResponse


class OneHopASGIHandler(ASGIHandler):
    def __init__(self):
        BaseHandler.__init__(self)
        self.load_middleware(is_async=False)

    async def run_get_response(self, request):
        response = await sync_to_async(self.get_response, thread_sensitive=True)(request)
        response._handler_class = self.__class__
        if isinstance(response, FileResponse):  # as ASGIHandler: the server chunks files
            response.block_size = self.chunk_size
        return response


def get_asgi_application() -> OneHopASGIHandler:
    """django.core.asgi.get_asgi_application, with the one-hop handler."""
    import django

    django.setup(set_prefix=False)
    return OneHopASGIHandler()
