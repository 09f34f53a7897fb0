"""A deployed stack at run time: what runs on its server (services, containers, health,
ports), stop / start / restart / remove it, and read its containers' logs.

The Docker work goes through the target's driver (apps.targets.connect, windflow.engine),
which also holds the one ownership rule of a compose project; these functions only add the
rules: who may act, what may be read (only the stack's own containers), when not to act
(during a deployment), and the audit trail.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from datetime import datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from apps.targets.connect import ServerUnavailable, connect
from windflow.engine.drivers import CancelToken, ContainerStatus
from windflow.engine.errors import ContainerNotFound, EngineError
from windflow.engine.labels import owner_labels
from windflow.errors import ServiceError
from windflow.realtime import publish, stack_group

from .choices import ControlStatus
from .models import Stack, StackAction

logger = logging.getLogger(__name__)

ACTIONS = ("stop", "start", "restart", "remove")
STATUS_TIMEOUT = 5.0  # seconds: the runtime panel must not hang on a slow server
CONTROL_TIMEOUT = 60.0  # one Docker API call of stop / start / restart / remove
LOG_TIMEOUT = 60.0  # a silent log stream is re-opened after this (the driver follows on)
MAX_TAIL = 5000
DEFAULT_TAIL = 200
# After a container's log ends: how long its page looks for the container that replaces it
# (same name, a redeploy), while a deployment of the stack is under way; otherwise briefly.
SUCCESSOR_WAIT_DEPLOYING = 120.0
SUCCESSOR_WAIT = 3.0
SUCCESSOR_POLL = 0.5


# --- Docker access ---------------------------------------------------------------------------


@contextlib.contextmanager
def stack_driver(stack: Stack, *, timeout: float = STATUS_TIMEOUT):
    """The driver of the stack's server for the duration of the block. An unreachable
    server, or one that fails during the block, raises ServiceError with the reason."""
    if stack.target_id is None:
        raise ServiceError(_("The server of this stack was deleted."), code="no_target")
    with connect(stack.target, timeout=timeout) as driver:
        try:
            yield driver
        except EngineError as exc:
            raise ServerUnavailable(exc) from exc


def _require_owned_project(driver, stack: Stack) -> None:
    """A compose project of the same name that another stack (of this organisation or of
    another one on a shared engine), or someone by hand, runs on this server is not ours to
    show or touch (the engine's ownership rule)."""
    if not driver.project_owned(stack.project, owner_labels(stack.uid)):
        raise ServiceError(
            _("A compose project named %(name)s runs on %(server)s and is not this stack's.")
            % {"name": stack.project, "server": stack.target.name},
            code="project_taken",
        )


# --- Status ------------------------------------------------------------------------------------


def _port_text(port: dict) -> str:
    target = f"{port['target']}/{port.get('protocol') or 'tcp'}"
    if port.get("published") is None:
        return target
    host = port.get("host_ip") or "0.0.0.0"  # noqa: S104 - a display string
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port['published']}->{target}"


def _moment(text: str | None) -> datetime | None:
    if not text:
        return None
    # Docker gives nanoseconds; Python keeps microseconds.
    main, dot, rest = text.partition(".")
    if dot:
        digits = "".join(ch for ch in rest if ch.isdigit())
        zone = rest[len(digits) :]
        text = f"{main}.{digits[:6]}{zone}"
    with contextlib.suppress(ValueError):
        return parse_datetime(text)
    return None


def _container(status: ContainerStatus) -> dict:
    return {
        "id": status.id,
        "short_id": status.id[:12],
        "name": status.name,
        "number": status.number,
        "state": status.state,
        # Docker keeps the last health check of a stopped container ("unhealthy"): it says
        # nothing about a container that does not run.
        "health": status.health if status.state == "running" else None,
        "status": status.status,
        "ports": [_port_text(port) for port in status.ports],
        "image": status.image,
        "started": _moment(status.started_at),
        "started_at": status.started_at,
        "exit_code": status.exit_code,
    }


def _summary(containers: list[dict]) -> tuple[str, str | None]:
    """(state, health) of a service: the worst of its containers."""
    states = {c["state"] for c in containers}
    if states == {"running"}:
        state = "running"
    elif "restarting" in states:
        state = "restarting"
    elif "running" in states:
        state = "partial"
    else:
        state = sorted(states)[0] if states else "missing"
    healths = {c["health"] for c in containers if c["health"]}
    for health in ("unhealthy", "starting", "healthy"):
        if health in healths:
            return state, health
    return state, None


def runtime_status(stack: Stack) -> list[dict]:
    """What runs on the stack's server now, one entry per service (by name):
    ``{"service", "state", "health", "image", "ports", "containers": [{"id", "short_id",
    "name", "state", "health", "status", "ports": ["127.0.0.1:8080->8080/tcp"], "image",
    "started" (datetime), "exit_code"}]}``. Raises ServiceError when the server does not
    answer (the message says why)."""
    with stack_driver(stack, timeout=STATUS_TIMEOUT) as driver:
        _require_owned_project(driver, stack)
        statuses = driver.status(stack.project)
    services: dict[str, list[dict]] = {}
    from apps.secrets.redaction import redact_for_stack

    for status in statuses:
        container = _container(status)
        container["image"] = redact_for_stack(stack, container["image"])  # ${SECRET} in a tag
        services.setdefault(status.service, []).append(container)
    out = []
    for name in sorted(services):
        containers = services[name]
        state, health = _summary(containers)
        out.append(
            {
                "service": name,
                "state": state,
                "health": health,
                "image": containers[0]["image"],
                "ports": sorted({p for c in containers for p in c["ports"]}),
                "containers": containers,
            }
        )
    return out


# --- Control -----------------------------------------------------------------------------------


def known_services(stack: Stack) -> set[str]:
    """The services of the revision on the server (else the latest one)."""
    from windflow.engine.compose.load import load_compose

    revision = stack.current_revision or stack.latest_revision
    if revision is None:
        return set()
    try:
        document = load_compose(revision.compose)
    except Exception:  # a revision that no longer parses has no services
        return set()
    services = document.get("services") if isinstance(document, dict) else None
    return set(services) if isinstance(services, dict) else set()


def run_control(action_id: int) -> dict:
    """The worker side of `request_control`: act through the driver, record the outcome on
    the StackAction (succeeded, or failed with the reason, its code and a hint), then publish
    ``{"type": "stack.control", "id", "action", "service", "status", "ok", "message",
    "code", "hint"}`` to the stack's group. Returns that event. Failures are recorded, never
    raised (nothing to retry: the person asks again)."""
    requested = StackAction.objects.select_related("stack__target").filter(pk=action_id).first()
    if requested is None:
        return {"type": "stack.control", "id": action_id, "ok": False, "message": ""}
    if requested.finished:
        return _control_event(requested)  # a redelivered message: it ran already
    stack, action, service = requested.stack, requested.action, requested.service or None
    StackAction.objects.filter(pk=requested.pk).update(status=ControlStatus.RUNNING)
    what = f"{stack.name}/{service}" if service else stack.name
    code = hint = ""
    try:
        if action not in ACTIONS:
            raise ServiceError(_("Unknown action %(action)s.") % {"action": action})
        with stack_driver(stack, timeout=CONTROL_TIMEOUT) as driver:
            _require_owned_project(driver, stack)
            if action == "remove":
                events = list(driver.remove(stack.project, volumes=False))
            else:
                events = list(getattr(driver, action)(stack.project, service))
        if action == "remove":
            Stack.objects.filter(pk=stack.pk).update(current_revision=None)
            message = _("%(stack)s was removed from %(server)s (volumes kept).") % {
                "stack": stack.name,
                "server": stack.target.name,
            }
        elif not events:
            message = _("%(what)s: no container to %(action)s.") % {
                "what": what,
                "action": action,
            }
        else:
            message = _("%(what)s: %(action)s done (%(n)d container(s)).") % {
                "what": what,
                "action": action,
                "n": len([e for e in events if e.kind == "phase"]),
            }
        status = ControlStatus.SUCCEEDED
    except Exception as exc:  # recorded and published, never re-raised
        status = ControlStatus.FAILED
        if isinstance(exc, ServerUnavailable):
            reason, code, hint = exc.summary, exc.code, exc.hint
        elif isinstance(exc, ServiceError):
            reason, code = exc.message, exc.code
        else:
            reason, code = str(exc) or type(exc).__name__, "internal_error"
        logger.warning("stack %s: %s failed: %s", what, action, reason, exc_info=True)
        message = _("%(what)s: %(action)s failed: %(reason)s") % {
            "what": what,
            "action": action,
            "reason": reason,
        }
    from apps.secrets.redaction import redact_for_stack

    requested.status = status
    requested.message = redact_for_stack(stack, message)
    requested.code = code
    requested.hint = redact_for_stack(stack, hint)
    requested.finished_at = timezone.now()
    requested.save(update_fields=["status", "message", "code", "hint", "finished_at"])
    event = _control_event(requested)
    publish(stack_group(stack.pk), event)
    return event


def _control_event(requested: StackAction) -> dict:
    return {
        "type": "stack.control",
        "id": requested.pk,
        "action": requested.action,
        "service": requested.service or None,
        "status": requested.status,
        "ok": requested.status == ControlStatus.SUCCEEDED,
        "message": requested.message,
        "code": requested.code,
        "hint": requested.hint,
    }


# --- Logs ------------------------------------------------------------------------------------


def _owned_container(driver, stack: Stack, container_id: str) -> dict:
    """`container_id` (id, short id or name) if it is one of the stack's containers, as
    ``{"id", "name", "service"}``; else ServiceError (the same for "missing" and "another
    stack's", so that nothing leaks)."""
    try:
        found = driver.container(
            container_id or "", project=stack.project, owner=owner_labels(stack.uid)
        )
    except ContainerNotFound:
        raise ServiceError(_("This is not a container of this stack."), code="not_found") from None
    return {"id": found.id, "name": found.name, "service": found.service}


def _deploying(stack: Stack) -> bool:
    return stack.deployments.filter(status__in=("queued", "running")).exists()


def _look_up(stack: Stack, name: str):
    """The ContainerStatus of the stack's container `name`, or None (missing, or the server
    did not answer this time)."""
    try:
        with stack_driver(stack, timeout=STATUS_TIMEOUT) as driver:
            try:
                return driver.container(name, project=stack.project, owner=owner_labels(stack.uid))
            except ContainerNotFound:
                return None
    except ServiceError:
        return None


def next_container(stack: Stack, container: dict, *, cancel: CancelToken) -> dict | None:
    """Once the log of `container` (``{"id", "name", ...}``) ended: the container to follow
    next, as ``{"id", "short_id", "name", "service", "replaced"}``: the one that took its
    name (a redeploy recreates containers; "replaced" True), or the same one running again
    (a restart). None when it stays stopped, or nothing took its place: looked for as long
    as a deployment of the stack is under way, else SUCCESSOR_WAIT seconds."""
    started = time.monotonic()
    while not cancel.cancelled:
        found = _look_up(stack, container["name"])
        if found is not None and found.state == "running":
            return {
                "id": found.id,
                "short_id": found.id[:12],
                "name": found.name,
                "service": found.service,
                "replaced": found.id != container["id"],
            }
        elapsed = time.monotonic() - started
        if elapsed >= SUCCESSOR_WAIT_DEPLOYING:
            return None
        if elapsed >= SUCCESSOR_WAIT and not _deploying(stack):
            return None
        time.sleep(SUCCESSOR_POLL)
    return None


def stack_container(stack: Stack, container_id: str) -> dict:
    """``{"id", "name", "service"}`` of one of the stack's containers; ServiceError (code
    "not_found") for any other container."""
    with stack_driver(stack, timeout=STATUS_TIMEOUT) as driver:
        return _owned_container(driver, stack, container_id)


def log_redactor(stack: Stack):
    """What masks the stack's secret values (and their encodings) in its containers' output:
    every path that shows container logs (page, tail, API, websocket) comes through
    `container_log_tail` or `follow_container_logs`, which apply it. When the values cannot
    be read, the logs are not shown (ServiceError) rather than shown in clear."""
    from apps.secrets.backends import SecretBackendError
    from apps.secrets.redaction import stack_redactor

    try:
        return stack_redactor(stack)
    except SecretBackendError as exc:
        raise ServiceError(
            _("The logs are hidden: the secrets to mask in them could not be read (%(why)s).")
            % {"why": exc.message},
            code="secrets_unavailable",
        ) from exc


def clamp_tail(tail, default: int | None = DEFAULT_TAIL) -> int | None:
    """How many of a container's last log lines a request asks for (`?tail=`, as given):
    0 to MAX_TAIL; `default` when it is not a number. Pages, the API and the websocket all
    read `tail` through here."""
    try:
        return max(0, min(MAX_TAIL, int(tail)))
    except (TypeError, ValueError):
        return default


def container_log_tail(stack: Stack, container_id: str, *, tail: int = 200) -> list[str]:
    """The last `tail` lines of one of the stack's containers, each prefixed with Docker's
    RFC 3339 timestamp. Secret values are masked."""
    redactor = log_redactor(stack)
    with stack_driver(stack, timeout=STATUS_TIMEOUT) as driver:
        found = _owned_container(driver, stack, container_id)
        lines = driver.logs(found["id"], tail=clamp_tail(tail), timestamps=True)
        return [redactor.redact(line) for line in lines]


def follow_container_logs(
    stack: Stack, container_id: str, *, tail: int = 200, cancel: CancelToken
) -> Iterator[str]:
    """The last `tail` lines of one of the stack's containers, then its new lines as they
    come, until `cancel` (from any thread: it closes the Docker stream) or the container
    stops. Each line starts with Docker's RFC 3339 timestamp. ServiceError (at the first
    `next()`) for a container that is not the stack's or an unreachable server. Secret
    values are masked (the redactor is built once, when the stream opens)."""
    redactor = log_redactor(stack)
    with stack_driver(stack, timeout=LOG_TIMEOUT) as driver:
        found = _owned_container(driver, stack, container_id)
        for line in driver.logs(
            found["id"], tail=clamp_tail(tail), follow=True, timestamps=True, cancel=cancel
        ):
            yield redactor.redact(line)
