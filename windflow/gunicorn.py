"""The web process: gunicorn settings (`gunicorn -c python:windflow.gunicorn`) and its worker.

Gunicorn loads the application once, in the master, then forks the workers: they share the
master's pages of Django, DRF, the Docker SDK and the rest of the code until one of them
writes to a page, where uvicorn's own `--workers` starts each worker from nothing. On a
2-core machine that is about 90 MB less for the web process. `gc.freeze()` before the fork
keeps the collector from touching (and so copying) those shared objects.

Workers: WEB_CONCURRENCY, else one per core this process may use (at most 4). Each worker
is an asyncio event loop (pages, API and websockets); the sync views run on its threads.
"""

import gc
import os
from pathlib import Path

from uvicorn_worker import UvicornWorker

MAX_DEFAULT_WORKERS = 4
# Loaded by every worker sooner or later (runtime panels, server checks): loaded here once,
# shared, rather than once per worker at its first such page.
SHARED_MODULES = ("docker", "paramiko", "windflow.engine.drivers.docker")


class WebWorker(UvicornWorker):
    """uvicorn on gunicorn's socket. The client's address and scheme are read by
    windflow.clientaddress from WINDFLOW_TRUSTED_PROXIES only, never by uvicorn from
    whoever sends X-Forwarded-For; Django's ASGI handler speaks no lifespan protocol."""

    CONFIG_KWARGS = {"loop": "auto", "http": "auto", "proxy_headers": False, "lifespan": "off"}


def web_workers() -> int:
    configured = os.environ.get("WEB_CONCURRENCY", "").strip()
    if configured:
        return max(1, int(configured))
    return max(1, min(len(os.sched_getaffinity(0)), MAX_DEFAULT_WORKERS))


def warm_shared_caches() -> None:
    """Fill, once and in the master, the caches each worker would otherwise fill for itself
    on its first requests: the URL resolver, the translation catalogues and the compiled
    templates."""
    from django.conf import settings
    from django.template import engines
    from django.urls import get_resolver
    from django.utils import translation

    get_resolver()._populate()
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            translation.gettext("Stacks")
    for engine in engines.all():
        for name in _own_template_names(engine, Path(settings.BASE_DIR)):
            engine.get_template(name)


def _own_template_names(engine, base_dir: Path) -> list[str]:
    """Our templates (the project's and our apps'), not those of installed packages."""
    names = []
    for directory in engine.template_dirs:
        root = Path(directory)
        if root.is_relative_to(base_dir) and ".venv" not in root.parts:
            names += [str(path.relative_to(root)) for path in root.rglob("*.html")]
    return sorted(set(names))


def when_ready(server) -> None:
    """In the master, the application loaded and before the first fork."""
    import importlib

    from django.db import connections

    for name in SHARED_MODULES:
        importlib.import_module(name)
    warm_shared_caches()

    # Nothing should have connected while loading; if something did, the workers must not
    # share its socket (nor a pool's threads, which do not survive a fork).
    for connection in connections.all(initialized_only=True):
        connection.close()
        if hasattr(connection, "close_pool"):
            connection.close_pool()
    gc.collect()
    gc.freeze()


bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = web_workers()
worker_class = "windflow.gunicorn.WebWorker"
wsgi_app = "windflow.asgi:application"
preload_app = True
# gunicorn's control socket defaults to one path in $HOME shared by every instance on the
# machine; nothing of ours uses it.
control_socket_disable = True
# One line per request on stdout; WINDFLOW_ACCESS_LOG= (empty) turns it off.
accesslog = os.environ.get("WINDFLOW_ACCESS_LOG", "-") or None
# Pages that wait on a server over SSH may take a while; websockets are not requests.
timeout = 60
graceful_timeout = 20
