"""Rule-based diagnosis of a failed deployment: a Docker error or a container's state
turned into a :class:`Diagnosis` (a stable ``code``, a one-line ``summary`` for people,
more ``detail`` and a ``hint``).

Pure Python (no Django). The rules read literal Docker texts ("port is already
allocated", "manifest unknown"...) and ``container.attrs`` (``State.OOMKilled``,
``State.ExitCode``, ``State.Health.Log``).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import requests
from docker.errors import ImageNotFound
from urllib3.exceptions import ReadTimeoutError

from windflow.engine.errors import EngineError, Unreachable
from windflow.engine.text import Text, gettext_noop

__all__ = [
    "CODES",
    "DETAIL_LIMIT",
    "Diagnosis",
    "Exit",
    "diagnose_container",
    "diagnose_error",
]

CODES = (
    "healthcheck_failing",
    "port_allocated",
    "image_not_found",
    "oom_killed",
    "exited",
    "command_not_found",
    "disk_full",
    "unreachable",
    "timeout",
    "dependency_failed",
    "registry_auth",
    "registry_unreachable",
    "external_missing",
    "build_failed",
    "build_context_too_large",
    "project_files_missing",
    "project_files",
    "docker_error",
)
DETAIL_LIMIT = 4096
SUMMARY_LIMIT = 300

HINTS = {
    "healthcheck_failing": gettext_noop(
        "The service's healthcheck keeps failing: read its last output and the container "
        "logs; check the command the healthcheck runs, the port it probes and the start "
        "time the service needs (healthcheck start_period)."
    ),
    "port_allocated": gettext_noop(
        "Another container or program already listens on this port of the server: stop "
        "it, or publish the service on another port."
    ),
    "image_not_found": gettext_noop(
        "Check the image name and tag, and that the registry holds it (docker pull on the "
        "server shows the same error)."
    ),
    "registry_auth": gettext_noop("Add or correct the registry credentials for this registry."),
    "registry_unreachable": gettext_noop(
        "The server cannot reach the image registry: check its DNS, its outbound network "
        "and proxy, or use a registry (a mirror) that it can reach."
    ),
    "oom_killed": gettext_noop(
        "The container used more memory than allowed: raise its memory limit "
        "(deploy.resources.limits.memory) or reduce what it uses."
    ),
    "exited": gettext_noop("The container stopped by itself: its last log lines usually say why."),
    "command_not_found": gettext_noop(
        "The image has no program of that name: check the service's command: and "
        "entrypoint: (a typo, or a program of another image) and that the program is on "
        "the image's PATH, or use an image that has it."
    ),
    "disk_full": gettext_noop(
        "The server's disk is full: remove unused images and volumes (docker system prune) "
        "or grow the disk."
    ),
    "unreachable": gettext_noop("Check that the server is up and that Docker runs on it."),
    "timeout": gettext_noop(
        "The service did not become healthy in time: check its logs, or allow a longer "
        "health timeout if it is only slow to start."
    ),
    "dependency_failed": gettext_noop("Fix the service it depends on first."),
    "external_missing": gettext_noop(
        "The compose file uses an external network or volume that does not exist on the "
        "server: create it first (docker network create / docker volume create)."
    ),
    "build_failed": gettext_noop(
        "The image of this service could not be built: read the failing step and its last "
        "output lines, fix the Dockerfile or the files it uses, and deploy again."
    ),
    "build_context_too_large": gettext_noop(
        "List what the image does not need (node_modules, .git, build output, data) in a "
        ".dockerignore file at the root of the build context."
    ),
    "project_files_missing": gettext_noop(
        "This revision has no project folder: deploy the stack from a Git repository or "
        "an uploaded folder, so that the files it mounts or builds from are there."
    ),
    "docker_error": "",
}


@dataclass(frozen=True)
class Exit:
    """How a container's last run ended: its exit code, and whether the kernel killed it
    for lack of memory."""

    code: int | None
    oom_killed: bool = False


@dataclass(frozen=True)
class Diagnosis:
    """Why a deployment failed. ``code`` is one of :data:`CODES`; ``summary`` one line
    for people; ``detail`` more text (bounded to ~4 KB); ``hint`` how to fix."""

    code: str
    summary: str
    service: str | None = None
    detail: str = ""
    hint: str = ""

    def as_dict(self) -> dict:
        """The fields; and ``text`` (``template``, ``args``) when the summary is a
        translatable :class:`~windflow.engine.text.Text`."""
        data = asdict(self)
        if isinstance(self.summary, Text):
            data["text"] = {"template": self.summary.template, "args": dict(self.summary.args)}
        return data


def make(
    code: str, summary: str, *, service: str | None = None, detail: str = "", hint: str = ""
) -> Diagnosis:
    """A Diagnosis with the summary on one bounded line, the detail bounded, and the
    default hint of the code when none is given."""
    line = " ".join(str(summary).split())
    if len(line) > SUMMARY_LIMIT:
        line = line[: SUMMARY_LIMIT - 1] + "…"
    if not (isinstance(summary, Text) and line == summary):
        summary = line  # a Text keeps its template only while it reads the same
    return Diagnosis(
        code=code,
        summary=summary,
        service=service,
        detail=_bound(detail),
        hint=hint or HINTS.get(code, ""),
    )


def _bound(text: str, limit: int = DETAIL_LIMIT) -> str:
    text = (text or "").strip("\n")
    if len(text) <= limit:
        return text
    return "…" + text[-(limit - 1) :]  # the end says the most (last lines)


# ------------------------------------------------------------------- Docker errors

_PORT_PATTERNS = (
    re.compile(r"bind for \[?[0-9a-f.:]*\]?:(\d+) failed", re.IGNORECASE),
    re.compile(r"listen (?:tcp|udp|sctp)[46]? \[?[0-9a-f.:]*\]?:(\d+)", re.IGNORECASE),
    re.compile(r":(\d{1,5})\b[^\n]*(?:already allocated|address already in use)", re.IGNORECASE),
)
_IMAGE_NOT_FOUND = (
    "manifest unknown",
    "not found: manifest",
    "manifest for ",  # "manifest for x:1 not found"
    "pull access denied",
    "repository does not exist",
    "no such image",
    "name unknown",
    "failed to resolve reference",
)
# The runtime could not start the command: no such program in the image.
_MISSING_COMMAND = re.compile(
    r'exec: "([^"]*)": (?:executable file not found|stat [^:]*: no such file or directory)'
)
_AUTH = (
    "unauthorized: authentication required",
    "no basic auth credentials",
    "unauthorized:",
    "authentication required",
    "incorrect username or password",
)
_UNREACHABLE = (
    "connection refused",
    "connection aborted",
    "connection reset",
    "cannot connect to the docker daemon",
    "no route to host",
    "name or service not known",
    "temporary failure in name resolution",
    "broken pipe",
    "ssh connection was lost",
)


# The Docker daemon could not reach the registry (its own network, not ours).
_REGISTRY_NETWORK = (
    "dial tcp",
    "no such host",
    "i/o timeout",
    "tls handshake timeout",
    "request canceled while waiting for connection",
)
# ... or reached it, and it did not answer: the daemon gave up waiting (a registry, proxy or
# firewall that holds the connection open without a word).
_REGISTRY_SILENT = (
    "client.timeout exceeded",
    "awaiting headers",
    "context deadline exceeded",
    "tls handshake timeout",
    "i/o timeout",
)
_REGISTRY_URL = re.compile(r"https?://([A-Za-z0-9.-]+(?::\d+)?)/v2/")


def _registry_host_in(text: str) -> str | None:
    match = _REGISTRY_URL.search(text)
    return match.group(1) if match else None


def _text_of(exc: BaseException) -> str:
    explanation = getattr(exc, "explanation", None)
    if explanation:
        if isinstance(explanation, bytes):
            explanation = explanation.decode("utf-8", "replace")
        return str(explanation)
    message = getattr(exc, "message", None)
    if isinstance(message, str) and message:
        return message
    return str(exc) or type(exc).__name__


def port_of(text: str) -> str | None:
    """The host port named by a Docker "port is already allocated" / "address already
    in use" error text."""
    for pattern in _PORT_PATTERNS:
        match = pattern.search(text)
        if match:
            return match.group(1)
    return None


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(
        exc, requests.exceptions.Timeout | socket.timeout | TimeoutError | ReadTimeoutError
    )


def _is_connection(exc: BaseException) -> bool:
    return isinstance(exc, requests.exceptions.ConnectionError | ConnectionError | Unreachable)


def diagnose_error(
    exc: BaseException, *, service: str | None = None, image: str | None = None
) -> Diagnosis:
    """A Diagnosis for an exception of the docker SDK (APIError, ImageNotFound...),
    requests / socket (connection, timeout) or the engine (EngineError)."""
    diagnosis = getattr(exc, "diagnosis", None)
    if isinstance(diagnosis, Diagnosis):
        return diagnosis
    text = _text_of(exc)
    low = text.lower()

    if "no space left on device" in low:
        return make(
            "disk_full", Text(gettext_noop("no space left on device")), service=service, detail=text
        )
    if "port is already allocated" in low or "address already in use" in low:
        port = port_of(text)
        summary = (
            Text(gettext_noop("port %(port)s already allocated"), port=port)
            if port
            else Text(gettext_noop("a published port is in use"))
        )
        return make("port_allocated", summary, service=service, detail=text)

    missing = _MISSING_COMMAND.search(text)
    if missing:
        return make(
            "command_not_found",
            Text(
                gettext_noop("command not found in the image: %(command)s"),
                command=missing.group(1),
            ),
            service=service,
            detail=text,
        )

    status = getattr(getattr(exc, "response", None), "status_code", None)
    about_pull = image is not None or "pull" in low or "manifest" in low
    if about_pull and any(marker in low for marker in (*_REGISTRY_NETWORK, *_REGISTRY_SILENT)):
        host = _registry_host_in(text) or (_registry_of(image) if image else None) or "?"
        template = gettext_noop("registry unreachable: %(host)s")
        if "no such host" in low:
            template = gettext_noop("registry unreachable: %(host)s (DNS lookup failed)")
        if any(marker in low for marker in _REGISTRY_SILENT):
            template = gettext_noop("registry unreachable: %(host)s (no answer in time)")
        return make(
            "registry_unreachable",
            Text(template, host=host),
            service=service,
            detail=text,
        )
    if any(marker in low for marker in _AUTH) and not (
        "pull access denied" in low and "repository does not exist" in low
    ):
        registry = _registry_of(image) if image else None
        if registry and image:
            summary = Text(
                gettext_noop("registry refused the credentials (%(registry)s) for %(image)s"),
                registry=registry,
                image=image,
            )
        elif image:
            summary = Text(
                gettext_noop("registry refused the credentials for %(image)s"), image=image
            )
        else:
            summary = Text(gettext_noop("registry refused the credentials"))
        return make("registry_auth", summary, service=service, detail=text)
    if (
        (isinstance(exc, ImageNotFound) and about_pull)
        or any(marker in low for marker in _IMAGE_NOT_FOUND)
        or (image is not None and status == 404)
    ):
        name = image or _image_in(text) or "?"
        summary = Text(gettext_noop("image not found: %(image)s"), image=name)
        return make("image_not_found", summary, service=service, detail=text)

    if _is_timeout(exc) or "timed out" in low or "did not answer in time" in low:
        return make(
            "timeout",
            Text(
                gettext_noop("%(service)s: the Docker engine did not answer in time"),
                service=service,
            )
            if service
            else Text(gettext_noop("the Docker engine did not answer in time")),
            service=service,
            detail=text,
        )
    if _is_connection(exc) or any(marker in low for marker in _UNREACHABLE):
        return make(
            "unreachable",
            Text(gettext_noop("the Docker engine cannot be reached")),
            service=service,
            detail=text,
        )
    if isinstance(exc, EngineError) and exc.hint:
        return make("docker_error", text, service=service, hint=exc.hint, detail=text)
    return make("docker_error", text, service=service, detail=text)


def _registry_of(image: str) -> str | None:
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


_IMAGE_REF = re.compile(r"(?:image|for|reference|manifest for) \"?([\w.\-/:@]+?)\"?(?:[,:]\s|\s|$)")


def _image_in(text: str) -> str | None:
    match = _IMAGE_REF.search(text)
    return match.group(1) if match else None


# ------------------------------------------------------------------ container state


def _health_outputs(health: dict[str, Any], count: int = 5) -> list[str]:
    out = []
    for entry in (health.get("Log") or [])[-count:]:
        output = (entry.get("Output") or "").strip()
        out.append(
            f"exit {entry.get('ExitCode')}: {output}" if output else f"exit {entry.get('ExitCode')}"
        )
    return out


def last_health_output(attrs: dict[str, Any]) -> str:
    health = (attrs.get("State") or {}).get("Health") or {}
    log = health.get("Log") or []
    if not log:
        return ""
    output = (log[-1].get("Output") or "").strip()
    lines = [line for line in output.splitlines() if line.strip()]
    return lines[-1].strip() if lines else f"exit code {log[-1].get('ExitCode')}"


def diagnose_container(
    attrs: dict[str, Any],
    *,
    service: str,
    log_tail: Sequence[str] = (),
    restarted: bool = False,
    last_exit: Exit | None = None,
) -> Diagnosis | None:
    """Why the container described by ``attrs`` (``container.attrs`` / inspect) fails,
    or None when it runs and is not unhealthy. ``log_tail``: its last log lines;
    ``restarted``: Docker restarted it since it was started (it crashed, even if it runs
    now); ``last_exit``: how its last run ended when the state no longer says it (a
    container that Docker restarted reads exit code 0 while it runs again)."""
    state = attrs.get("State") or {}
    health = state.get("Health") or {}
    lines = [line for line in log_tail if line.strip()]
    logs = "\n".join(lines)
    last_line = lines[-1].strip() if lines else ""
    if last_exit is None:
        last_exit = Exit(state.get("ExitCode"), bool(state.get("OOMKilled")))

    if last_exit.oom_killed:
        detail = "\n".join(["last log lines:", logs]) if logs else ""
        return make("oom_killed", Text(gettext_noop("OOM killed")), service=service, detail=detail)

    status = state.get("Status") or ("running" if state.get("Running") else "")
    restarting = bool(state.get("Restarting")) or status == "restarting"
    stopped = status in ("exited", "dead", "created") or (
        not state.get("Running") and status not in ("running", "restarting", "paused")
    )
    if restarting or stopped or restarted:
        error = (state.get("Error") or "").strip()
        if error:
            diagnosis = diagnose_error(RuntimeError(error), service=service)
            if diagnosis.code != "docker_error":
                return diagnosis
        tail = error or last_line
        summary = _exited_summary(
            last_exit.code,
            "restarting" if restarting else "restarted" if restarted and not stopped else "",
            tail,
        )
        detail = "\n".join(part for part in (error, logs) if part)
        return make("exited", summary, service=service, detail=detail)

    if health.get("Status") == "unhealthy":
        output = last_health_output(attrs)
        summary = Text(gettext_noop("healthcheck failing"))
        if output:
            summary = Text(
                gettext_noop("healthcheck failing: last output: %(output)s"), output=output
            )
        outputs = _health_outputs(health)
        detail = "last health checks:\n" + "\n".join(outputs) if outputs else ""
        if logs:
            detail += "\nlast log lines:\n" + logs
        return make("healthcheck_failing", summary, service=service, detail=detail)
    return None


_EXITED = {
    ("", False): gettext_noop("exited with code %(code)s"),
    ("", True): gettext_noop("exited with code %(code)s: %(tail)s"),
    ("restarting", False): gettext_noop("restarting: exited with code %(code)s"),
    ("restarting", True): gettext_noop("restarting: exited with code %(code)s: %(tail)s"),
    ("restarted", False): gettext_noop("restarted: exited with code %(code)s"),
    ("restarted", True): gettext_noop("restarted: exited with code %(code)s: %(tail)s"),
}


def diagnose_build(
    service: str, error: str, *, step: str = "", output: Sequence[str] = ()
) -> Diagnosis:
    """A failed build: the failing step (``Step 3/5 : RUN make``) and the last lines of its
    output in the detail."""
    where = step.partition(" : ")[2] if " : " in step else ""
    summary = (
        Text(
            gettext_noop("the build failed at %(step)s: %(error)s"),
            step=where,
            error=error.splitlines()[0] if error else "",
        )
        if where
        else Text(gettext_noop("the build failed: %(error)s"), error=error)
    )
    detail = "\n".join([*(output or ([step] if step else [])), error])
    return make("build_failed", summary, service=service, detail=detail)


def _exited_summary(code: Any, how: str, tail: str) -> Text:
    """ "exited with code 3", "restarting: ..." or "restarted: ...", with the last line."""
    template = _EXITED[(how, bool(tail))]
    return Text(template, code=code, tail=tail) if tail else Text(template, code=code)


def diagnose_timeout(
    attrs: dict[str, Any], *, service: str, seconds: float, log_tail: Sequence[str] = ()
) -> Diagnosis:
    """The health gate ran out of time for a container that is neither failed nor
    passing (health "starting", or not yet through its grace period)."""
    state = attrs.get("State") or {}
    health = state.get("Health") or {}
    output = last_health_output(attrs)
    args = {"seconds": f"{seconds:g}", "output": output}
    if health:
        args["status"] = health.get("Status")
        summary = (
            Text(
                gettext_noop(
                    "not healthy after %(seconds)ss (health %(status)s): last health output: "
                    "%(output)s"
                ),
                **args,
            )
            if output
            else Text(gettext_noop("not healthy after %(seconds)ss (health %(status)s)"), **args)
        )
    else:
        args["status"] = state.get("Status")
        summary = (
            Text(
                gettext_noop(
                    "not healthy after %(seconds)ss (state %(status)s): last health output: "
                    "%(output)s"
                ),
                **args,
            )
            if output
            else Text(gettext_noop("not healthy after %(seconds)ss (state %(status)s)"), **args)
        )
    outputs = _health_outputs(health)
    detail = "last health checks:\n" + "\n".join(outputs) if outputs else ""
    lines = [line for line in log_tail if line.strip()]
    if lines:
        detail += "\nlast log lines:\n" + "\n".join(lines)
    return make("timeout", summary, service=service, detail=detail)
