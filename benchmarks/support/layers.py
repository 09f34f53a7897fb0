"""Where one request's time goes, layer by layer, for `bench_api_environments.py --profile`:
each middleware's own share (timing probes put between the middleware), DRF's steps (timers
wrapped around its methods) and the Redis round trips. Measurement only: nothing here is
imported by WindFlow.

Times are the CPU time of the thread serving the request (`time.thread_time`), not wall
time: on a shared machine wall time mostly measures who else had the CPU, and a round trip
to PostgreSQL or Redis counts for what it costs this process (sending, parsing), not for the
wait."""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from contextlib import contextmanager

# One request's probe marks: (probe index, "in" or "out", thread CPU time).
_marks: list[tuple[int, str, float]] = []


class _Probe:
    index = 0

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        _marks.append((self.index, "in", time.thread_time()))
        try:
            return self.get_response(request)
        finally:
            _marks.append((self.index, "out", time.thread_time()))


def probe_path(index: int) -> str:
    """The import path of probe number `index` (made on demand, one class per position)."""
    name = f"Probe{index}"
    module = sys.modules[__name__]
    if not hasattr(module, name):
        setattr(module, name, type(name, (_Probe,), {"index": index}))
    return f"{__name__}.{name}"


def with_probes(middleware: list[str]) -> list[str]:
    """A probe before each middleware and one before the view."""
    probed = []
    for index, path in enumerate(middleware):
        probed += [probe_path(index), path]
    return [*probed, probe_path(len(middleware))]


class Layers:
    """Accumulated CPU milliseconds per layer over the requests measured."""

    def __init__(self, middleware: list[str]) -> None:
        self.middleware = middleware
        self.totals: dict[str, float] = defaultdict(float)
        self.requests = 0

    def take_request(self, spent: float) -> None:
        """Fold the marks of the request that just ended (`spent` CPU seconds in all)."""
        ins = {index: t for index, kind, t in _marks if kind == "in"}
        outs = {index: t for index, kind, t in _marks if kind == "out"}
        _marks.clear()
        last = len(self.middleware)
        if len(ins) != last + 1 or len(outs) != last + 1:
            raise RuntimeError("a middleware answered without calling the next one")
        for index, path in enumerate(self.middleware):
            own = (ins[index + 1] - ins[index]) + (outs[index] - outs[index + 1])
            self.totals[f"middleware {path}"] += own * 1000
        self.totals["view (DRF, including process_view hooks)"] += (outs[last] - ins[last]) * 1000
        self.totals["handler and test client (outside the middleware)"] += (
            spent - (outs[0] - ins[0])
        ) * 1000
        self.requests += 1

    def per_request(self) -> dict[str, float]:
        return {name: total / self.requests for name, total in self.totals.items()}


class StepTimers:
    """Inclusive CPU time of named methods (DRF's steps, SQL, Redis), per request."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._patched: list[tuple[object, str, object]] = []

    def wrap(self, owner: type, name: str, label: str) -> None:
        original = owner.__dict__[name]
        totals, calls = self.totals, self.calls

        def timed(*args, **kwargs):
            started = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                totals[label] += (time.thread_time() - started) * 1000
                calls[label] += 1

        self._patched.append((owner, name, original))
        setattr(owner, name, timed)

    def restore(self) -> None:
        for owner, name, original in reversed(self._patched):
            setattr(owner, name, original)
        self._patched.clear()

    @contextmanager
    def installed(self):
        from django.db.backends.utils import CursorWrapper
        from redis.connection import AbstractConnection
        from rest_framework import generics, pagination, renderers, serializers, views

        self.wrap(views.APIView, "perform_authentication", "DRF authentication (token lookup)")
        self.wrap(views.APIView, "check_permissions", "DRF permissions (membership, role)")
        self.wrap(views.APIView, "check_throttles", "DRF throttles")
        self.wrap(views.APIView, "perform_content_negotiation", "DRF content negotiation")
        self.wrap(generics.GenericAPIView, "filter_queryset", "DRF filter backends")
        self.wrap(
            pagination.PageNumberPagination, "paginate_queryset", "DRF pagination (count + page)"
        )
        self.wrap(serializers.ListSerializer, "to_representation", "DRF serializer (25 rows)")
        self.wrap(renderers.JSONRenderer, "render", "DRF JSON renderer")
        self.wrap(views.APIView, "finalize_response", "DRF finalize_response")
        self.wrap(CursorWrapper, "execute", "SQL statements (execute, round trip included)")
        self.wrap(AbstractConnection, "send_packed_command", "Redis commands sent (round trips)")
        self.wrap(AbstractConnection, "read_response", "Redis replies read")
        try:
            yield self
        finally:
            self.restore()
