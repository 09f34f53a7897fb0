"""The Docker Engine driver: converge one engine (local socket, SSH, TLS) to a plan, with
``docker compose``-compatible labels, so that ``docker compose ls`` / ``ps`` / ``down``
on the engine see the project.

    driver = DockerDriver(client)        # a docker.DockerClient, timeout = step timeout
    for event in driver.deploy(plan, DeployOptions(), CancelToken()):
        print(event.message)              # raises DeployFailed (.diagnosis) or Cancelled

Deploy: networks and volumes, then images pulled in parallel (progress events), then
every service as soon as its dependencies meet their condition (one thread per service,
bounded), unchanged containers kept (same ``com.docker.compose.config-hash``), then the
health gate, then orphans removed. Events come from worker threads through a queue; the
generator is consumed by one thread.

Every public method raises engine errors only (:mod:`windflow.engine.errors`): the errors of
the Docker SDK, requests, urllib3 and paramiko are translated where they leave the driver.

Pure Python (docker SDK; no Django).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import inspect
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import docker
import docker.types
import paramiko
import requests
import urllib3
from docker.errors import APIError, DockerException, NotFound
from docker.utils import parse_repository_tag

from windflow.engine.compose.plan import (
    Plan,
    ServiceSpec,
    compose_labels,
    config_hash,
    container_name,
    parse_duration,
)
from windflow.engine.diagnose import (
    Diagnosis,
    Exit,
    diagnose_build,
    diagnose_container,
    diagnose_error,
    diagnose_timeout,
    make,
)
from windflow.engine.dockerhost import docker_error
from windflow.engine.drivers import (
    Cancelled,
    CancelToken,
    ContainerStatus,
    DeployFailed,
    DeployOptions,
    Event,
)
from windflow.engine.drivers.build import (
    CONTEXT_DIGEST_LABEL,
    BuildOutput,
    ClassicBuilder,
    image_tag,
)
from windflow.engine.drivers.context import BuildContext, ContextTooLarge
from windflow.engine.errors import ContainerNotFound, EngineError
from windflow.engine.labels import (
    HASH_LABEL,
    IMAGE_LABEL,
    NUMBER_LABEL,
    PROJECT_LABEL,
    SERVICE_LABEL,
    carries,
    owned,
)

__all__ = ["DockerDriver"]


HEALTH_POLL = 0.15  # seconds between two inspects of a container during the health gate
PULL_EVENT_INTERVAL = 0.2  # at most 5 progress events per second and image
RECREATE_STOP_TIMEOUT = 2  # seconds of SIGTERM before SIGKILL when replacing a container
LOG_TAIL = 20  # log lines in a diagnosis
MAX_SERVICE_THREADS = 16
MAX_PULL_THREADS = 4
SSH_THREADS = 6
_DONE = object()


class _Aborted(Exception):
    """Another service failed: stop this one's work (not a failure of its own)."""


# What a Docker call can raise besides engine errors: the SDK's own, and those of its
# transports (HTTP over a unix socket, TLS or an SSH channel).
TRANSPORT_ERRORS = (
    DockerException,
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    paramiko.SSHException,
    EOFError,
    OSError,
)


def engine_error(exc: BaseException, where: str) -> EngineError:
    """The engine error for an error of the Docker SDK or a transport, with the diagnosis of
    the original (what a deployment records)."""
    if isinstance(exc, EngineError):
        return exc
    error = docker_error(exc, where)
    error.diagnosis = diagnose_error(exc)
    return error


def _engine_errors(method):
    """Translate what `method` (a function or a generator function of the driver) raises
    from the SDK or a transport into engine errors."""
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def generator(self, *args, **kwargs):
            try:
                yield from method(self, *args, **kwargs)
            except TRANSPORT_ERRORS as exc:
                raise engine_error(exc, self.where) from exc

        return generator

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except TRANSPORT_ERRORS as exc:
            raise engine_error(exc, self.where) from exc

    return call


def _project_filter(project: str, service: str | None = None) -> dict[str, list[str]]:
    labels = [f"{PROJECT_LABEL}={project}"]
    if service:
        labels.append(f"{SERVICE_LABEL}={service}")
    return {"label": labels}


def _parse_time(text: str | None) -> float | None:
    """Docker's RFC 3339 (nanoseconds) -> epoch seconds; None for the zero time."""
    if not text or text.startswith("0001-"):
        return None
    main, _, fraction = text.rstrip("Z").partition(".")
    offset = 0.0
    for sign in ("+", "-"):
        if sign in fraction:
            fraction, _, zone = fraction.partition(sign)
            hours, _, minutes = zone.partition(":")
            offset = (int(hours) * 3600 + int(minutes or 0) * 60) * (1 if sign == "+" else -1)
    try:
        moment = datetime.strptime(main[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    return moment.timestamp() + float(f"0.{fraction or '0'}") - offset


def _registry_of(image: str) -> str:
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def _labels(state_labels: dict | None) -> dict[str, str]:
    return dict(state_labels or {})


def _decode_lines(data: bytes | str) -> list[str]:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return text.splitlines()


# ------------------------------------------------------------------------ deploy state


@dataclass
class _ServiceState:
    started: bool = False  # every container started
    passed: bool = False  # the health gate passed
    completed: bool = False  # exited 0 (service_completed_successfully)
    failed: Diagnosis | None = None
    done: bool = False
    created: list[str] = field(default_factory=list)  # container ids created by this deploy


@dataclass
class _Box:
    """A container of the deploy (created now, or kept / restarted)."""

    id: str
    name: str
    number: int
    created: bool
    restart_count: int | None = None


class _Deploy:
    def __init__(
        self, driver: DockerDriver, plan: Plan, options: DeployOptions, cancel: CancelToken
    ):
        self.driver = driver
        self.api = driver.api
        self.plan = plan
        self.project = plan.project
        self.options = options
        self.user_cancel = cancel
        self.stop = CancelToken()  # set on cancel, on a failure, or when the consumer leaves
        self.abandoned = False
        self.events: queue.Queue = queue.Queue()
        self.cond = threading.Condition()
        self.states = {spec.name: _ServiceState() for spec in plan.services}
        self.failure: Diagnosis | None = None
        self.error: BaseException | None = None
        self.images: dict[str, concurrent.futures.Future] = {}
        self.built_tags: set[str] = set()  # images this deploy built (never pulled)
        self.existing: list[dict] = []
        # What this deploy made on the server: container id -> name, network names.
        self.made_containers: dict[str, str] = {}
        self.made_networks: list[str] = []
        self.started_at = time.monotonic()
        self.completion_wanted = {
            dependency
            for spec in plan.services
            for dependency, condition in spec.depends_on.items()
            if condition == "service_completed_successfully"
        }

    # --- plumbing -----------------------------------------------------------------------

    def emit(self, kind: str, message: str, **values: Any) -> None:
        self.events.put(Event(kind, message, **values))

    def phase(
        self, service: str | None, phase: str, message: str, progress: int | None = None, **kw
    ) -> None:
        self.emit("phase", message, service=service, phase=phase, progress=progress, **kw)

    def notify(self) -> None:
        with self.cond:
            self.cond.notify_all()

    def check(self, *, fresh: bool = False) -> None:
        """Stop here when the deploy was cancelled or aborted. `fresh`: ask the cancel
        token's probe first, before a step that changes the server (nothing new is created,
        started or removed once a cancel was asked)."""
        if fresh:
            self.user_cancel.poll()
        if self.user_cancel.cancelled:
            raise Cancelled("The deployment was cancelled.")
        if self.stop.cancelled:
            raise _Aborted()

    def fail(self, diagnosis: Diagnosis) -> None:
        """Record a failure (the first one is the deploy's), tell, and stop the others."""
        with self.cond:
            first = self.failure is None
            if first:
                self.failure = diagnosis
            if diagnosis.service in self.states:
                self.states[diagnosis.service].failed = diagnosis
            self.cond.notify_all()
        who = f"{diagnosis.service}: " if diagnosis.service else ""
        self.phase(
            diagnosis.service,
            "failed",
            f"{who}{diagnosis.summary}",
            level="error",
            data=diagnosis.as_dict(),
        )
        self.stop.cancel()

    def set_state(self, service: str, **values: Any) -> None:
        with self.cond:
            state = self.states[service]
            for key, value in values.items():
                setattr(state, key, value)
            self.cond.notify_all()

    def run(self) -> Iterator[Event]:
        unlink = self.user_cancel.on_cancel(self.stop.cancel)
        self.stop.on_cancel(self.notify)
        worker = threading.Thread(target=self.main, name=f"deploy-{self.project}", daemon=True)
        worker.start()
        try:
            while True:
                item = self.events.get()
                if item is _DONE:
                    break
                yield item
        finally:
            if worker.is_alive():  # the consumer left early: clean up as for a cancel
                self.abandoned = True
                self.stop.cancel()
                worker.join(timeout=self.options.step_timeout + 5)
            unlink()
        if self.error is not None:
            raise self.error

    def main(self) -> None:
        try:
            self.deploy()
        except BaseException as exc:
            self.error = exc
        finally:
            self.events.put(_DONE)

    # --- the deploy ---------------------------------------------------------------------

    def deploy(self) -> None:
        self.check(fresh=True)
        # Builds (and the checks of the project's files) come before anything on the server
        # is touched: a failed build leaves what runs as it was.
        try:
            self.plan = self.prepare(self.plan)
        except (Cancelled, _Aborted):
            raise Cancelled("The deployment was cancelled.") from None
        except DeployFailed as exc:
            self.fail(exc.diagnosis)
            raise DeployFailed(exc.diagnosis) from exc
        plan = self.plan
        self.existing = self.api.containers(all=True, filters=_project_filter(self.project))
        pulls = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(1, min(len(plan.images), self.driver.pull_threads)),
            thread_name_prefix=f"pull-{self.project}",
        )
        services = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(1, min(len(plan.services), self.driver.max_threads)),
            thread_name_prefix=f"svc-{self.project}",
        )
        try:
            for image in plan.images:
                future = pulls.submit(self.guard_pull, image)
                future.add_done_callback(lambda _future: self.notify())
                self.images[image] = future
            try:
                self.networks()
                self.volumes()
            except (Cancelled, _Aborted):
                pass
            except DeployFailed as exc:
                self.fail(exc.diagnosis)
            except Exception as exc:
                self.fail(diagnose_error(exc))
            futures = []
            if not self.stop.cancelled:
                for wave in plan.order:
                    for name in wave:
                        futures.append(services.submit(self.service, plan.service(name)))
            concurrent.futures.wait(futures)
        finally:
            services.shutdown(wait=True)
            pulls.shutdown(wait=False, cancel_futures=True)

        if self.user_cancel.cancelled or self.abandoned:
            self.cleanup_cancelled()
            raise Cancelled("The deployment was cancelled.")
        if self.failure is not None:
            raise DeployFailed(self.failure, made=self.made())
        if self.options.remove_orphans:
            self.remove_orphans()
        seconds = time.monotonic() - self.started_at
        self.emit("log", f"{self.project}: every service passed the health gate in {seconds:.1f}s")

    def made(self) -> dict[str, list[str]]:
        """What this deploy created on the server: ``{"containers": [{"id", "name"}],
        "networks": [name]}`` (for a caller that must say what a lost server kept)."""
        with self.cond:
            containers = [{"id": cid, "name": name} for cid, name in self.made_containers.items()]
        return {"containers": containers, "networks": list(self.made_networks)}

    def cleanup_cancelled(self) -> None:
        doomed = [
            (name, cid)
            for name, state in self.states.items()
            if not state.passed
            for cid in state.created
        ]
        self.driver.parallel(
            [lambda name=name, cid=cid: self.remove_container(name, cid, 0) for name, cid in doomed]
        )

    def remove_container(self, service: str | None, cid: str, stop_timeout: float) -> None:
        if stop_timeout > 0:
            with contextlib.suppress(NotFound):
                self.api.stop(cid, timeout=int(stop_timeout))
        with contextlib.suppress(NotFound):
            self.api.remove_container(cid, force=True, v=False)
        with self.cond:
            self.made_containers.pop(cid, None)
        short = cid[:12]
        self.phase(service, "remove", f"{service or short}: removed container {short}")

    def remove_orphans(self) -> None:
        wanted = {spec.name for spec in self.plan.services}
        orphans = [
            c for c in self.existing if (c.get("Labels") or {}).get(SERVICE_LABEL) not in wanted
        ]
        self.driver.parallel(
            [
                lambda c=c: self.remove_container(
                    (c.get("Labels") or {}).get(SERVICE_LABEL), c["Id"], RECREATE_STOP_TIMEOUT
                )
                for c in orphans
            ]
        )

    # --- networks and volumes -----------------------------------------------------------

    def networks(self) -> None:
        for network in self.plan.networks:
            self.check()
            try:
                self.claim("network", network, self.api.inspect_network(network.name))
                continue
            except NotFound:
                if network.external:
                    raise DeployFailed(
                        make(
                            "external_missing",
                            f'external network "{network.name}" not found',
                            hint=f"Create it on the server first: docker network create "
                            f"{network.name}",
                        )
                    ) from None
            self.check(fresh=True)
            ipam = None
            if network.ipam:
                pools = [
                    docker.types.IPAMPool(
                        subnet=pool.get("subnet"),
                        iprange=pool.get("ip_range"),
                        gateway=pool.get("gateway"),
                        aux_addresses=pool.get("aux_addresses"),
                    )
                    for pool in network.ipam.get("config") or []
                ]
                ipam = docker.types.IPAMConfig(
                    driver=network.ipam.get("driver") or "default",
                    pool_configs=pools,
                    options=network.ipam.get("options"),
                )
            try:
                self.api.create_network(
                    network.name,
                    driver=network.driver,
                    options=network.driver_opts or None,
                    ipam=ipam,
                    internal=network.internal,
                    labels={**network.labels, **self.options.labels},
                    enable_ipv6=network.enable_ipv6,
                    attachable=network.attachable or None,
                )
            except APIError as exc:
                if exc.status_code != 409:  # 409: created meanwhile
                    raise
            else:
                self.made_networks.append(network.name)
            self.phase(None, "network", f"network {network.name} created")

    def claim(self, kind: str, resource, found: dict) -> None:
        """An existing network or volume is reused, unless `own_resources_only` holds and it
        is not this stack's (external ones included: nothing outside the stack is shared)."""
        if not self.options.own_resources_only:
            return
        if carries(found.get("Labels"), self.options.labels):
            return
        raise DeployFailed(
            make(
                "resource_taken",
                f'{kind} "{resource.name}" already exists on this server and is not this stack\'s',
                hint="This server is shared: use a name of your own for the "
                f"{kind}, or let the stack create it (not external).",
            )
        )

    def volumes(self) -> None:
        for volume in self.plan.volumes:
            self.check()
            try:
                self.claim("volume", volume, self.api.inspect_volume(volume.name))
                continue
            except NotFound:
                if volume.external:
                    raise DeployFailed(
                        make(
                            "external_missing",
                            f'external volume "{volume.name}" not found',
                            hint=f"Create it on the server first: docker volume create "
                            f"{volume.name}",
                        )
                    ) from None
            self.check(fresh=True)
            self.api.create_volume(
                volume.name,
                driver=volume.driver,
                driver_opts=volume.driver_opts or None,
                labels={**volume.labels, **self.options.labels},
            )
            self.phase(None, "volume", f"volume {volume.name} created")

    # --- project: builds and files ------------------------------------------------------

    def prepare(self, plan: Plan) -> Plan:
        """The plan as it deploys: images built (or reused) for the services with build:,
        the project's files bind-mounted from the revision's folders on the server."""
        built: dict[str, str] = {}  # context digest -> the tag built from it by this deploy
        named: dict[str, tuple[str, str]] = {}  # the image: of a build -> (tag, digest)
        services = {}
        for spec in plan.services:
            if spec.build is not None:
                name = spec.image
                spec, digest = self.build(spec, built)
                if name:
                    named.setdefault(name, (spec.image, digest))
                services[spec.name] = self.with_files(spec, digest)
        for spec in plan.services:
            if spec.build is None:
                # A service that runs the image another one builds (image: myapp on both).
                tag, digest = named.get(spec.image, (None, None))
                if tag is not None:
                    spec = dataclasses.replace(spec, image=tag)
                    self.built_tags.add(tag)
                services[spec.name] = self.with_files(spec, digest)
        return dataclasses.replace(plan, services=[services[spec.name] for spec in plan.services])

    def with_files(self, spec: ServiceSpec, digest: str | None) -> ServiceSpec:
        """`spec` with its project files as bind mounts of the revision's folders, and a
        config hash that covers what it runs: the context digest of a built image (not its
        per-revision tag: an unchanged build keeps its containers) and the folders."""
        if not spec.files and digest is None:
            return spec
        options = self.options
        mounts = []
        for item in spec.files:
            secret = item.kind == "secret"
            root = options.secrets_dir if secret else options.files_dir
            if not root:
                raise DeployFailed(
                    make(
                        "project_files_missing",
                        f"{item.kind} {item.source or item.stored_as} needs the project's "
                        "files on the server, and this deployment has none",
                        service=spec.name,
                    )
                )
            mounts.append(
                {
                    "type": "bind",
                    "source": f"{root.rstrip('/')}/{item.stored_as}",
                    "target": item.target,
                    "read_only": item.read_only,
                }
            )
        effective = config_hash(
            {
                "service": spec.config_hash,
                "image": digest,
                "files": options.files_dir if spec.files else None,
                "secrets": options.secrets_dir
                if any(f.kind == "secret" for f in spec.files)
                else None,
            }
        )
        return dataclasses.replace(spec, volumes=[*spec.volumes, *mounts], config_hash=effective)

    def build(self, spec: ServiceSpec, built: dict[str, str]) -> tuple[ServiceSpec, str]:
        """Build (or reuse) the image of `spec`; `spec` with it as its image, and the
        context digest."""
        options = self.options
        name = spec.name
        tag = image_tag(options.image_repository, name, options.revision)
        if not options.project_dir:
            raise DeployFailed(
                make(
                    "project_files_missing",
                    "the image is built from the project, and this deployment has no "
                    "project folder",
                    service=name,
                )
            )
        self.check(fresh=True)
        try:
            context = BuildContext.of(
                options.project_dir, spec.build, limit=options.build_context_limit
            )
        except ContextTooLarge as exc:
            raise DeployFailed(
                make("build_context_too_large", str(exc), service=name, hint=exc.hint)
            ) from None
        except EngineError as exc:
            raise DeployFailed(
                make("build_failed", str(exc), service=name, hint=exc.hint)
            ) from None
        digest = context.digest
        repository, _, revision_tag = tag.rpartition(":")
        reuse = built.get(digest)
        if reuse is None and spec.pull_policy in ("missing", "never"):
            reuse = self.image_of(digest)
        if reuse is not None:
            self.api.tag(reuse, repository, revision_tag)
            self.phase(name, "build", f"{name}: image {tag} unchanged (same build context)", 40)
            built[digest] = tag
            return dataclasses.replace(spec, image=tag), digest
        if spec.pull_policy == "never":
            raise DeployFailed(
                make(
                    "image_not_found",
                    f"no image built from this context yet, and pull_policy is never ({tag})",
                    service=name,
                    hint="Allow the build (remove pull_policy: never), or build it once.",
                )
            )
        self.run_build(spec, context, tag, digest)
        built[digest] = tag
        return dataclasses.replace(spec, image=tag), digest

    def image_of(self, digest: str) -> str | None:
        """An image of this stack built from the same context digest, if the engine has
        one."""
        labels = [f"{CONTEXT_DIGEST_LABEL}={digest}"]
        labels += [f"{key}={value}" for key, value in self.options.labels.items()]
        prefix = self.options.image_repository.lower() + "-"
        for image in self.api.images(filters={"label": labels}):
            if any(str(tag).startswith(prefix) for tag in image.get("RepoTags") or []):
                return image["Id"]
        return None

    def run_build(self, spec: ServiceSpec, context: BuildContext, tag: str, digest: str) -> None:
        name = spec.name
        mb = context.size / (1024 * 1024)
        self.phase(
            name,
            "build",
            f"{name}: building {tag} ({len(context.files)} files, {mb:.1f} MB of context)",
            0,
        )
        output = BuildOutput()
        labels = {**spec.build.labels, **self.options.labels, CONTEXT_DIGEST_LABEL: digest}
        started = time.monotonic()
        messages = None
        with context.tar() as stream:
            try:
                messages = self.driver.builder.build(
                    self.api,
                    stream,
                    tag=tag,
                    build=spec.build,
                    labels=labels,
                    pull=spec.pull_policy == "always",
                    registry_auth=self.options.registry_auth,
                    timeout=self.options.build_timeout,
                    cancel=self.stop,
                )
                last_progress = 0.0
                for message in messages:
                    self.check()
                    for line in output.feed(message):
                        self.emit("log", f"{name}: {line}", service=name)
                    now = time.monotonic()
                    if output.steps and now - last_progress >= PULL_EVENT_INTERVAL:
                        last_progress = now
                        self.emit(
                            "progress",
                            f"{name}: {output.step}",
                            service=name,
                            phase="build",
                            progress=output.progress,
                        )
                    if output.error:
                        break
            except APIError as exc:  # refused before it ran (a Dockerfile it cannot parse)
                output.error = str(exc.explanation or exc)
            except Exception:  # the connection cut under a read by a cancel: Cancelled
                self.check()
                raise
            finally:
                if messages is not None:
                    messages.close()
        if output.error:
            raise DeployFailed(
                diagnose_build(name, output.error, step=output.step, output=list(output.lines))
            )
        seconds = time.monotonic() - started
        self.phase(name, "build", f"{name}: built {tag} in {seconds:.1f}s", 40)

    # --- images -------------------------------------------------------------------------

    def guard_pull(self, image: str) -> dict:
        users = [spec.name for spec in self.plan.services if spec.image == image]
        try:
            return self.ensure_image(image, users)
        except (Cancelled, _Aborted):
            raise
        except DeployFailed as exc:
            self.fail(exc.diagnosis)
            raise
        except Exception as exc:
            diagnosis = diagnose_error(exc, service=users[0] if users else None, image=image)
            self.fail(diagnosis)
            raise DeployFailed(diagnosis) from exc

    def ensure_image(self, image: str, users: list[str]) -> dict:
        policies = {self.plan.service(name).pull_policy for name in users}
        always = "always" in policies
        service = users[0] if users else None
        if not always:
            try:
                attrs = self.api.inspect_image(image)
                for name in users:
                    self.phase(name, "pull", f"{name}: image {image} present", 40)
                return attrs
            except NotFound:
                if policies == {"never"}:
                    raise DeployFailed(
                        make(
                            "image_not_found",
                            f"image not found: {image} (pull_policy: never)",
                            service=service,
                            hint="Pull or build the image on the server, or allow pulling.",
                        )
                    ) from None
        self.pull(image, users)
        return self.api.inspect_image(image)

    def pull(self, image: str, users: list[str]) -> None:
        repository, tag = parse_repository_tag(image)
        if tag is None:
            tag = "latest"
        auth = self.options.registry_auth.get(_registry_of(image))
        for name in users:
            self.phase(name, "pull", f"{name}: pulling {image}", 0)
        deadline = time.monotonic() + self.options.pull_timeout
        layers: dict[str, float] = {}  # layer -> fraction done
        last_event = 0.0
        stream = self.api.pull(repository, tag=tag, stream=True, decode=True, auth_config=auth)
        try:
            for chunk in stream:
                self.check()
                if "error" in chunk:
                    detail = chunk.get("errorDetail") or {}
                    raise APIError(str(detail.get("message") or chunk["error"]))
                layer = chunk.get("id")
                status = str(chunk.get("status") or "")
                if layer and status and not status.startswith(("Pulling from", "Digest", "Status")):
                    progress = chunk.get("progressDetail") or {}
                    if status in ("Pull complete", "Already exists"):
                        layers[layer] = 1.0
                    elif status == "Download complete":
                        layers[layer] = max(layers.get(layer, 0.0), 0.9)
                    elif status.startswith("Downloading") and progress.get("total"):
                        fraction = progress.get("current", 0) / progress["total"]
                        layers[layer] = max(layers.get(layer, 0.0), 0.9 * min(1.0, fraction))
                    elif status.startswith("Extracting"):
                        layers[layer] = max(layers.get(layer, 0.0), 0.9)
                    else:
                        layers.setdefault(layer, 0.0)
                now = time.monotonic()
                if now > deadline:
                    raise DeployFailed(
                        make(
                            "timeout",
                            f"pull of {image} took more than {self.options.pull_timeout:g}s",
                            service=users[0] if users else None,
                            hint="Check the registry's bandwidth, or allow a longer pull timeout.",
                        )
                    )
                if layers and now - last_event >= PULL_EVENT_INTERVAL:
                    last_event = now
                    percent = int(100 * sum(layers.values()) / len(layers))
                    for name in users:
                        self.emit(
                            "progress",
                            f"{name}: pulling {image} ({percent}%)",
                            service=name,
                            phase="pull",
                            progress=percent * 40 // 100,
                            data={"image": image, "percent": percent},
                        )
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        for name in users:
            self.phase(name, "pull", f"{name}: pulled {image}", 40)

    # --- one service --------------------------------------------------------------------

    def service(self, spec: ServiceSpec) -> None:
        try:
            self.wait_dependencies(spec)
            self.check()
            self.wait_image(spec)
            self.check()
            boxes = self.converge(spec)
            self.set_state(spec.name, started=True)
            self.gate(spec, boxes)
            self.set_state(spec.name, passed=True)
        except (Cancelled, _Aborted):
            pass
        except DeployFailed as exc:
            self.fail(exc.diagnosis)
        except Exception as exc:
            self.fail(diagnose_error(exc, service=spec.name))
        finally:
            self.set_state(spec.name, done=True)

    def wait_dependencies(self, spec: ServiceSpec) -> None:
        with self.cond:
            while True:
                waiting = []
                for dependency, condition in spec.depends_on.items():
                    state = self.states.get(dependency)
                    if state is None:
                        continue
                    if state.failed is not None:
                        raise DeployFailed(
                            make(
                                "dependency_failed",
                                f'dependency "{dependency}" failed: {state.failed.summary}',
                                service=spec.name,
                                hint=f"Fix {dependency} first.",
                            )
                        )
                    if condition == "service_healthy":
                        ready = state.passed
                    elif condition == "service_completed_successfully":
                        ready = state.completed
                    else:
                        ready = state.started
                    if not ready:
                        waiting.append(dependency)
                if not waiting or self.stop.cancelled:
                    break
                self.cond.wait(1.0)
        self.check()

    def wait_image(self, spec: ServiceSpec) -> None:
        if spec.build is not None or spec.image in self.built_tags:
            return  # built (or reused) before anything else
        if not spec.image:
            raise DeployFailed(
                make(
                    "docker_error",
                    "no image: give the service an image: or a build:",
                    service=spec.name,
                    hint="Give its name under image:, or the folder to build under build:.",
                )
            )
        future = self.images[spec.image]
        with self.cond:
            while not future.done() and not self.stop.cancelled:
                self.cond.wait(1.0)
        self.check()
        future.result()

    def converge(self, spec: ServiceSpec) -> list[_Box]:
        mine: dict[int, dict] = {}
        extra: list[dict] = []
        for summary in self.existing:
            labels = summary.get("Labels") or {}
            if labels.get(SERVICE_LABEL) != spec.name:
                continue
            try:
                number = int(labels.get(NUMBER_LABEL) or 0)
            except ValueError:
                number = 0
            if 1 <= number <= spec.replicas and number not in mine:
                mine[number] = summary
            else:
                extra.append(summary)
        for summary in extra:
            self.check(fresh=True)
            self.remove_container(spec.name, summary["Id"], RECREATE_STOP_TIMEOUT)
        boxes: list[_Box] = []
        for number in range(1, spec.replicas + 1):
            self.check()
            name = spec.container_name or container_name(self.project, spec.name, number)
            old = mine.get(number)
            if old is not None:
                labels = old.get("Labels") or {}
                names = [n.lstrip("/") for n in old.get("Names") or []]
                if labels.get(HASH_LABEL) == spec.config_hash and name in names:
                    if old.get("State") == "running":
                        self.phase(spec.name, "unchanged", f"{spec.name}: {name} unchanged", 70)
                        boxes.append(_Box(old["Id"], name, number, created=False))
                        continue
                    if old.get("State") in ("exited", "created"):
                        self.check(fresh=True)
                        self.api.start(old["Id"])
                        self.phase(spec.name, "start", f"{spec.name}: {name} started", 70)
                        boxes.append(_Box(old["Id"], name, number, created=False))
                        continue
                self.check(fresh=True)
                self.phase(
                    spec.name,
                    "stop",
                    f"{spec.name}: recreating {name} (configuration changed)",
                    45,
                )
                self.remove_container(spec.name, old["Id"], RECREATE_STOP_TIMEOUT)
                self.check()
            boxes.append(self.create(spec, number, name))
        return boxes

    def create(self, spec: ServiceSpec, number: int, name: str) -> _Box:
        args, extra_networks = self.driver.container_args(
            spec, number, name, self.project, self.options.labels
        )
        self.check(fresh=True)
        created = self.api.create_container(**args)
        cid = created["Id"]
        with self.cond:
            self.states[spec.name].created.append(cid)
            self.made_containers[cid] = name
        for warning in created.get("Warnings") or []:
            self.emit("log", f"{spec.name}: {warning}", service=spec.name, level="warning")
        self.phase(spec.name, "create", f"{spec.name}: created {name}", 50)
        for network, endpoint in extra_networks:
            self.check()
            self.api.connect_container_to_network(cid, network, **endpoint)
        self.check(fresh=True)
        self.api.start(cid)
        self.phase(spec.name, "start", f"{spec.name}: started {name}", 70)
        return _Box(cid, name, number, created=True)

    # --- health gate --------------------------------------------------------------------

    def log_tail(self, cid: str) -> list[str]:
        try:
            data = self.api.logs(cid, stdout=True, stderr=True, tail=LOG_TAIL, timestamps=False)
        except Exception:
            return []
        return _decode_lines(data)[-LOG_TAIL:]

    def gate(self, spec: ServiceSpec, boxes: list[_Box]) -> None:
        deadline = time.monotonic() + self.options.health_timeout
        grace = self.options.grace_period
        wants_exit = spec.name in self.completion_wanted
        pending = list(boxes)
        while pending:
            for box in list(pending):
                attrs = self.api.inspect_container(box.id)
                state = attrs.get("State") or {}
                restarts = int(attrs.get("RestartCount") or 0)
                if box.restart_count is None:
                    box.restart_count = restarts
                status = state.get("Status")
                health = (state.get("Health") or {}).get("Status")
                if (
                    status == "exited"
                    and state.get("ExitCode") == 0
                    and not state.get("OOMKilled")
                    and (wants_exit or spec.restart == "no")
                ):
                    self.set_state(spec.name, completed=True)
                    self.phase(
                        spec.name, "running", f"{spec.name}: {box.name} completed (exit 0)", 100
                    )
                    pending.remove(box)
                    continue
                restarted = restarts > box.restart_count
                if diagnose_container(attrs, service=spec.name, restarted=restarted):
                    raise DeployFailed(
                        diagnose_container(
                            attrs,
                            service=spec.name,
                            restarted=restarted,
                            last_exit=_last_exit(self.api, attrs) if restarted else None,
                            log_tail=self.log_tail(box.id),
                        )
                    )
                if wants_exit:
                    pass  # wait until it exits
                elif health == "healthy":
                    self.phase(spec.name, "healthy", f"{spec.name}: {box.name} healthy", 100)
                    pending.remove(box)
                elif health is None and status == "running":
                    started = _parse_time(state.get("StartedAt"))
                    if started is None or time.time() - started >= grace:
                        self.phase(spec.name, "running", f"{spec.name}: {box.name} running", 100)
                        pending.remove(box)
            if not pending:
                break
            if time.monotonic() > deadline:
                box = pending[0]
                attrs = self.api.inspect_container(box.id)
                raise DeployFailed(
                    diagnose_timeout(
                        attrs,
                        service=spec.name,
                        seconds=self.options.health_timeout,
                        log_tail=self.log_tail(box.id),
                    )
                )
            self.stop.wait(HEALTH_POLL)
            self.check()


# ------------------------------------------------------------------------------ driver


class DockerDriver:
    """Deploy and operate compose projects on one Docker engine."""

    def __init__(
        self,
        client: docker.DockerClient,
        *,
        where: str | None = None,
        stop_timeout: float = 10.0,
        max_threads: int | None = None,
    ):
        self.client = client
        self.api = client.api
        # How errors name the engine: the server's name for people, else its address.
        self.where = where or str(getattr(self.api, "base_url", "the Docker engine"))
        self.stop_timeout = stop_timeout
        # How images are built: the classic builder; BuildKit would be another builder.
        self.builder = ClassicBuilder()
        over_ssh = str(getattr(self.api, "base_url", "")).startswith("http+docker://ssh")
        # Over SSH every concurrent API call is a channel (sshd allows 10 per connection).
        self.max_threads = max_threads or (SSH_THREADS if over_ssh else MAX_SERVICE_THREADS)
        self.pull_threads = min(MAX_PULL_THREADS, max(1, self.max_threads // 3))

    # --- deploy -------------------------------------------------------------------------

    @_engine_errors
    def deploy(self, plan: Plan, options: DeployOptions, cancel: CancelToken) -> Iterator[Event]:
        """Converge the engine to `plan`, yielding events as they happen. Returns when
        every service passed the health gate; raises DeployFailed (``.diagnosis``) or
        Cancelled after yielding the events that explain it."""
        yield from _Deploy(self, plan, options, cancel).run()

    def container_args(
        self,
        spec: ServiceSpec,
        number: int,
        name: str,
        project: str,
        extra_labels: dict[str, str],
    ) -> tuple[dict[str, Any], list[tuple[str, dict]]]:
        """The arguments of ``APIClient.create_container`` for replica `number` of
        `spec`, and the networks to connect before start: ``[(network, endpoint)]``."""
        api = self.api
        extra = spec.extra
        labels = {
            **compose_labels(project, spec.name, number, spec.config_hash),
            IMAGE_LABEL: spec.image,
            **spec.labels,
            **extra_labels,
        }
        exposed: list[Any] = []
        bindings: dict[str, list[dict[str, str]]] = {}
        for port in spec.ports:
            protocol = port.get("protocol") or "tcp"
            key = f"{port['target']}/{protocol}"
            exposed.append(
                (int(port["target"]), protocol) if protocol != "tcp" else int(port["target"])
            )
            published = port.get("published")
            bindings.setdefault(key, []).append(
                {
                    "HostIp": port.get("host_ip") or "",
                    "HostPort": "" if published is None else str(published),
                }
            )
        for item in extra.get("expose") or []:
            text = str(item)
            target, _, protocol = text.partition("/")
            exposed.append(
                (int(target), protocol) if protocol and protocol != "tcp" else int(target)
            )

        binds: list[str] = []
        mounts: list[docker.types.Mount] = []
        for volume in spec.volumes:
            kind = volume.get("type")
            if kind == "bind" and not volume.get("bind"):
                mode = "ro" if volume.get("read_only") else "rw"
                if volume.get("mode"):
                    mode += "," + str(volume["mode"])
                binds.append(f"{volume['source']}:{volume['target']}:{mode}")
            elif kind == "bind":
                options = volume.get("bind") or {}
                mounts.append(
                    docker.types.Mount(
                        volume["target"],
                        volume["source"],
                        type="bind",
                        read_only=bool(volume.get("read_only")),
                        propagation=options.get("propagation"),
                    )
                )
            elif kind == "tmpfs":
                options = volume.get("tmpfs") or {}
                size = options.get("size")
                mounts.append(
                    docker.types.Mount(
                        volume["target"],
                        None,
                        type="tmpfs",
                        read_only=bool(volume.get("read_only")),
                        tmpfs_size=size,
                        tmpfs_mode=options.get("mode"),
                    )
                )
            else:
                options = volume.get("volume") or {}
                mounts.append(
                    docker.types.Mount(
                        volume["target"],
                        volume.get("source"),
                        type="volume",
                        read_only=bool(volume.get("read_only")),
                        no_copy=bool(options.get("nocopy"))
                        or "nocopy" in str(volume.get("mode") or ""),
                    )
                )

        network_mode = spec.network_mode
        if network_mode and network_mode.startswith("service:"):
            target = network_mode.split(":", 1)[1]
            network_mode = f"container:{container_name(project, target, 1)}"
        networks = list(spec.networks.items())
        networking_config = None
        extra_networks: list[tuple[str, dict]] = []
        if not network_mode and networks:
            first, first_options = networks[0]
            network_mode = first
            networking_config = api.create_networking_config(
                {first: api.create_endpoint_config(**self._endpoint(spec, first_options))}
            )
            extra_networks = [
                (network, self._endpoint(spec, options)) for network, options in networks[1:]
            ]

        restart = spec.restart or "no"
        restart_name, _, retries = restart.partition(":")
        restart_policy = {"Name": "" if restart_name == "no" else restart_name}
        if restart_name == "on-failure" and retries:
            restart_policy["MaximumRetryCount"] = int(retries)

        host: dict[str, Any] = {
            "binds": binds or None,
            "mounts": mounts or None,
            "port_bindings": bindings or None,
            "network_mode": network_mode,
            "restart_policy": restart_policy,
        }
        if spec.limits.get("memory"):
            host["mem_limit"] = int(spec.limits["memory"])
        if spec.limits.get("cpus"):
            host["nano_cpus"] = int(float(spec.limits["cpus"]) * 1e9)
        if spec.limits.get("pids"):
            host["pids_limit"] = int(spec.limits["pids"])
        if spec.reservations.get("memory"):
            host["mem_reservation"] = int(spec.reservations["memory"])
        host.update(_host_extra(extra))

        create: dict[str, Any] = {
            "image": spec.image,
            "name": name,
            "command": spec.command,
            "entrypoint": spec.entrypoint,
            "environment": dict(spec.environment),
            "labels": labels,
            "ports": exposed or None,
            "user": spec.user,
            "working_dir": spec.working_dir,
            "detach": True,
            "networking_config": networking_config,
            "host_config": api.create_host_config(**host),
            "use_config_proxy": False,
        }
        if spec.healthcheck is not None:
            create["healthcheck"] = _healthcheck(spec.healthcheck)
        for key in ("hostname", "domainname", "mac_address", "stop_signal", "platform", "runtime"):
            if extra.get(key) is not None:
                create[key] = str(extra[key])
        for key in ("tty", "stdin_open"):
            if extra.get(key) is not None:
                create[key] = bool(extra[key])
        if extra.get("stop_grace_period") is not None:
            create["stop_timeout"] = int(parse_duration(extra["stop_grace_period"]))
        return create, extra_networks

    @staticmethod
    def _endpoint(spec: ServiceSpec, options: dict) -> dict[str, Any]:
        aliases = [spec.name, *[a for a in options.get("aliases") or [] if a != spec.name]]
        endpoint: dict[str, Any] = {"aliases": aliases}
        for key in ("ipv4_address", "ipv6_address", "link_local_ips"):
            if options.get(key):
                endpoint[key] = options[key]
        return endpoint

    # --- helpers ------------------------------------------------------------------------

    def parallel(self, tasks: list[Callable[[], Any]]) -> None:
        """Run `tasks` in threads; the first error is raised after all finished."""
        workers = max(1, min(8, self.max_threads))
        if not tasks:
            return
        if len(tasks) == 1:
            tasks[0]()
            return
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(workers, len(tasks))) as pool:
            futures = [pool.submit(task) for task in tasks]
        for future in futures:
            future.result()

    def _containers(self, project: str, service: str | None = None) -> list[dict]:
        return self.api.containers(all=True, filters=_project_filter(project, service))

    def _run_events(
        self, tasks: list[Callable[[Callable[[Event], None]], None]]
    ) -> Iterator[Event]:
        """Run tasks (each given an emit function) in threads; yield their events."""
        events: queue.Queue = queue.Queue()
        errors: list[BaseException] = []

        def runner() -> None:
            try:
                self.parallel([lambda task=task: task(events.put) for task in tasks])
            except BaseException as exc:
                errors.append(exc)
            finally:
                events.put(_DONE)

        threading.Thread(target=runner, daemon=True).start()
        while True:
            item = events.get()
            if item is _DONE:
                break
            yield item
        if errors:
            error = errors[0]
            raise DeployFailed(diagnose_error(error)) from error

    # --- operations ---------------------------------------------------------------------

    def responsive(self, timeout: float = 5.0) -> bool:
        """True when the engine answers a ping within `timeout` seconds (after a failure:
        is the server still there?)."""
        try:
            response = self.api._get(self.api._url("/_ping"), timeout=timeout)
            return response.status_code == 200
        except Exception:  # any failure to answer is the answer
            return False

    @_engine_errors
    def discard(self, *, containers: list[str], networks: list[str]) -> list[str]:
        """Remove these containers (ids, forced) and then these networks (names), those that
        are still there; returns the names of what was removed."""
        removed = []
        for cid in containers:
            with contextlib.suppress(NotFound):
                name = (self.api.inspect_container(cid).get("Name") or cid[:12]).lstrip("/")
                self.api.remove_container(cid, force=True, v=False)
                removed.append(name)
        for network in networks:
            with contextlib.suppress(APIError):  # gone (404), or in use by others (409)
                self.api.remove_network(network)
                removed.append(network)
        return removed

    @_engine_errors
    def remove(
        self, project: str, *, volumes: bool = False, cancel: CancelToken | None = None
    ) -> Iterator[Event]:
        """Remove the project's containers, then its networks, then (when asked) its
        volumes. Stops within `stop_timeout` seconds per container (then SIGKILL)."""
        cancel = cancel or CancelToken()
        containers = self._containers(project)

        def remover(summary: dict) -> Callable[[Callable[[Event], None]], None]:
            def task(emit: Callable[[Event], None]) -> None:
                cancel.raise_if_cancelled()
                labels = summary.get("Labels") or {}
                service = labels.get(SERVICE_LABEL)
                name = (summary.get("Names") or ["/" + summary["Id"][:12]])[0].lstrip("/")
                if summary.get("State") == "running":
                    emit(Event("phase", f"{service}: stopping {name}", service, "stop"))
                    with contextlib.suppress(NotFound):
                        self.api.stop(summary["Id"], timeout=int(self.stop_timeout))
                with contextlib.suppress(NotFound):
                    self.api.remove_container(summary["Id"], force=True, v=True)
                emit(Event("phase", f"{service}: removed {name}", service, "remove"))

            return task

        yield from self._run_events([remover(summary) for summary in containers])
        cancel.raise_if_cancelled()
        networks = self.api.networks(filters=_project_filter(project))
        yield from _remove_shared(
            "network", [(n["Name"], n["Id"]) for n in networks], self.api.remove_network, cancel
        )
        if volumes:
            found = self.api.volumes(filters=_project_filter(project)).get("Volumes") or []
            yield from _remove_shared(
                "volume", [(v["Name"], v["Name"]) for v in found], self.api.remove_volume, cancel
            )

    def _each(
        self, project: str, service: str | None, verb: str, phase: str, act: Callable[[str], Any]
    ) -> Iterator[Event]:
        def worker(summary: dict) -> Callable[[Callable[[Event], None]], None]:
            def task(emit: Callable[[Event], None]) -> None:
                name = (summary.get("Names") or ["/" + summary["Id"][:12]])[0].lstrip("/")
                svc = (summary.get("Labels") or {}).get(SERVICE_LABEL)
                act(summary["Id"])
                emit(Event("phase", f"{svc}: {verb} {name}", svc, phase))

            return task

        containers = self._containers(project, service)
        yield from self._run_events([worker(summary) for summary in containers])

    @_engine_errors
    def stop(self, project: str, service: str | None = None) -> Iterator[Event]:
        yield from self._each(
            project,
            service,
            "stopped",
            "stop",
            lambda cid: self.api.stop(cid, timeout=int(self.stop_timeout)),
        )

    @_engine_errors
    def start(self, project: str, service: str | None = None) -> Iterator[Event]:
        yield from self._each(project, service, "started", "start", self.api.start)

    @_engine_errors
    def restart(self, project: str, service: str | None = None) -> Iterator[Event]:
        yield from self._each(
            project,
            service,
            "restarted",
            "start",
            lambda cid: self.api.restart(cid, timeout=int(self.stop_timeout)),
        )

    @_engine_errors
    def status(self, project: str) -> list[ContainerStatus]:
        out = []
        for summary in self._containers(project):
            try:
                attrs = self.api.inspect_container(summary["Id"])
            except NotFound:
                continue
            out.append(_container_status(summary, attrs))
        return sorted(out, key=lambda s: (s.service, s.number, s.name))

    @_engine_errors
    def last_exit(self, ref: str) -> Exit | None:
        """How the last run of container `ref` ended (its exit code, even once Docker has
        restarted it); None when it runs and never exited before."""
        return _last_exit(self.api, self.api.inspect_container(ref))

    @_engine_errors
    def project_labels(self, project: str) -> dict[str, str] | None:
        found = self.api.containers(all=True, filters=_project_filter(project), limit=1)
        if not found:
            return None
        return dict(found[0].get("Labels") or {})

    @_engine_errors
    def project_owned(self, project: str, owner: dict[str, str]) -> bool:
        """True unless a container of `project` does not carry the `owner` labels: a compose
        project of the same name that another stack (of this organisation or, on a shared
        engine, of another one) or someone by hand runs here is not the owner's to deploy
        over, show or touch. A project with no container is nobody's (True)."""
        return all(
            owned(summary.get("Labels"), project, owner) for summary in self._containers(project)
        )

    @_engine_errors
    def container(self, ref: str, *, project: str, owner: dict[str, str]) -> ContainerStatus:
        """The container `ref` (id, short id or name) if it is one of `project`'s owned by
        `owner`; ContainerNotFound otherwise, the same for a missing container and another
        project's (nothing tells them apart)."""
        missing = ContainerNotFound(f"No container {ref!r} of {project} on {self.where}.")
        if not ref or "/" in ref or len(ref) > 128:
            raise missing
        try:
            attrs = self.api.inspect_container(ref)
        except NotFound:
            raise missing from None
        if not owned((attrs.get("Config") or {}).get("Labels"), project, owner):
            raise missing
        return _container_status({}, attrs)

    @_engine_errors
    def containers(self, *, label: str | None = None) -> list[ContainerStatus]:
        """Every container on the engine, running or not (only those carrying `label`, a
        ``key`` or ``key=value``, when given), newest first."""
        out = []
        for summary in self.api.containers(all=True, filters={"label": [label]} if label else None):
            try:
                attrs = self.api.inspect_container(summary["Id"])
            except NotFound:
                continue  # removed meanwhile
            out.append(_container_status(summary, attrs))
        return out

    @_engine_errors
    def logs(
        self,
        container: str,
        *,
        tail: int = 200,
        follow: bool = False,
        timestamps: bool = True,
        cancel: CancelToken | None = None,
    ) -> Iterator[str]:
        """The container's last `tail` lines (stdout and stderr), one decoded line per
        item; with `follow`, then new lines until `cancel` or the container stops."""
        if not follow:
            try:
                data = self.api.logs(
                    container, stdout=True, stderr=True, timestamps=timestamps, tail=tail
                )
            except NotFound:
                raise ContainerNotFound(f"No container {container!r} on {self.where}.") from None
            yield from _decode_lines(data)
            return
        cancel = cancel or CancelToken()
        since: float | None = None
        last_seen: tuple[int, int] | None = None
        while not cancel.cancelled:
            kwargs: dict[str, Any] = {"tail": tail} if since is None else {"since": since}
            try:
                stream = self.api.logs(
                    container,
                    stdout=True,
                    stderr=True,
                    timestamps=True,
                    stream=True,
                    follow=True,
                    **kwargs,
                )
            except NotFound:
                if since is not None:
                    return  # removed while followed
                raise ContainerNotFound(f"No container {container!r} on {self.where}.") from None
            unregister = cancel.on_cancel(stream.close)
            buffer = b""
            try:
                for chunk in stream:
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for raw in lines:
                        line = raw.decode("utf-8", "replace").rstrip("\r")
                        stamp, _, text = line.partition(" ")
                        key = _stamp_key(stamp)
                        if key is not None and last_seen is not None and key <= last_seen:
                            continue  # already given before a reconnect
                        if key is not None:
                            last_seen = key
                        yield line if timestamps else text
                    if cancel.cancelled:
                        return
            except Exception:  # noqa: S110 - the stream broke: reconnect below, if running
                pass
            finally:
                unregister()
                with contextlib.suppress(Exception):
                    stream.close()
            if buffer.strip() and not cancel.cancelled:
                line = buffer.decode("utf-8", "replace")
                yield line if timestamps else line.partition(" ")[2]
            if cancel.cancelled:
                return
            try:
                state = self.api.inspect_container(container).get("State") or {}
            except NotFound:
                return
            if not state.get("Running"):
                return
            # The stream ended while the container runs (read timeout): follow on.
            since = (last_seen[0] if last_seen else time.time()) - 1


def _remove_shared(
    kind: str, items: list[tuple[str, str]], remove: Callable[[str], Any], cancel: CancelToken
) -> Iterator[Event]:
    """Remove networks or volumes ((name, id) pairs); one still used by a container of
    another project is kept, with a warning."""
    for name, ident in items:
        cancel.raise_if_cancelled()
        try:
            remove(ident)
        except NotFound:
            pass
        except APIError as exc:
            yield Event(
                "log", f"{kind} {name} kept: {diagnose_error(exc).summary}", level="warning"
            )
            continue
        yield Event("phase", f"{kind} {name} removed", None, "remove")


def _last_exit(api, attrs: dict) -> Exit | None:
    """How the last run of the container that ``attrs`` (inspect) describes ended. A
    container that Docker restarted after a crash runs again and its state reads exit
    code 0, so the code comes from its last ``die`` event before its current start (and
    an ``oom`` event just before it); None when it runs and never exited before."""
    state = attrs.get("State") or {}
    if state.get("Status") != "running":
        return Exit(state.get("ExitCode"), bool(state.get("OOMKilled")))
    since, until = _stamp_key(attrs.get("Created") or ""), _stamp_key(state.get("StartedAt"))
    if since is None or until is None:
        return None
    events = api.events(
        since="{}.{:09d}".format(*since),
        until="{}.{:09d}".format(*until),
        filters={"container": attrs["Id"], "event": ["die", "oom"]},
        decode=True,
    )
    found: Exit | None = None
    oom = False
    for event in events:
        if event.get("Action") == "oom" or event.get("status") == "oom":
            oom = True
            continue
        code = ((event.get("Actor") or {}).get("Attributes") or {}).get("exitCode")
        found = Exit(int(code) if str(code or "").lstrip("-").isdigit() else None, oom)
        oom = False
    return found


def _stamp_key(stamp: str | None) -> tuple[int, int] | None:
    if not stamp or stamp[:1] != "2" or "T" not in stamp:
        return None
    main, _, fraction = stamp.rstrip("Z").partition(".")
    seconds = _parse_time(main + "Z")
    if seconds is None:
        return None
    digits = "".join(ch for ch in fraction if ch.isdigit())[:9].ljust(9, "0")
    return int(seconds), int(digits or 0)


def _healthcheck(check: dict[str, Any]) -> docker.types.Healthcheck:
    def ns(key: str) -> int | None:
        value = check.get(key)
        return None if value is None else int(float(value) * 1_000_000_000)

    healthcheck = docker.types.Healthcheck(
        test=check.get("test"),
        interval=ns("interval"),
        timeout=ns("timeout"),
        retries=check.get("retries"),
        start_period=ns("start_period"),
    )
    if check.get("start_interval") is not None:
        healthcheck["StartInterval"] = ns("start_interval")
    return healthcheck


def _host_extra(extra: dict[str, Any]) -> dict[str, Any]:
    """create_host_config arguments for the straightforward service keys of `extra`."""
    host: dict[str, Any] = {}
    for key in ("privileged", "read_only", "init", "oom_kill_disable"):
        if extra.get(key) is not None:
            host[key] = bool(extra[key])
    for key in ("cap_add", "cap_drop", "security_opt", "devices", "dns_opt", "group_add"):
        if extra.get(key):
            host[key] = [str(item) for item in extra[key]]
    for key in ("dns", "dns_search"):
        value = extra.get(key)
        if value:
            host[key] = [str(value)] if isinstance(value, str) else [str(v) for v in value]
    for compose_key, docker_key in (
        ("ipc", "ipc_mode"),
        ("pid", "pid_mode"),
        ("userns_mode", "userns_mode"),
        ("cgroup_parent", "cgroup_parent"),
        ("isolation", "isolation"),
    ):
        if extra.get(compose_key):
            host[docker_key] = str(extra[compose_key])
    if extra.get("shm_size") is not None:
        host["shm_size"] = extra["shm_size"]
    if extra.get("oom_score_adj") is not None:
        host["oom_score_adj"] = int(extra["oom_score_adj"])
    if extra.get("cpu_shares") is not None:
        host["cpu_shares"] = int(extra["cpu_shares"])
    if extra.get("cpuset") is not None:
        host["cpuset_cpus"] = str(extra["cpuset"])
    tmpfs = extra.get("tmpfs")
    if tmpfs:
        items = [tmpfs] if isinstance(tmpfs, str) else list(tmpfs)
        host["tmpfs"] = {
            path: options for path, _, options in (str(item).partition(":") for item in items)
        }
    hosts = extra.get("extra_hosts")
    if hosts:
        if isinstance(hosts, dict):
            host["extra_hosts"] = {str(k): str(v) for k, v in hosts.items()}
        else:
            pairs = {}
            for item in hosts:
                text = str(item)
                name, equals, address = text.partition("=")
                if not equals:
                    name, _, address = text.partition(":")
                pairs[name] = address
            host["extra_hosts"] = pairs
    sysctls = extra.get("sysctls")
    if sysctls:
        if isinstance(sysctls, dict):
            host["sysctls"] = {str(k): str(v) for k, v in sysctls.items()}
        else:
            host["sysctls"] = dict(str(item).partition("=")[::2] for item in sysctls)
    ulimits = extra.get("ulimits")
    if isinstance(ulimits, dict):
        host["ulimits"] = [
            docker.types.Ulimit(name=name, soft=int(value), hard=int(value))
            if not isinstance(value, dict)
            else docker.types.Ulimit(
                name=name, soft=int(value.get("soft", 0)), hard=int(value.get("hard", 0))
            )
            for name, value in ulimits.items()
        ]
    logging = extra.get("logging")
    if isinstance(logging, dict) and logging.get("driver"):
        host["log_config"] = docker.types.LogConfig(
            type=str(logging["driver"]),
            config={str(k): str(v) for k, v in (logging.get("options") or {}).items()},
        )
    return host


def _container_status(summary: dict, attrs: dict) -> ContainerStatus:
    config = attrs.get("Config") or {}
    labels = config.get("Labels") or summary.get("Labels") or {}
    state = attrs.get("State") or {}
    health = (state.get("Health") or {}).get("Status")
    ports = []
    published = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
    if not any(published.values()):
        published = (attrs.get("HostConfig") or {}).get("PortBindings") or {}
    for key, bindings in sorted(published.items()):
        target, _, protocol = key.partition("/")
        for binding in bindings or []:
            host_port = binding.get("HostPort")
            ports.append(
                {
                    "host_ip": binding.get("HostIp") or None,
                    "published": int(host_port) if str(host_port or "").isdigit() else None,
                    "target": int(target),
                    "protocol": protocol or "tcp",
                }
            )
    started = state.get("StartedAt")
    status = state.get("Status") or summary.get("State") or ""
    try:
        number = int(labels.get(NUMBER_LABEL) or 0)
    except ValueError:
        number = 0
    return ContainerStatus(
        id=attrs["Id"],
        name=str(attrs.get("Name") or "").lstrip("/"),
        service=labels.get(SERVICE_LABEL) or "",
        number=number,
        image=config.get("Image") or summary.get("Image") or "",
        state=status,
        health=health,
        status=summary.get("Status") or status,
        ports=ports,
        config_hash=labels.get(HASH_LABEL) or "",
        created=attrs.get("Created") or "",
        started_at=None if not started or started.startswith("0001-") else started,
        exit_code=None if status in ("running", "created") else state.get("ExitCode"),
        project=labels.get(PROJECT_LABEL) or "",
        labels=dict(labels),
    )
