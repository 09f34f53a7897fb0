"""Drivers turn a :class:`~windflow.engine.compose.plan.Plan` into running containers on
a target, and say what they do as a stream of :class:`Event` s.

Every driver follows the :class:`Driver` protocol: ``deploy`` converges the target to a
plan and yields events until every service passed the health gate (or raises
:class:`DeployFailed` with a :class:`~windflow.engine.diagnose.Diagnosis`, or
:class:`Cancelled`); ``remove`` / ``stop`` / ``start`` / ``restart`` act on a project;
``status`` and ``logs`` read it; ``containers`` lists what runs on the engine.

Ownership: ``project_owned`` and ``container`` apply the one rule of
:func:`windflow.engine.labels.owned` (every container of the project carries the owner's
labels), for the deploys and the runtime pages alike.

Errors: a driver raises only :class:`~windflow.engine.errors.EngineError` s (the SDK's and
its transports' errors are translated, keeping their diagnosis): callers never see a type
of the Docker SDK, requests or paramiko.

Pure Python (no Django).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from windflow.engine.diagnose import Diagnosis
from windflow.engine.errors import EngineError

if TYPE_CHECKING:
    from windflow.engine.compose.plan import Plan

__all__ = [
    "PHASES",
    "CancelToken",
    "Cancelled",
    "ContainerStatus",
    "DeployFailed",
    "DeployOptions",
    "Driver",
    "Event",
]

PHASES = (
    "build",
    "pull",
    "create",
    "start",
    "healthy",
    "running",
    "unchanged",
    "stop",
    "remove",
    "failed",
    "network",
    "volume",
)


@dataclass(frozen=True)
class Event:
    """One thing a driver did or saw.

    ``kind``: "phase" (a service changes phase), "progress" (pull bytes) or "log" (free
    text). ``message``: one line for people. ``phase``: one of :data:`PHASES`.
    ``progress``: the service's overall progress, 0..100 (pull 0-40, create 50, start 70,
    healthy / running 100). ``level``: info, warning or error."""

    kind: str
    message: str
    service: str | None = None
    phase: str | None = None
    progress: int | None = None
    level: str = "info"
    data: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "message": self.message,
            "service": self.service,
            "phase": self.phase,
            "progress": self.progress,
            "level": self.level,
            "data": dict(self.data),
        }


@dataclass
class DeployOptions:
    health_timeout: float = 120.0  # the whole health gate, seconds
    grace_period: float = 10.0  # a service without healthcheck must stay running this long
    pull_timeout: float = 600.0
    step_timeout: float = 60.0  # any single API call (create / start / remove...)
    # "127.0.0.1:5000" -> {"username": ..., "password": ...}
    registry_auth: dict[str, dict] = field(default_factory=dict)
    # extra labels on every container / network / volume ({"io.windflow.stack": "<uuid>"})
    labels: dict[str, str] = field(default_factory=dict)
    remove_orphans: bool = True
    # On an engine that is not the organisation's own (the platform's), a network or volume
    # that already exists is used only when it carries `labels` (the stack made it): another
    # tenant's data, or the platform's, is never mounted by a name that happens to match.
    own_resources_only: bool = False
    # A project (issue 13): the worker-local project root the build contexts come from; the
    # server paths of this revision's files folder (bind mounts, configs) and of its
    # secrets folder (tmpfs-backed); built images are tagged
    # f"{image_repository}-{service}:r{revision}".
    project_dir: str | None = None
    files_dir: str | None = None
    secrets_dir: str | None = None
    image_repository: str = "windflow/project"
    revision: int = 0
    build_context_limit: int = 512 * 1024 * 1024  # bytes, per build context
    build_timeout: float = 1800.0  # the longest silence of one build, seconds


class Cancelled(EngineError):
    """The work was cancelled (``CancelToken.cancel()``)."""

    default_hint = "The deployment was cancelled; deploy again when ready."


class DeployFailed(EngineError):
    """A deployment failed; ``.diagnosis`` says why, ``.code`` is the diagnosis code.
    ``.made`` is what the deploy had created on the server (``{"containers": [{"id",
    "name"}], "networks": [name]}``), when the driver knows."""

    def __init__(
        self, diagnosis: Diagnosis, message: str | None = None, *, made: dict | None = None
    ):
        if message is None:
            message = (
                f"{diagnosis.service}: {diagnosis.summary}"
                if diagnosis.service
                else diagnosis.summary
            )
        super().__init__(message, diagnosis.hint)
        self.diagnosis = diagnosis
        self.made = made or {"containers": [], "networks": []}

    @property
    def code(self) -> str:
        return self.diagnosis.code


class CancelToken:
    """Thread-safe cancellation: ``cancel()`` from any thread; workers check
    ``cancelled``, sleep with ``wait(seconds)`` (True as soon as cancelled) or call
    ``raise_if_cancelled()``.

    ``probe``: where a cancel request is on record (the caller's database, say), asked by
    ``poll()`` from any thread. A driver polls before each step that changes the server
    (create, start, remove a container; create a network or volume), so that nothing new
    happens once a cancel was asked, even before the news reached ``cancel()``."""

    def __init__(self, probe: Callable[[], bool] | None = None) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []
        self._probe = probe

    def cancel(self) -> None:
        with self._lock:
            if self._event.is_set():
                return
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback()
            except Exception:  # noqa: S112 - a callback must not stop the others
                continue

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def poll(self) -> bool:
        """Ask the probe whether a cancel was asked, and cancel when it was. True when
        cancelled. A probe that fails counts as "not asked" (it is for the caller to log
        why): the cancel then comes through ``cancel()``."""
        if not self._event.is_set() and self._probe is not None:
            try:
                asked = self._probe()
            except Exception:  # the deploy goes on; cancel() still works
                asked = False
            if asked:
                self.cancel()
        return self._event.is_set()

    def wait(self, seconds: float | None) -> bool:
        """Sleep up to `seconds`; True when cancelled (at once if it already is)."""
        return self._event.wait(seconds)

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled("Cancelled.")

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` (once, from the cancelling thread) when cancelled: at once if
        it already is. Returns a function that unregisters it."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)

                def unregister() -> None:
                    with self._lock:
                        if callback in self._callbacks:
                            self._callbacks.remove(callback)

                return unregister
        callback()
        return lambda: None


@dataclass(frozen=True)
class ContainerStatus:
    id: str
    name: str
    service: str
    number: int
    image: str
    state: str  # running, exited, created, restarting, paused, dead
    health: str | None  # None | starting | healthy | unhealthy
    status: str  # Docker's human text ("Up 3 minutes (healthy)")
    ports: list[dict] = field(default_factory=list)  # [{host_ip, published, target, protocol}]
    config_hash: str = ""
    created: str = ""  # ISO 8601
    started_at: str | None = None
    exit_code: int | None = None
    project: str = ""  # its compose project, "" for a container outside any
    labels: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@runtime_checkable
class Driver(Protocol):
    def deploy(
        self, plan: Plan, options: DeployOptions, cancel: CancelToken
    ) -> Iterator[Event]: ...

    def remove(
        self, project: str, *, volumes: bool = False, cancel: CancelToken | None = None
    ) -> Iterator[Event]: ...

    def stop(self, project: str, service: str | None = None) -> Iterator[Event]: ...

    def start(self, project: str, service: str | None = None) -> Iterator[Event]: ...

    def restart(self, project: str, service: str | None = None) -> Iterator[Event]: ...

    def status(self, project: str) -> list[ContainerStatus]: ...

    def responsive(self, timeout: float = 5.0) -> bool:
        """True when the engine answers within `timeout` seconds."""
        ...

    def discard(self, *, containers: list[str], networks: list[str]) -> list[str]:
        """Remove these containers (ids) and networks (names) if still there; the names of
        what was removed."""
        ...

    def project_labels(self, project: str) -> dict[str, str] | None: ...

    def project_owned(self, project: str, owner: dict[str, str]) -> bool:
        """True unless a container of `project` does not carry the `owner` labels (a project
        with no container is nobody's: True)."""
        ...

    def container(self, ref: str, *, project: str, owner: dict[str, str]) -> ContainerStatus:
        """One container of `project` owned by `owner`, by id, short id or name;
        ContainerNotFound for any other (missing or not theirs alike)."""
        ...

    def containers(self, *, label: str | None = None) -> list[ContainerStatus]:
        """Every container on the engine (or those carrying `label`), running or not."""
        ...

    def logs(
        self,
        container: str,
        *,
        tail: int = 200,
        follow: bool = False,
        timestamps: bool = True,
        cancel: CancelToken | None = None,
    ) -> Iterator[str]: ...
