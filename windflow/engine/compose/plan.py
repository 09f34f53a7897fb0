"""Plan a deployment from a validated, interpolated compose document.

``build_plan(document, project) -> Plan``: the networks and volumes to create (or, when
``external``, only to find), the images to pull (each once), one normalised
:class:`ServiceSpec` per service, and ``order``: the services in *waves*. The services of a
wave are independent of each other and may start in parallel; every service comes after
everything it depends on (``depends_on``, and the implicit dependencies of ``links``,
``volumes_from: <service>`` and ``network_mode: service:<name>``).

Each :class:`ServiceSpec` carries a ``config_hash``: SHA-256 over a canonical JSON of the
service's effective configuration (everything but ``replicas``, ``depends_on`` and
``pull_policy``, which say *how many* / *when* / *how to fetch*, not *what runs*). Changing
one service changes only its hash: a redeploy recreates only the containers whose
``com.docker.compose.config-hash`` label differs (see :func:`compose_labels`).

Pure Python, no Django, no Docker. Every refusal is a
:class:`~windflow.engine.compose.ComposeError` naming the place in the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import posixpath
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from windflow.engine.compose import ComposeError, Problem, format_path
from windflow.engine.labels import (
    CONFIG_FILES_LABEL,
    HASH_LABEL,
    MANAGED_LABEL,
    NETWORK_LABEL,
    NUMBER_LABEL,
    ONEOFF_LABEL,
    PROJECT_LABEL,
    SERVICE_LABEL,
    VOLUME_LABEL,
    WORKING_DIR_LABEL,
)

CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
DEFAULT_CONDITION = "service_started"
DEFAULT_NETWORK = "default"

# Service keys turned into ServiceSpec fields; every other key (except x-*) lands in
# ``extra`` unchanged, so that any change to it still changes the config hash.
_HANDLED = frozenset(
    {
        "image",
        "command",
        "entrypoint",
        "environment",
        "ports",
        "volumes",
        "networks",
        "network_mode",
        "healthcheck",
        "restart",
        "deploy",
        "mem_limit",
        "mem_reservation",
        "cpus",
        "pids_limit",
        "scale",
        "labels",
        "user",
        "working_dir",
        "depends_on",
        "links",
        "volumes_from",
        "pull_policy",
        "container_name",
        "build",
        "secrets",
        "configs",
        "env_file",
    }
)
# Other service keys a plan carries in ``extra`` and the Docker driver applies. A key
# outside both lists is refused when planning: never silently dropped.
APPLIED_EXTRA = frozenset(
    {
        "expose", "privileged", "read_only", "init", "oom_kill_disable", "cap_add",
        "cap_drop", "security_opt", "devices", "dns_opt", "group_add", "dns", "dns_search",
        "ipc", "pid", "userns_mode", "cgroup_parent", "isolation", "shm_size",
        "oom_score_adj", "cpu_shares", "cpuset", "tmpfs", "extra_hosts", "sysctls",
        "ulimits", "logging", "hostname", "domainname", "mac_address", "stop_signal",
        "platform", "runtime", "tty", "stdin_open", "stop_grace_period",
    }
)  # fmt: skip
# What to do instead, for the keys people use most that WindFlow does not apply yet.
_INSTEAD = {
    "profiles": "keep only the services to deploy in the stack's file",
    "links": "use the service name itself on the project network (link aliases are legacy)",
    "volumes_from": "mount the same named volume in both services",
}
# Fields of a ServiceSpec left out of its config hash.
_NOT_HASHED = frozenset({"replicas", "depends_on", "pull_policy", "config_hash"})
# Fields hashed only when set, so that a service without them keeps the hash it had before
# they existed (no container is recreated by an upgrade of WindFlow).
_HASHED_WHEN_SET = frozenset({"build", "files"})
PULL_POLICIES = ("always", "missing", "never", "build")
_PULL_ALIASES = {"if_not_present": "missing"}
SECRETS_DIR = "/run/secrets"
# build: keys a BuildSpec carries; the others are refused, never dropped.
_BUILD_KEYS = frozenset(
    {
        "context", "dockerfile", "args", "target", "labels", "network", "extra_hosts",
        "shm_size", "no_cache", "pull", "cache_from",
    }
)  # fmt: skip


# --- specs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildSpec:
    """A service's ``build:``. ``context`` is a project-relative posix path ("." for the
    project root), ``dockerfile`` is relative to the context. ``args``: a name without a
    value takes it from the variables, as compose takes it from its environment, and is
    dropped when they have none (the Dockerfile's ``ARG`` default applies)."""

    context: str = "."
    dockerfile: str = "Dockerfile"
    args: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    network: str | None = None
    extra_hosts: dict[str, str] = field(default_factory=dict)
    shm_size: int | None = None
    no_cache: bool = False
    pull: bool = False
    cache_from: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProjectFile:
    """A file (or folder) of the project that a service mounts: a relative bind mount
    (``kind`` "bind"), a compose ``configs:`` file ("config") or a compose ``secrets:`` entry
    ("secret"). ``source`` is project-relative (posix, normalised; "" for a secret whose
    value is the WindFlow secret ``secret``); ``target`` the path in the container; ``name``
    the key of the config or secret under the top-level ``configs:`` / ``secrets:``."""

    source: str
    target: str
    read_only: bool = True
    kind: str = "bind"
    secret: str | None = None
    name: str = ""

    @property
    def stored_as(self) -> str:
        """Where the file sits in the revision's files folder (binds, configs) or secrets
        folder (secrets): its project path, or a secret's name."""
        if self.kind == "secret":
            return self.name or self.secret or posixpath.basename(self.source)
        return self.source


@dataclass(frozen=True)
class NetworkSpec:
    """A network of the project. ``key`` is its name in the file, ``name`` the Docker
    network name (``<project>_<key>`` unless ``name:`` is given). External networks must
    already exist: they are looked up, never created nor removed."""

    key: str
    name: str
    external: bool = False
    driver: str | None = None
    driver_opts: dict[str, str] = field(default_factory=dict)
    internal: bool = False
    attachable: bool = False
    enable_ipv6: bool = False
    ipam: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VolumeSpec:
    """A named volume of the project; ``name`` is the Docker volume name."""

    key: str
    name: str
    external: bool = False
    driver: str | None = None
    driver_opts: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ServiceSpec:
    """One service, normalised.

    - ``command`` / ``entrypoint``: a list of arguments (a string is split like a shell
      would), or None for the image's own.
    - ``environment``: ``{KEY: "value"}``: the values of the service's ``env_file:`` entries
      (in their order, a later file winning), then ``environment:`` over them, as compose
      does. ``KEY`` without a value in ``environment:`` is unset (there is no shell
      environment to take it from), also when an env file gives it.
    - ``ports``: ``[{host_ip, published, target, protocol}]``, one per container port
      (ranges expanded); ``host_ip`` / ``published`` None when not given.
    - ``volumes``: ``[{type, source, target, read_only}]`` (plus ``bind`` / ``volume`` /
      ``tmpfs`` options when given); a named volume's ``source`` is the Docker volume name,
      an anonymous volume's is None.
    - ``networks``: ``{docker network name: {"aliases": [...], ...}}``; ``<project>_default``
      when none is given, empty with a ``network_mode``.
    - ``healthcheck``: ``{test: [...], interval, timeout, start_period, start_interval
      (seconds, float), retries}`` with only the keys given; ``{"test": ["NONE"]}`` when
      disabled; None when the file has none (the image's own applies).
    - ``limits`` / ``reservations``: ``{"memory": bytes, "cpus": float, "pids": int}`` with
      only the keys given (``deploy.resources`` or the legacy ``mem_limit`` / ``cpus`` /
      ``mem_reservation`` / ``pids_limit``).
    - ``depends_on``: ``{service: condition}``.
    - ``extra``: every other service key, as written (``privileged``, ``cap_add``...).
    """

    name: str
    image: str
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    environment: dict[str, str] = field(default_factory=dict)
    ports: list[dict[str, Any]] = field(default_factory=list)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)
    network_mode: str | None = None
    healthcheck: dict[str, Any] | None = None
    restart: str = "no"
    limits: dict[str, Any] = field(default_factory=dict)
    reservations: dict[str, Any] = field(default_factory=dict)
    replicas: int = 1
    labels: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    working_dir: str | None = None
    container_name: str | None = None
    pull_policy: str = "missing"
    depends_on: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    build: BuildSpec | None = None
    files: tuple[ProjectFile, ...] = ()
    config_hash: str = ""

    @property
    def memory_limit(self) -> int | None:
        return self.limits.get("memory")

    @property
    def cpu_limit(self) -> float | None:
        return self.limits.get("cpus")

    def hashed_config(self) -> dict[str, Any]:
        """The configuration the hash covers (everything but replicas, depends_on,
        pull_policy; build and files only when the service has them)."""
        config = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if name in _NOT_HASHED or (name in _HASHED_WHEN_SET and not value):
                continue
            if name == "build":
                value = dataclasses.asdict(value)
            elif name == "files":
                value = [dataclasses.asdict(item) for item in value]
            config[name] = value
        return config


@dataclass(frozen=True)
class Plan:
    project: str
    networks: list[NetworkSpec]
    volumes: list[VolumeSpec]
    images: list[str]
    services: list[ServiceSpec]
    order: list[list[str]]

    def service(self, name: str) -> ServiceSpec:
        for spec in self.services:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def hashes(self) -> dict[str, str]:
        """``{service: config_hash}``, to compare with the running containers' labels."""
        return {spec.name: spec.config_hash for spec in self.services}

    @property
    def files(self) -> list[ProjectFile]:
        """Every project file the services mount, each once (binds and configs first)."""
        found = dict.fromkeys(item for spec in self.services for item in spec.files)
        return sorted(found, key=lambda item: (item.kind == "secret", item.stored_as))

    @property
    def builds(self) -> list[ServiceSpec]:
        """The services whose image is built from the project."""
        return [spec for spec in self.services if spec.build is not None]


# --- labels and names ----------------------------------------------------------------------


def compose_labels(
    project: str,
    service: str,
    number: int,
    config_hash: str,
    *,
    working_dir: str = "/",
    config_files: str | None = None,
) -> dict[str, str]:
    """The labels of a container, compatible with ``docker compose`` (``ls``, ``ps``,
    ``down`` recognise the project), plus ``io.windflow.managed``."""
    labels = {
        PROJECT_LABEL: project,
        SERVICE_LABEL: service,
        NUMBER_LABEL: str(number),
        HASH_LABEL: config_hash,
        ONEOFF_LABEL: "False",
        WORKING_DIR_LABEL: working_dir,
        MANAGED_LABEL: "true",
    }
    if config_files is not None:
        labels[CONFIG_FILES_LABEL] = config_files
    return labels


def container_name(project: str, service: str, number: int) -> str:
    """``<project>-<service>-<number>``, as ``docker compose`` names containers."""
    return f"{project}-{service}-{number}"


def network_labels(project: str, key: str) -> dict[str, str]:
    return {
        PROJECT_LABEL: project,
        NETWORK_LABEL: key,
        MANAGED_LABEL: "true",
    }


def volume_labels(project: str, key: str) -> dict[str, str]:
    return {
        PROJECT_LABEL: project,
        VOLUME_LABEL: key,
        MANAGED_LABEL: "true",
    }


def config_hash(config: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of ``config`` (sorted keys, no spaces)."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --- scalar parsers ------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_MEMORY = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?", re.IGNORECASE)
_MEMORY_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}


def parse_duration(value: Any) -> float:
    """Compose / Go durations in seconds: ``"1m30s"`` -> 90.0, ``"500ms"`` -> 0.5,
    ``"10s"`` -> 10.0; a bare number is seconds."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    position, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    if not text or position != len(text):
        raise ValueError(f'"{text}" is not a duration (write e.g. 10s, 1m30s or 500ms)')
    return round(total, 9)


def parse_memory(value: Any) -> int:
    """Bytes from ``"512M"``, ``"1g"``, ``"1.5GB"``, ``"100k"`` (binary units, as Docker)
    or a number of bytes."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a memory size")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    text = str(value).strip()
    match = _MEMORY.fullmatch(text)
    if not match:
        raise ValueError(f'"{text}" is not a memory size (write e.g. 512M or 1G)')
    return int(float(match.group(1)) * _MEMORY_UNITS[match.group(2).lower()])


def parse_cpus(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number of CPUs")
    try:
        cpus = float(value)
    except (TypeError, ValueError):
        raise ValueError(f'"{value}" is not a number of CPUs (write e.g. 0.5 or 2)') from None
    if cpus < 0:
        raise ValueError(f"{value} CPUs: the number cannot be negative")
    return cpus


# --- the planner ---------------------------------------------------------------------------


class _Planner:
    def __init__(
        self,
        document: dict[str, Any],
        project: str,
        env_files: Mapping[str, Mapping[str, str | None]] | None = None,
        variables: Mapping[str, str | None] | None = None,
        env_files_later: bool = False,
    ):
        self.document = document
        self.project = project
        self.env_files = env_files
        self.env_files_later = env_files_later
        self.variables = variables or {}
        self.problems: list[Problem] = []
        self.networks: dict[str, NetworkSpec] = {}
        self.volumes: dict[str, VolumeSpec] = {}
        self.default_used = False

    # errors

    def problem(self, message: str, path: tuple, code: str, hint: str = "") -> None:
        self.problems.append(
            Problem("error", message, path=format_path(path), code=code, hint=hint)
        )

    def bad_value(self, path: tuple, error: ValueError) -> None:
        where = format_path(path)
        self.problem(f"{where}: {error}", path, "compose-invalid-value")

    def raise_if_any(self) -> None:
        if not self.problems:
            return
        first = self.problems[0]
        message = first.message
        if len(self.problems) > 1:
            message += f" (and {len(self.problems) - 1} more problem(s))"
        raise ComposeError(
            message,
            path=first.path,
            code=first.code,
            hint=first.hint or None,
            problems=self.problems,
        )

    # top level

    def top_networks(self) -> None:
        declared = self.document.get("networks") or {}
        for key, config in declared.items():
            config = config or {}
            external = bool(config.get("external"))
            name = config.get("name") or (key if external else f"{self.project}_{key}")
            labels = {} if external else network_labels(self.project, key)
            labels.update(_str_dict(config.get("labels")))
            self.networks[key] = NetworkSpec(
                key=key,
                name=str(name),
                external=external,
                driver=config.get("driver"),
                driver_opts=_str_dict(config.get("driver_opts")),
                internal=bool(config.get("internal", False)),
                attachable=bool(config.get("attachable", False)),
                enable_ipv6=bool(config.get("enable_ipv6", False)),
                ipam=dict(config.get("ipam") or {}),
                labels=labels,
            )

    def top_volumes(self) -> None:
        declared = self.document.get("volumes") or {}
        for key, config in declared.items():
            config = config or {}
            external = bool(config.get("external"))
            name = config.get("name") or (key if external else f"{self.project}_{key}")
            labels = {} if external else volume_labels(self.project, key)
            labels.update(_str_dict(config.get("labels")))
            self.volumes[key] = VolumeSpec(
                key=key,
                name=str(name),
                external=external,
                driver=config.get("driver"),
                driver_opts=_str_dict(config.get("driver_opts")),
                labels=labels,
            )

    def network_list(self) -> list[NetworkSpec]:
        networks = list(self.networks.values())
        if self.default_used and DEFAULT_NETWORK not in self.networks:
            networks.insert(
                0,
                NetworkSpec(
                    key=DEFAULT_NETWORK,
                    name=f"{self.project}_{DEFAULT_NETWORK}",
                    labels=network_labels(self.project, DEFAULT_NETWORK),
                ),
            )
        return networks

    # services

    def service(self, name: str, config: dict[str, Any]) -> ServiceSpec:
        base = ("services", name)
        values: dict[str, Any] = {"name": name, "image": str(config.get("image") or "")}
        for key in ("command", "entrypoint"):
            values[key] = self.argv(config.get(key), (*base, key))
        values["environment"] = self.environment(config, base)
        values["labels"] = _str_dict(config.get("labels"))
        values["ports"] = self.ports(config.get("ports") or [], (*base, "ports"))
        values["volumes"] = self.service_volumes(config.get("volumes") or [], (*base, "volumes"))
        values["network_mode"] = config.get("network_mode")
        values["networks"] = self.service_networks(config, base)
        values["healthcheck"] = self.healthcheck(config.get("healthcheck"), (*base, "healthcheck"))
        deploy = config.get("deploy") or {}
        values["restart"] = _restart(config.get("restart"), deploy.get("restart_policy"))
        values["limits"], values["reservations"] = self.resources(config, deploy, base)
        values["replicas"] = self.replicas(config, deploy, base)
        for key in ("user", "working_dir", "container_name"):
            values[key] = None if config.get(key) is None else str(config[key])
        values["pull_policy"] = self.pull_policy(config.get("pull_policy"), base)
        values["depends_on"] = self.dependencies(name, config, base)
        values["extra"] = {
            key: value
            for key, value in config.items()
            if key not in _HANDLED and not str(key).startswith("x-")
        }
        values["build"] = self.build(config.get("build"), (*base, "build"))
        values["files"] = tuple(
            [
                *self.project_binds(config.get("volumes") or [], (*base, "volumes")),
                *self.mounted("configs", config.get("configs") or [], base),
                *self.mounted("secrets", config.get("secrets") or [], base),
            ]
        )
        self.problems.extend(unsupported_keys(name, config))
        spec = ServiceSpec(**values)
        return ServiceSpec(**{**values, "config_hash": config_hash(spec.hashed_config())})

    def environment(self, config: dict[str, Any], base: tuple) -> dict[str, str]:
        """The service's env-file values (in order, a later file winning), then its
        ``environment:`` over them; ``KEY`` alone in ``environment:`` unsets it."""
        values: dict[str, str] = {}
        for path, rel, required in _env_file_entries(config.get("env_file"), base):
            if self.env_files is None:
                if self.env_files_later:
                    continue
                self.problem(
                    f"{format_path(path)}: the env file ./{rel} is read from the project "
                    "folder, which this check does not have",
                    path,
                    "compose-env-file-unread",
                    "Check the project folder itself (its compose text with the project "
                    "loaded), as a deployment does.",
                )
                continue
            if rel in self.env_files:
                values.update(
                    {key: text for key, text in self.env_files[rel].items() if text is not None}
                )
            elif required:
                self.problem(
                    f"{format_path(path)}: the env file ./{rel} is not in the project",
                    path,
                    "project-file-missing",
                    "Add the file to the project, correct the path, or mark it "
                    "required: false when it is optional.",
                )
        for key, value in _pairs(config.get("environment")):
            if value is None:
                values.pop(key, None)
            else:
                values[key] = value
        return values

    def build_args(self, value: Any) -> dict[str, str]:
        """``args`` as a mapping; a name without a value takes it from the variables (as
        compose from its environment), and is left out when they have none."""
        args = {}
        for key, text in _pairs(value):
            if text is None:
                text = self.variables.get(key)
            if text is not None:
                args[key] = text
        return args

    def pull_policy(self, value: Any, base: tuple) -> str:
        policy = _PULL_ALIASES.get(str(value), str(value)) if value is not None else "missing"
        if policy not in PULL_POLICIES:
            path = (*base, "pull_policy")
            self.problem(
                f'{format_path(path)}: unknown pull_policy "{value}"',
                path,
                "compose-invalid-value",
                "Use one of: " + ", ".join(PULL_POLICIES) + ".",
            )
            return "missing"
        return policy

    def project_path(self, value: Any, path: tuple, what: str) -> str | None:
        """A project-relative path, normalised ("./a/../b" -> "b"); None (and a problem)
        for a path outside the project."""
        text = str(value)
        if text.startswith("~") or text.startswith("/") or "://" in text:
            self.problem(
                f'{format_path(path)}: the {what} "{text}" is not a path of the project',
                path,
                "compose-outside-project",
                "Use a path relative to the compose file, such as ./config/app.conf.",
            )
            return None
        normal = posixpath.normpath(text)
        if normal == ".." or normal.startswith("../"):
            self.problem(
                f'{format_path(path)}: the {what} "{text}" is outside the project',
                path,
                "compose-outside-project",
                "Keep the files a stack uses inside its project folder.",
            )
            return None
        return normal

    def build(self, value: Any, path: tuple) -> BuildSpec | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            value = {"context": value}
        for key in sorted(set(map(str, value)) - _BUILD_KEYS):
            if key.startswith("x-"):
                continue
            self.problem(
                f"{format_path((*path, key))}: build {key} is not supported by WindFlow yet",
                (*path, key),
                "compose-unsupported",
                "Remove it: WindFlow builds with the classic builder (context, dockerfile, "
                "args, target, labels).",
            )
        context = self.project_path(value.get("context") or ".", (*path, "context"), "context")
        dockerfile = posixpath.normpath(str(value.get("dockerfile") or "Dockerfile"))
        if dockerfile.startswith("/") or dockerfile == ".." or dockerfile.startswith("../"):
            self.problem(
                f'{format_path((*path, "dockerfile"))}: the Dockerfile "{dockerfile}" is '
                "outside the build context",
                (*path, "dockerfile"),
                "compose-outside-project",
                "Give the Dockerfile's path relative to the build context.",
            )
        shm_size = None
        if value.get("shm_size") is not None:
            try:
                shm_size = parse_memory(value["shm_size"])
            except ValueError as error:
                self.bad_value((*path, "shm_size"), error)
        hosts = value.get("extra_hosts") or {}
        if isinstance(hosts, list):
            hosts = dict(
                str(item).partition("=")[::2] if "=" in str(item) else str(item).partition(":")[::2]
                for item in hosts
            )
        cache_from = value.get("cache_from") or ()
        return BuildSpec(
            context=context or ".",
            dockerfile=dockerfile,
            args=self.build_args(value.get("args")),
            target=None if value.get("target") is None else str(value["target"]),
            labels=_str_dict(value.get("labels")),
            network=None if value.get("network") is None else str(value["network"]),
            extra_hosts={str(k): str(v) for k, v in dict(hosts).items()},
            shm_size=shm_size,
            no_cache=bool(value.get("no_cache", False)),
            pull=bool(value.get("pull", False)),
            cache_from=tuple(str(item) for item in cache_from),
        )

    def project_binds(self, volumes: list, path: tuple) -> list[ProjectFile]:
        """The relative bind mounts of a service (``./nginx.conf:/etc/nginx/nginx.conf``):
        files of the project, served from the revision's files folder on the server."""
        out = []
        for volume in volumes:
            try:
                mount = _mount(volume)
            except ValueError:
                continue  # service_volumes says so
            if mount["type"] != "bind" or not _in_project(mount["source"]):
                continue  # a host path (~ and ../ included): the compose policy judges it
            source = posixpath.normpath(str(mount["source"]))
            out.append(ProjectFile(source, mount["target"], bool(mount["read_only"]), kind="bind"))
        return out

    def mounted(self, section: str, entries: Any, base: tuple) -> list[ProjectFile]:
        """A service's ``configs:`` or ``secrets:`` (short or long syntax) as project files,
        from the top-level declaration of each."""
        kind = section[:-1]
        declared = self.document.get(section) or {}
        out = []
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            path = (*base, section, index)
            if isinstance(entry, dict):
                key, target = str(entry.get("source") or ""), entry.get("target")
            else:
                key, target = str(entry), None
            top = declared.get(key) if isinstance(declared, dict) else None
            if top is None:
                self.problem(
                    f'{format_path(path)}: the {kind} "{key}" is not declared under the '
                    f"top-level {section}:",
                    path,
                    "compose-undeclared-" + kind,
                    f"Add it at the top level: {section}: {{{key}: {{file: ./{key}}}}}.",
                )
                continue
            top_path = (section, key)
            if kind == "secret":
                target = str(target or key)
                if not target.startswith("/"):
                    target = f"{SECRETS_DIR}/{target}"
            else:
                target = str(target or f"/{key}")
            if top.get("file") is not None:
                source = self.project_path(top["file"], (*top_path, "file"), f"{kind} file")
                if source is not None:
                    out.append(ProjectFile(source, target, True, kind=kind, name=key))
            elif kind == "secret" and top.get("environment"):
                name = str(top["environment"])
                out.append(ProjectFile("", target, True, kind="secret", secret=name, name=key))
            else:
                how = "file: (a file of the project)"
                if kind == "secret":
                    how += " or environment: (the name of a WindFlow secret)"
                self.problem(
                    f"{format_path(top_path)}: WindFlow takes a {kind} from {how} only",
                    top_path,
                    "compose-unsupported",
                    "external, content: and name: are not supported yet.",
                )
        return out

    def argv(self, value: Any, path: tuple) -> list[str] | None:
        if value is None:
            return None
        if isinstance(value, list):
            return [str(item) for item in value]
        try:
            return shlex.split(str(value))
        except ValueError as error:
            self.bad_value(path, ValueError(f"cannot split {str(value)!r} into words: {error}"))
            return None

    def ports(self, ports: list, path: tuple) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for index, port in enumerate(ports):
            try:
                out.extend(_port(port))
            except ValueError as error:
                self.bad_value((*path, index), error)
        return out

    def service_volumes(self, volumes: list, path: tuple) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for index, volume in enumerate(volumes):
            try:
                mount = _mount(volume)
            except ValueError as error:
                self.bad_value((*path, index), error)
                continue
            if mount["type"] == "bind" and _in_project(mount["source"]):
                continue  # a project file (project_binds)
            if mount["type"] == "volume" and mount["source"]:
                declared = self.volumes.get(mount["source"])
                if declared is None:
                    self.problem(
                        f'{format_path((*path, index))}: the volume "{mount["source"]}" is '
                        "not declared under the top-level volumes:",
                        (*path, index),
                        "compose-undeclared-volume",
                        f"Add it at the top level: volumes: {{{mount['source']}: {{}}}}, or "
                        "use a path (./data, /srv/data) for a bind mount.",
                    )
                    continue
                mount["source"] = declared.name
            out.append(mount)
        return out

    def service_networks(self, config: dict[str, Any], base: tuple) -> dict[str, dict]:
        if config.get("network_mode"):
            return {}
        given = config.get("networks")
        if not given:
            given = {DEFAULT_NETWORK: None}
        elif isinstance(given, list):
            given = {key: None for key in given}
        out: dict[str, dict] = {}
        for key, options in given.items():
            spec = self.networks.get(key)
            if spec is None and key == DEFAULT_NETWORK:
                self.default_used = True
                docker_name = f"{self.project}_{DEFAULT_NETWORK}"
            elif spec is None:
                path = (*base, "networks", key)
                self.problem(
                    f'{format_path(path)}: the network "{key}" is not declared under the '
                    "top-level networks:",
                    path,
                    "compose-undeclared-network",
                    f"Add it at the top level: networks: {{{key}: {{}}}}.",
                )
                continue
            else:
                docker_name = spec.name
            options = dict(options or {})
            options["aliases"] = [str(alias) for alias in options.get("aliases") or []]
            out[docker_name] = options
        return out

    def healthcheck(self, value: Any, path: tuple) -> dict[str, Any] | None:
        if value is None:
            return None
        if value.get("disable"):
            return {"test": ["NONE"]}
        out: dict[str, Any] = {}
        test = value.get("test")
        if isinstance(test, str):
            out["test"] = ["CMD-SHELL", test]
        elif test is not None:
            out["test"] = [str(item) for item in test]
        for key in ("interval", "timeout", "start_period", "start_interval"):
            if value.get(key) is not None:
                try:
                    out[key] = parse_duration(value[key])
                except ValueError as error:
                    self.bad_value((*path, key), error)
        if value.get("retries") is not None:
            try:
                out["retries"] = int(value["retries"])
            except (TypeError, ValueError):
                self.bad_value((*path, "retries"), ValueError("retries must be a whole number"))
        return out

    def resources(self, config: dict, deploy: dict, base: tuple) -> tuple[dict, dict]:
        resources = deploy.get("resources") or {}
        limits = self.resource_set(
            resources.get("limits") or {},
            {"memory": "mem_limit", "cpus": "cpus", "pids": "pids_limit"},
            config,
            (*base, "deploy", "resources", "limits"),
            base,
        )
        reservations = self.resource_set(
            resources.get("reservations") or {},
            {"memory": "mem_reservation"},
            config,
            (*base, "deploy", "resources", "reservations"),
            base,
        )
        return limits, reservations

    def resource_set(
        self, section: dict, legacy: dict[str, str], config: dict, path: tuple, base: tuple
    ) -> dict[str, Any]:
        parsers = {"memory": parse_memory, "cpus": parse_cpus, "pids": _whole}
        out: dict[str, Any] = {}
        for key, parse in parsers.items():
            new_value = old_value = None
            try:
                if section.get(key) is not None:
                    new_value = parse(section[key])
            except ValueError as error:
                self.bad_value((*path, key), error)
            old_key = legacy.get(key)
            try:
                if old_key and config.get(old_key) is not None:
                    old_value = parse(config[old_key])
            except ValueError as error:
                self.bad_value((*base, old_key), error)
            if new_value is not None and old_value is not None and new_value != old_value:
                self.problem(
                    f"{format_path((*base, old_key))} and {format_path((*path, key))} say "
                    "different things",
                    (*base, old_key),
                    "compose-conflicting-values",
                    f"Keep only deploy.resources.{path[-1]}.{key}.",
                )
            value = new_value if new_value is not None else old_value
            if value is not None:
                out[key] = value
        return out

    def replicas(self, config: dict, deploy: dict, base: tuple) -> int:
        for value, path in (
            (deploy.get("replicas"), (*base, "deploy", "replicas")),
            (config.get("scale"), (*base, "scale")),
        ):
            if value is not None:
                try:
                    replicas = _whole(value)
                except ValueError as error:
                    self.bad_value(path, error)
                    return 1
                if replicas < 0:
                    self.bad_value(path, ValueError("the number of replicas cannot be negative"))
                    return 1
                return replicas
        return 1

    def dependencies(self, name: str, config: dict, base: tuple) -> dict[str, str]:
        services = self.document.get("services") or {}
        edges: dict[str, str] = {}
        depends_on = config.get("depends_on") or {}
        path = (*base, "depends_on")
        if isinstance(depends_on, list):
            depends_on = {dependency: {} for dependency in depends_on}
        for dependency, options in depends_on.items():
            options = options or {}
            condition = options.get("condition") or DEFAULT_CONDITION
            if condition not in CONDITIONS:
                self.problem(
                    f'{format_path((*path, dependency))}: unknown condition "{condition}"',
                    (*path, dependency, "condition"),
                    "compose-invalid-value",
                    "Use one of: " + ", ".join(CONDITIONS) + ".",
                )
                continue
            if dependency not in services:
                if options.get("required", True) is False:
                    continue  # an optional dependency that is not in this file
                self.unknown_service(name, dependency, path)
                continue
            edges[str(dependency)] = condition
        # Implicit dependencies, as docker compose has them.
        implicit: list[tuple[str, tuple]] = []
        for index, link in enumerate(config.get("links") or []):
            implicit.append((str(link).split(":", 1)[0], (*base, "links", index)))
        for index, source in enumerate(config.get("volumes_from") or []):
            source = str(source)
            if not source.startswith("container:"):
                implicit.append((source.split(":", 1)[0], (*base, "volumes_from", index)))
        mode = str(config.get("network_mode") or "")
        if mode.startswith("service:"):
            implicit.append((mode.split(":", 1)[1], (*base, "network_mode")))
        for dependency, where in implicit:
            if dependency not in services:
                self.unknown_service(name, dependency, where)
            else:
                edges.setdefault(dependency, DEFAULT_CONDITION)
        return edges

    def unknown_service(self, name: str, dependency: str, path: tuple) -> None:
        services = ", ".join(sorted(self.document.get("services") or {}))
        self.problem(
            f'{format_path(path)}: service "{name}" depends on "{dependency}", which is not '
            "a service of this file",
            path,
            "compose-unknown-service",
            f"Services of this file: {services}.",
        )


def unsupported_keys(name: str, config: Any) -> list[Problem]:
    """The keys of service `name` that the Docker driver would not apply (compose
    ``secrets:``, ``configs:``, ``profiles``, link aliases...): refused, never dropped.
    Only the names of the keys are read, so a file with other errors is checked too."""
    if not isinstance(config, dict):
        return []
    base = ("services", name)
    keys = {str(key) for key in config if not str(key).startswith("x-")}
    refused = sorted(key for key in keys - _HANDLED if key not in APPLIED_EXTRA)
    if "volumes_from" in keys:
        refused.append("volumes_from")
    links = config.get("links")
    if isinstance(links, list) and any(":" in str(link) for link in links):
        # A plain link only orders start-up (the service name resolves anyway).
        refused.append("links")
    problems = []
    for key in sorted(refused):
        path = (*base, key)
        instead = _INSTEAD.get(key, "remove it, or ask for it to be supported")
        problems.append(
            Problem(
                "error",
                f"{format_path(path)}: {key} is not supported by WindFlow yet",
                path=format_path(path),
                code="compose-unsupported",
                hint=f"Instead, {instead}.",
            )
        )
    return problems


def _env_file_entries(value: Any, base: tuple) -> list[tuple[tuple, str, bool]]:
    """(document path, project-relative path, required) of each ``env_file:`` entry, in
    order (a string, a list of strings, or of ``{path, required, format}``)."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    entries = []
    for index, item in enumerate(items):
        at = (*base, "env_file") if not isinstance(value, list) else (*base, "env_file", index)
        required = True
        if isinstance(item, dict):
            required = item.get("required", True) is not False
            item = item.get("path")
            at = (*at, "path")
        if item is None:
            continue
        entries.append((at, posixpath.normpath(str(item)), required))
    return entries


def env_file_notes(document: Any) -> list[Problem]:
    """A note (info) per ``env_file:`` entry of a project's merged text checked without its
    folder: its values are read from the project when the stack deploys, not here."""
    services = document.get("services") if isinstance(document, dict) else None
    notes = []
    for name, config in (services or {}).items() if isinstance(services, dict) else ():
        if not isinstance(config, dict):
            continue
        for path, rel, _required in _env_file_entries(config.get("env_file"), ("services", name)):
            notes.append(
                Problem(
                    "info",
                    f"{format_path(path)}: the env file ./{rel} is read from the project "
                    "folder when the stack deploys (not checked here)",
                    path=format_path(path),
                    code="compose-env-file-unread",
                )
            )
    return notes


def _in_project(source: Any) -> bool:
    """A bind source inside the project (``./conf``, ``conf/app.ini``, ``a/../b``): not a
    host path (``/srv``), a home path (``~``) nor one that climbs out (``../x``), which stay
    host paths for the compose policy (a project folder refuses them when it is loaded)."""
    text = str(source or "")
    if not text or text.startswith(("/", "~")):
        return False
    normal = posixpath.normpath(text)
    return normal != ".." and not normal.startswith("../")


def _whole(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a whole number")
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError(f'"{value}" is not a whole number') from None


def _str_dict(value: Any) -> dict[str, str]:
    """A list_or_dict of labels / options -> ``{str: str}`` (``KEY`` alone -> "")."""
    if not value:
        return {}
    if isinstance(value, dict):
        return {str(k): "" if v is None else _scalar(v) for k, v in value.items()}
    out = {}
    for item in value:
        key, _, text = str(item).partition("=")
        out[key] = text
    return out


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _pairs(value: Any) -> list[tuple[str, str | None]]:
    """A list_or_dict of ``environment`` / ``args``: ``{KEY: value}`` or ``["KEY=value"]``
    -> ``[(KEY, "value")]``; ``KEY`` with no value (``KEY`` in list form, ``KEY:`` in
    mapping form) -> ``(KEY, None)``."""
    if not value:
        return []
    if isinstance(value, dict):
        return [(str(k), None if v is None else _scalar(v)) for k, v in value.items()]
    return [
        (key, text if equals else None)
        for key, equals, text in (str(item).partition("=") for item in value)
    ]


def _restart(restart: Any, policy: Any) -> str:
    if restart is not None:
        return str(restart)
    if policy and policy.get("condition"):
        condition = str(policy["condition"])
        return {"none": "no", "any": "always"}.get(condition, condition)
    return "no"


def _port_range(text: str) -> list[int]:
    low, dash, high = text.partition("-")
    if not low.isdigit() or (dash and not high.isdigit()):
        raise ValueError(f'"{text}" is not a port number or range')
    first, last = int(low), int(high) if dash else int(low)
    if not 0 < first <= last <= 65535:
        raise ValueError(f'"{text}" is not a port number or range (1-65535)')
    return list(range(first, last + 1))


def _port(port: Any) -> list[dict[str, Any]]:
    """One ports: entry (short or long syntax) -> ``[{host_ip, published, target,
    protocol}]``, one per container port."""
    if isinstance(port, dict):
        published = port.get("published")
        if published is not None:
            text = str(published)
            published = int(text) if text.isdigit() else text
            if isinstance(published, str):
                _port_range(published)
        targets = _port_range(str(port.get("target")))
        return [
            {
                "host_ip": port.get("host_ip") or None,
                "published": published,
                "target": target,
                "protocol": str(port.get("protocol") or "tcp"),
            }
            for target in targets
        ]
    if isinstance(port, bool):
        raise ValueError(f"{port!r} is not a port")
    text = str(port).strip()
    spec, _, protocol = text.partition("/")
    host_ip = ""
    if spec.startswith("["):  # [::1]:5432:5432
        end = spec.find("]")
        if end < 0 or spec[end + 1 : end + 2] != ":":
            raise ValueError(f'"{text}" is not a port mapping')
        host_ip, spec = spec[1:end], spec[end + 2 :]
        parts = spec.split(":")
        if len(parts) != 2:
            raise ValueError(f'"{text}" is not a port mapping')
        published_text: str | None = parts[0]
    else:
        parts = spec.split(":")
        if len(parts) == 1:
            published_text = None
        elif len(parts) == 2:
            published_text = parts[0]
        else:
            host_ip, published_text = ":".join(parts[:-2]), parts[-2]
    target_text = parts[-1]
    targets = _port_range(target_text)
    publish: list[int | str | None] = [None] * len(targets)
    if published_text:
        published = _port_range(published_text)
        if len(published) == len(targets):
            publish = list(published)
        elif len(targets) == 1:
            publish = [published_text]  # any free port of the range
        else:
            raise ValueError(f'"{text}": the published and container port ranges differ in length')
    return [
        {
            "host_ip": host_ip or None,
            "published": published_port,
            "target": target,
            "protocol": protocol or "tcp",
        }
        for published_port, target in zip(publish, targets, strict=True)
    ]


_READ_ONLY_MODES = {"ro", "readonly"}


def _mount(volume: Any) -> dict[str, Any]:
    """One volumes: entry -> ``{type, source, target, read_only}`` (+ options).
    ``source`` of a named volume is still its key here; the planner maps it."""
    if isinstance(volume, dict):
        kind = str(volume.get("type") or "volume")
        target = volume.get("target")
        if not target:
            raise ValueError("a mount needs a target (the path in the container)")
        mount = {
            "type": kind,
            "source": None if volume.get("source") in (None, "") else str(volume["source"]),
            "target": str(target),
            "read_only": bool(volume.get("read_only", False)),
        }
        for key in ("bind", "volume", "tmpfs", "consistency"):
            if volume.get(key) is not None:
                mount[key] = volume[key]
        return mount
    text = str(volume)
    parts = text.split(":")
    if len(parts) == 1:
        return {"type": "volume", "source": None, "target": text, "read_only": False}
    if len(parts) > 3:
        raise ValueError(f'"{text}" is not source:target[:mode]')
    source, target = parts[0], parts[1]
    modes = parts[2].split(",") if len(parts) == 3 else []
    if not source or not target:
        raise ValueError(f'"{text}" is not source:target[:mode]')
    kind = "bind" if source.startswith(("/", ".", "~")) or "/" in source else "volume"
    mount = {
        "type": kind,
        "source": source,
        "target": target,
        "read_only": any(mode in _READ_ONLY_MODES for mode in modes),
    }
    other = [mode for mode in modes if mode not in _READ_ONLY_MODES | {"rw"}]
    if other:
        mount["mode"] = ",".join(other)  # z, Z, nocopy, propagation...
    return mount


# --- order ---------------------------------------------------------------------------------


def waves(dependencies: dict[str, dict[str, str]]) -> list[list[str]]:
    """Services in waves: a service is in the first wave after all its dependencies.
    Within a wave, the order of ``dependencies`` (the file's order). A cycle raises
    :class:`ComposeError` naming it: ``web → api → web``."""
    placed: dict[str, int] = {}
    remaining = list(dependencies)
    order: list[list[str]] = []
    while remaining:
        wave = [
            name
            for name in remaining
            if all(dependency in placed for dependency in dependencies[name])
        ]
        if not wave:
            cycle = _cycle(remaining, dependencies)
            text = " → ".join(cycle)
            path = format_path(("services", cycle[0], "depends_on"))
            raise ComposeError(
                f"{path}: the services depend on each other in a cycle: {text}",
                path=path,
                code="compose-dependency-cycle",
                hint="Remove one of these depends_on entries so that one service can start first.",
            )
        for name in wave:
            placed[name] = len(order)
        order.append(wave)
        remaining = [name for name in remaining if name not in placed]
    return order


def _cycle(remaining: list[str], dependencies: dict[str, dict[str, str]]) -> list[str]:
    # Every remaining service has at least one remaining dependency: walk until a repeat.
    pending = set(remaining)
    walk: list[str] = [remaining[0]]
    while True:
        current = walk[-1]
        following = next(d for d in dependencies[current] if d in pending)
        if following in walk:
            return [*walk[walk.index(following) :], following]
        walk.append(following)


# --- entry point ---------------------------------------------------------------------------


def build_plan(
    document: dict[str, Any],
    project: str,
    *,
    env_files: Mapping[str, Mapping[str, str | None]] | None = None,
    variables: Mapping[str, str | None] | None = None,
    env_files_later: bool = False,
) -> Plan:
    """A :class:`Plan` from a validated, interpolated compose document. `env_files`: the
    values of the project's env files (``Project.env_files``: project-relative path ->
    KEY -> value), which ``env_file:`` entries name; without them a service with
    ``env_file:`` is refused (its values would be missing), unless `env_files_later` (a
    project's merged text checked without its folder, which a deployment reads: the plan
    leaves those values out, see :func:`env_file_notes`). `variables`: where a build arg
    named without a value takes it from. Raises
    :class:`ComposeError` for what the schema cannot see: an unknown dependency, a
    dependency cycle, an undeclared named volume or network, an unreadable duration,
    memory size or port."""
    planner = _Planner(document, project, env_files, variables, env_files_later)
    planner.top_networks()
    planner.top_volumes()
    services = [
        planner.service(str(name), config or {})
        for name, config in (document.get("services") or {}).items()
    ]
    planner.raise_if_any()
    order = waves({spec.name: spec.depends_on for spec in services})
    # Built images are not pulled, nor the image: a build names (another service may run it).
    built = {spec.image for spec in services if spec.build is not None}
    images = list(
        dict.fromkeys(
            spec.image
            for spec in services
            if spec.image and spec.build is None and spec.image not in built
        )
    )
    return Plan(
        project=project,
        networks=planner.network_list(),
        volumes=list(planner.volumes.values()),
        images=images,
        services=services,
        order=order,
    )


__all__ = [
    "CONDITIONS",
    "PULL_POLICIES",
    "BuildSpec",
    "NetworkSpec",
    "Plan",
    "ProjectFile",
    "ServiceSpec",
    "VolumeSpec",
    "build_plan",
    "compose_labels",
    "config_hash",
    "container_name",
    "env_file_notes",
    "parse_duration",
    "parse_memory",
    "unsupported_keys",
    "waves",
]
