"""Every route of the application, enumerated from the code (never listed by hand): the URL
patterns of both URL confs (organisation host and public host), the OpenAPI operations of
drf-spectacular's generator, and the websocket routes of the ASGI application.

A route's path parameters are filled from a `fills` mapping (parameter -> value) that the
caller builds from real objects; `fill()` raises `UnfilledParameter` for any parameter it has
no value for, so that a new route with a new kind of parameter fails loudly."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.urls import URLPattern, URLResolver, get_resolver

PARAMETER = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")
REGEX_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>(?P<regex>(?:[^()]|\([^()]*\))*)\)")


class UnfilledParameter(AssertionError):
    pass


@dataclass(frozen=True)
class Route:
    """One URL pattern: its full pattern text (prefixes joined), name, view callback."""

    pattern: str
    name: str | None
    callback: object = field(compare=False, repr=False)

    @property
    def parameters(self) -> list[str]:
        groups = [m["name"] for m in REGEX_GROUP.finditer(self.pattern)]
        rest = REGEX_GROUP.sub("", self.pattern)
        return groups + [m["name"] for m in PARAMETER.finditer(rest)]

    @property
    def is_admin(self) -> bool:
        return self.pattern.startswith("admin/")

    @property
    def is_api(self) -> bool:
        return self.pattern.startswith(("api/", "^api/"))

    @property
    def admin_model(self):
        model_admin = getattr(self.callback, "model_admin", None)
        return getattr(model_admin, "model", None)


def _walk(patterns, prefix: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield Route(prefix + str(pattern.pattern), pattern.name, pattern.callback)


def url_routes(urlconf: str) -> list[Route]:
    """Every URL pattern of `urlconf` (nested includes walked), in resolution order."""
    return list(_walk(get_resolver(urlconf).url_patterns))


def fill(pattern: str, values: dict) -> str:
    """The concrete path (with leading /) for `pattern`, parameters taken from `values`."""

    def value_of(name: str) -> str:
        if name not in values:
            raise UnfilledParameter(
                f"No value for the path parameter <{name}> of {pattern!r}: give the security "
                "fixture a real object of the victim organisation for it."
            )
        return str(values[name])

    path = REGEX_GROUP.sub(lambda m: value_of(m["name"]), pattern)
    path = PARAMETER.sub(lambda m: value_of(m["name"]), path)
    path = path.replace("^", "").replace("$", "")
    path = path.replace("\\.", ".").replace("\\-", "-")
    return "/" + path


def openapi_operations(urlconf: str = "windflow.urls") -> list[tuple[str, str, str]]:
    """(method, path template with {param}, operationId) of every operation in the OpenAPI
    document that /api/schema/ serves."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator(urlconf=urlconf).get_schema(request=None, public=True)
    operations = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                operations.append((method.upper(), path, operation.get("operationId", "")))
    return operations


def fill_openapi(path: str, values: dict) -> str:
    def value_of(match) -> str:
        name = match[1]
        if name not in values:
            raise UnfilledParameter(
                f"No value for the path parameter {{{name}}} of {path!r}: give the security "
                "fixture a real object of the victim organisation for it."
            )
        return str(values[name])

    return re.sub(r"\{(\w+)\}", value_of, path)


def websocket_routes() -> list[Route]:
    """The URLRouter routes of windflow.asgi's websocket stack (middlewares unwrapped)."""
    from channels.routing import URLRouter

    from windflow.asgi import application

    app = application.application_mapping["websocket"]
    seen = 0
    while not isinstance(app, URLRouter):
        app = getattr(app, "application", None) or getattr(app, "inner", None)
        seen += 1
        assert app is not None and seen < 20, "no URLRouter under the websocket middlewares"
    routes = []
    for route in app.routes:
        callback = getattr(route, "callback", None)
        routes.append(Route(str(route.pattern), getattr(route, "name", None), callback))
    return routes
