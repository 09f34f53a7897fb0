"""gunicorn settings of the floor project: WindFlow's web worker (uvicorn on gunicorn's
socket, same options), the application loaded once in the master, no access log.

    PYTHONPATH=benchmarks gunicorn -c python:support.floor.gunicorn
"""

import os

from django.db import connections

from windflow.gunicorn import WebWorker, web_workers

__all__ = ["WebWorker"]

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = web_workers()
worker_class = "support.floor.gunicorn.WebWorker"
wsgi_app = "support.floor.asgi:application"
preload_app = True
control_socket_disable = True
accesslog = None


def when_ready(server) -> None:
    """As windflow.gunicorn: the workers must not share a connection opened while loading."""
    for connection in connections.all(initialized_only=True):
        connection.close()
        if hasattr(connection, "close_pool"):
            connection.close_pool()
