"""Pages of a stack at run time: the services panel (an HTMX partial that refreshes
itself), stop / start / restart / remove, and a container's live log. The work is in
runtime.py; these views only look the stack up, call it and render.

`runtime_urlpatterns` is included in apps/stacks/urls.py (app_name "stacks")."""

from django.contrib import messages
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache

from windflow.errors import ServiceError
from windflow.views import redirect_after_post

from . import control, runtime
from .views import StackView, may_deploy

CONTROL_LABELS = {
    "stop": gettext_lazy("Stop"),
    "start": gettext_lazy("Start"),
    "restart": gettext_lazy("Restart"),
    "remove": gettext_lazy("Removal"),
}


def _tail(request) -> int:
    return runtime.clamp_tail(request.GET.get("tail", runtime.DEFAULT_TAIL))


class StackRuntimeView(StackView):
    """The services panel: state, health, ports, image of each service and its containers;
    control buttons for those who may deploy. Docker errors show in the panel (200)."""

    action = "stack.view"

    def get(self, request, name):
        stack = self.get_object()
        try:
            services, error = runtime.runtime_status(stack), ""
        except ServiceError as exc:
            services, error = [], exc.message
        context = {
            "object": stack,
            "services": services,
            "error": error,
            "can_control": may_deploy(self.membership, stack),
            "actions": control.recent_actions(stack),
        }
        return render(request, "stacks/htmx/runtime.html", context)


class StackControlView(StackView):
    """POST action=stop|start|restart|remove [service=...]: queued for the worker; back to
    the stack's page with a message."""

    action = "stack.view"
    method_actions = {"post": "stack.deploy"}
    http_method_names = ["post"]

    def post(self, request, name):
        stack = self.get_object()
        action = request.POST.get("action", "")
        service = request.POST.get("service") or None
        try:
            control.request_control(self.membership, stack, action, service)
        except ServiceError as exc:
            messages.error(request, exc.message)
        else:
            what = f"{stack.name}/{service}" if service else stack.name
            messages.success(
                request,
                _("%(action)s of %(what)s requested: the panel updates when it is done.")
                % {"action": CONTROL_LABELS[action], "what": what},
            )
        return redirect_after_post(request, stack.get_absolute_url())


class ContainerLogsView(StackView):
    """One container's log: its tail rendered now, then followed live over the websocket
    (static/js/container-logs.js), or by polling `container_log_tail` when it fails."""

    action = "stack.view"

    def get(self, request, name, container):
        stack = self.get_object()
        tail = _tail(request)
        lines, error, found = [], "", None
        try:
            found = runtime.stack_container(stack, container)
            lines = runtime.container_log_tail(stack, found["id"], tail=tail)
        except ServiceError as exc:
            if exc.code == "not_found":
                raise Http404(exc.message) from exc
            error = exc.message
        context = {
            "object": stack,
            "container": found or {"id": container, "name": container, "service": ""},
            "lines": [_split(line) for line in lines],
            "error": error,
            "tail": tail,
            "crumb": _("Logs"),
            "ws_url": f"/ws/stacks/{stack.name}/containers/{container}/logs/?tail={tail}",
            "tail_url": reverse("stacks:container_log_tail", args=[stack.name, container])
            + f"?tail={tail}",
        }
        return render(request, "stacks/container_logs.html", context)


def _split(line: str) -> dict:
    stamp, _space, text = line.partition(" ")
    if stamp[:1] != "2" or "T" not in stamp:
        return {"time": "", "text": line}
    return {"time": stamp, "text": text}


class ContainerLogTailView(StackView):
    """JSON ``{"lines": ["<time> <text>", ...], "error": ""}``: the polling fallback."""

    action = "stack.view"

    def get(self, request, name, container):
        stack = self.get_object()
        try:
            lines = runtime.container_log_tail(stack, container, tail=_tail(request))
        except ServiceError as exc:
            status = 404 if exc.code == "not_found" else 200
            return JsonResponse({"lines": [], "error": exc.message}, status=status)
        return JsonResponse({"lines": lines, "error": ""})


runtime_urlpatterns = [
    path("<str:name>/runtime/", StackRuntimeView.as_view(), name="stack_runtime"),
    path("<str:name>/runtime/control/", StackControlView.as_view(), name="stack_control"),
    path(
        "<str:name>/runtime/containers/<str:container>/logs/",
        never_cache(ContainerLogsView.as_view()),
        name="container_logs",
    ),
    path(
        "<str:name>/runtime/containers/<str:container>/logs/tail/",
        never_cache(ContainerLogTailView.as_view()),
        name="container_log_tail",
    ),
]
