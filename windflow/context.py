"""Who is acting, from where: set once per request (or job) and read by the audit trail."""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class ActorContext:
    request: object | None = None  # the HttpRequest: DRF sets .user and .auth on it later
    system_label: str = "system"


_current: contextvars.ContextVar[ActorContext | None] = contextvars.ContextVar(
    "windflow_actor", default=None
)


def current() -> ActorContext | None:
    return _current.get()


@contextmanager
def acting(context: ActorContext):
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


class ActorContextMiddleware:
    """Makes the request the acting context for everything it triggers."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with acting(ActorContext(request=request)):
            return self.get_response(request)
