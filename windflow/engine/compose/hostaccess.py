"""Host-level features of a compose document: what lets a container reach the server.

``host_features(document, project=...) -> list[HostFeature]``: for each service, every
setting that gives its containers something of the host they run on, each with a stable
``feature`` key (:data:`FEATURES`), the service, the place in the file (``path``, and the
``line`` when positions are given) and a sentence for people (``detail``).

Run it on the document that will be deployed (interpolated), so that ``${HOST_DIR}`` is
judged by its value; lint runs it on the file as written for its warnings. The rules read
values the way the Docker driver applies them (volumes are parsed by the planner's own
``_mount``), and think like an attacker: long-syntax binds, ``..``, trailing and doubled
slashes, ``/var/../etc``, named volumes that are really binds (``driver_opts: {o: bind,
device: /}``), external networks named ``host``, ``container:<name>`` namespaces and
``volumes_from`` outside the project.

Bind mounts: a relative source (``./data``) stays inside the project and is fine unless
``..`` takes it out. Any other host path is a ``host_path`` finding. A finding whose path
is not :attr:`~HostFeature.sensitive` can be lifted by an allow-list of host directories
(:func:`outside_allow_list`); sensitive paths (``/``, ``/etc``, ``/proc``, ``/var/run``...,
any ancestor of them, a home directory) and paths written with ``..`` never can.

Pure Python, no Django, no Docker.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from windflow.engine.compose import Path, format_path
from windflow.engine.compose.plan import _mount, container_name
from windflow.engine.text import Text, gettext_noop

PRIVILEGED = "privileged"
HOST_NAMESPACES = "host_namespaces"
HOST_PATH = "host_path"
DOCKER_SOCKET = "docker_socket"
CAP_ADD = "cap_add"
DEVICES = "devices"
SECURITY_OPT = "security_opt"
SYSCTLS = "sysctls"
# Not a feature of the policy: a volume or network that is not the project's own (external,
# or named). Harmless on an engine of the organisation's own; on an engine shared with other
# organisations it may be another organisation's, so it is always refused there.
FOREIGN_RESOURCE = "foreign_resource"

# Every feature, in the order pages and messages list them, with a short title.
FEATURES: dict[str, str] = {
    PRIVILEGED: "Privileged containers (privileged: true)",
    HOST_NAMESPACES: "Host namespaces (network_mode, pid, ipc, uts, userns_mode: host)",
    HOST_PATH: "Bind mounts of host paths outside the allow-list",
    DOCKER_SOCKET: "The Docker socket (docker.sock, /var/run, /run)",
    CAP_ADD: "Added Linux capabilities (cap_add)",
    DEVICES: "Host devices (devices)",
    SECURITY_OPT: "Security options that loosen confinement (security_opt)",
    SYSCTLS: "Kernel parameters (sysctls)",
}

# Host directories that are never lifted by an allow-list: themselves, anything below
# them, and any of their ancestors (``/``, ``/var``, ``/var/lib``) always need the feature.
SENSITIVE_TREES = (
    "/etc",
    "/proc",
    "/sys",
    "/dev",
    "/boot",
    "/root",
    "/home",
    "/run",
    "/var/run",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/var/lib/kubelet",
    "/var/log",
    "/var/spool",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/snap",
)
# Harmless files under sensitive trees: mounted read-only, they are no finding at all.
HARMLESS_READ_ONLY = frozenset({"/etc/localtime", "/etc/timezone"})
# Binds that hand the container the Docker engine (or the directory holding its socket).
SOCKET_NAMES = frozenset({"docker.sock", "containerd.sock", "podman.sock", "dockershim.sock"})
SOCKET_DIRECTORIES = frozenset({"/run", "/var/run", "/run/docker", "/var/run/docker"})
# Namespace keys and the value that shares the host's.
NAMESPACE_KEYS = {
    "network_mode": Text(gettext_noop("network")),
    "pid": "PID",
    "ipc": "IPC",
    "uts": "UTS",
    "userns_mode": Text(gettext_noop("user")),
    "cgroup": "cgroup",
}
SAFE_SECURITY_OPTS = ("no-new-privileges",)


@dataclass(frozen=True)
class HostFeature:
    """One use of a host-level feature. ``host_path`` is the normalised host path of a
    bind (None for other features); ``sensitive`` says an allow-list cannot lift it."""

    feature: str
    service: str
    path: str
    detail: str
    line: int | None = None
    host_path: str | None = None
    sensitive: bool = True
    # The project-relative file the line is in, for a project folder (else None).
    file: str | None = None

    def as_dict(self) -> dict:
        return {
            "feature": self.feature,
            "service": self.service,
            "path": self.path,
            "line": self.line,
            "detail": self.detail,
        }


# --- paths -----------------------------------------------------------------------------------


def normalise_host_path(path: str) -> str:
    """``//etc/./ssl/`` -> ``/etc/ssl``; ``/var/../etc`` -> ``/etc`` (lexically)."""
    path = re.sub(r"/+", "/", path.strip())
    normal = posixpath.normpath(path)
    return "/" if normal in ("//", "") else normal


def _below(path: str, tree: str) -> bool:
    return path == tree or path.startswith(tree.rstrip("/") + "/")


def is_sensitive(path: str) -> bool:
    """A normalised absolute path that no allow-list lifts."""
    if path in HARMLESS_READ_ONLY:
        return False
    if ".ssh" in path.split("/"):
        return True
    return any(_below(path, tree) or _below(tree, path) for tree in SENSITIVE_TREES)


def is_docker_socket(path: str) -> bool:
    return posixpath.basename(path) in SOCKET_NAMES or path in SOCKET_DIRECTORIES


def contains_docker_socket(path: str) -> bool:
    """An ancestor of the socket's directory (``/``, ``/var``): the socket comes with it."""
    return any(_below(directory, path) and directory != path for directory in SOCKET_DIRECTORIES)


def valid_allow_list_entry(path: str) -> str | None:
    """Why `path` cannot be an allow-list entry, or None when it can."""
    if not isinstance(path, str) or not path.strip():
        return "an empty path"
    text = path.strip()
    if not text.startswith("/"):
        return "not an absolute path"
    if ".." in text.split("/"):
        return "a path with '..'"
    if "\x00" in text or any(ord(ch) < 32 for ch in text):
        return "a path with control characters"
    if is_sensitive(normalise_host_path(text)):
        return "a sensitive host path (it always needs the feature)"
    return None


def outside_allow_list(
    features: Iterable[HostFeature], allowed_paths: Iterable[str]
) -> list[HostFeature]:
    """`features` less the bind mounts inside one of `allowed_paths` (absolute host
    directories). Sensitive paths and paths written with '..' are never lifted."""
    allowed = [normalise_host_path(p) for p in allowed_paths if valid_allow_list_entry(p) is None]
    kept = []
    for found in features:
        if (
            found.feature == HOST_PATH
            and not found.sensitive
            and found.host_path is not None
            and any(_below(found.host_path, entry) for entry in allowed)
        ):
            continue
        kept.append(found)
    return kept


# --- the scan ----------------------------------------------------------------------------------


class _Scan:
    def __init__(self, document: dict, project: str | None, positions):
        self.document = document
        self.project = project
        self.found: list[HostFeature] = []
        self.lines = {format_path(p): place[0] for p, place in (positions or {}).items()}
        services = document.get("services")
        self.services = services if isinstance(services, dict) else {}
        self.own_containers = self._own_containers()

    def _own_containers(self) -> set[str]:
        names: set[str] = set()
        for name, config in self.services.items():
            if not isinstance(config, dict):
                continue
            if isinstance(config.get("container_name"), str):
                names.add(config["container_name"])
            if self.project:
                prefix = container_name(self.project, str(name), 0)[:-1]
                names.add(prefix)  # a number follows; matched by _own_container
        return names

    def own_container(self, name: str) -> bool:
        name = name.strip().lstrip("/")
        for own in self.own_containers:
            if own.endswith("-"):
                if name.startswith(own) and name[len(own) :].isdigit():
                    return True
            elif name == own:
                return True
        return False

    def line_of(self, path: Path) -> int | None:
        text = format_path(path)
        while True:
            if text in self.lines:
                return self.lines[text]
            shorter = re.sub(r'(\.[^.\[]+|\[\d+\]|\["(?:[^"\\]|\\.)*"\])$', "", text)
            if shorter == text or not shorter:
                return None
            text = shorter

    def add(self, feature: str, service: str, path: Path, detail: str, **extra) -> None:
        self.found.append(
            HostFeature(
                feature=feature,
                service=service,
                path=format_path(path),
                detail=detail,
                line=self.line_of(path),
                **extra,
            )
        )

    # per service

    def service(self, name: str, config: dict) -> None:
        base: Path = ("services", name)
        at = format_path(base)
        if config.get("privileged") is not None and bool(config.get("privileged")):
            self.add(
                PRIVILEGED,
                name,
                (*base, "privileged"),
                Text(gettext_noop("%(at)s runs privileged"), at=at),
            )
        self.namespaces(name, config, base)
        self.networks(name, config, base)
        self.volumes(name, config, base)
        self.volumes_from(name, config, base)
        self.lists(name, config, base)
        self.security_opt(name, config, base)
        sysctls = config.get("sysctls")
        if sysctls:
            keys = list(sysctls) if isinstance(sysctls, dict) else [str(s) for s in _items(sysctls)]
            names = ", ".join(str(k).partition("=")[0] for k in keys)
            self.add(
                SYSCTLS,
                name,
                (*base, "sysctls"),
                Text(gettext_noop("%(at)s sets kernel parameters: %(names)s"), at=at, names=names),
            )

    def namespaces(self, name: str, config: dict, base: Path) -> None:
        at = format_path(base)
        for key, what in NAMESPACE_KEYS.items():
            value = config.get(key)
            if not isinstance(value, str) or not value.strip():
                continue
            mode = value.strip()
            if mode.lower() == "host":
                self.add(
                    HOST_NAMESPACES,
                    name,
                    (*base, key),
                    Text(
                        gettext_noop("%(at)s: shares the server's %(what)s namespace"),
                        at=f"{at}.{key}",
                        what=what,
                    ),
                )
            elif mode.lower().startswith("container:"):
                other = mode.split(":", 1)[1]
                if not self.own_container(other):
                    self.add(
                        HOST_NAMESPACES,
                        name,
                        (*base, key),
                        Text(
                            gettext_noop(
                                "%(at)s: joins the %(what)s namespace of the container "
                                "%(other)s, which is not part of this stack"
                            ),
                            at=f"{at}.{key}",
                            what=what,
                            other=other,
                        ),
                    )
            elif mode.lower().startswith("service:"):
                other = mode.split(":", 1)[1]
                if other not in self.services:
                    self.add(
                        HOST_NAMESPACES,
                        name,
                        (*base, key),
                        Text(
                            gettext_noop(
                                "%(at)s: joins the %(what)s namespace of %(other)s, which is "
                                "not a service of this stack"
                            ),
                            at=f"{at}.{key}",
                            what=what,
                            other=other,
                        ),
                    )

    def networks(self, name: str, config: dict, base: Path) -> None:
        given = config.get("networks")
        if isinstance(given, dict) and given:
            keys = list(given)
        elif isinstance(given, list) and given:
            keys = [key for key in given if isinstance(key, str)]
        elif config.get("network_mode"):
            return
        else:
            keys = ["default"]  # what the planner attaches a service without networks: to
        declared = self.document.get("networks")
        declared = declared if isinstance(declared, dict) else {}
        for key in keys:
            spec = declared.get(key)
            spec = spec if isinstance(spec, dict) else {}
            external = spec.get("external")
            if isinstance(external, dict):  # legacy external: {name: x}
                network = external.get("name") or spec.get("name") or key
            elif external:
                network = spec.get("name") or key
            else:
                # The driver reuses an existing network of that name, external or not.
                network = spec.get("name") or ""
            docker_name = str(network).strip()
            driver = str(spec.get("driver") or "").strip().lower()
            if docker_name.lower() == "host" or driver == "host":
                self.add(
                    HOST_NAMESPACES,
                    name,
                    (*base, "networks", key),
                    Text(
                        gettext_noop("%(at)s.networks: %(key)s is the server's host network"),
                        at=format_path(base),
                        key=key,
                    ),
                )
            elif docker_name:
                self.add(
                    FOREIGN_RESOURCE,
                    name,
                    (*base, "networks", key),
                    Text(
                        gettext_noop(
                            "%(at)s.networks: %(key)s is the network %(network)s, which this "
                            "stack does not own"
                        ),
                        at=format_path(base),
                        key=key,
                        network=docker_name,
                    ),
                )

    def volumes(self, name: str, config: dict, base: Path) -> None:
        volumes = config.get("volumes")
        if not isinstance(volumes, list):
            return
        declared = self.document.get("volumes")
        declared = declared if isinstance(declared, dict) else {}
        for index, volume in enumerate(volumes):
            path = (*base, "volumes", index)
            at = format_path(path)
            try:
                mount = _mount(volume)
            except (ValueError, TypeError, AttributeError):
                continue  # the planner refuses it
            source = mount.get("source")
            if not isinstance(source, str) or not source.strip():
                continue
            if mount["type"] == "bind":
                self.bind(
                    name,
                    path,
                    source,
                    bool(mount.get("read_only")),
                    Text(gettext_noop("%(at)s mounts"), at=at),
                )
            elif mount["type"] == "volume":
                spec = declared.get(source)
                foreign = _foreign_volume(source, spec)
                if foreign:
                    self.add(
                        FOREIGN_RESOURCE,
                        name,
                        path,
                        Text(
                            gettext_noop(
                                "%(at)s mounts the volume %(volume)s, which this stack does not own"
                            ),
                            at=at,
                            volume=foreign,
                        ),
                    )
                device = _volume_device(spec)
                if device is not None:
                    self.bind(
                        name,
                        path,
                        device,
                        bool(mount.get("read_only")),
                        Text(
                            gettext_noop("%(at)s mounts the volume %(volume)s, a bind of"),
                            at=at,
                            volume=source,
                        ),
                    )

    def bind(self, name: str, path: Path, source: str, read_only: bool, what: str) -> None:
        raw = source.strip()
        if raw.startswith("~"):
            self.add(
                HOST_PATH,
                name,
                path,
                Text(
                    gettext_noop("%(what)s the home directory path %(path)s"), what=what, path=raw
                ),
                host_path=raw,
                sensitive=True,
            )
            return
        if not raw.startswith("/"):
            # Relative: under the project's directory, unless '..' leaves it.
            relative = posixpath.normpath(raw)
            if relative == ".." or relative.startswith("../"):
                self.add(
                    HOST_PATH,
                    name,
                    path,
                    Text(
                        gettext_noop("%(what)s %(path)s, which leaves the project's directory"),
                        what=what,
                        path=raw,
                    ),
                    host_path=relative,
                    sensitive=True,
                )
            return
        host = normalise_host_path(raw)
        if host in HARMLESS_READ_ONLY and read_only:
            return
        dotted = ".." in raw.split("/")
        shown = (
            raw
            if host == raw
            else Text(gettext_noop("%(path)s (that is %(host)s)"), path=raw, host=host)
        )
        if is_docker_socket(host):
            self.add(
                DOCKER_SOCKET,
                name,
                path,
                Text(gettext_noop("%(what)s the Docker socket %(path)s"), what=what, path=shown),
                host_path=host,
            )
            return
        self.add(
            HOST_PATH,
            name,
            path,
            Text(gettext_noop("%(what)s the host path %(path)s"), what=what, path=shown),
            host_path=host,
            sensitive=dotted or is_sensitive(host) or host in HARMLESS_READ_ONLY,
        )
        if contains_docker_socket(host):
            self.add(
                DOCKER_SOCKET,
                name,
                path,
                Text(
                    gettext_noop("%(what)s %(path)s, which holds the Docker socket"),
                    what=what,
                    path=shown,
                ),
                host_path=host,
            )

    def volumes_from(self, name: str, config: dict, base: Path) -> None:
        sources = config.get("volumes_from")
        if not isinstance(sources, list):
            return
        for index, source in enumerate(sources):
            text = str(source).strip()
            if text.startswith("container:"):
                other = text.split(":", 2)[1]
                if not self.own_container(other):
                    self.add(
                        HOST_PATH,
                        name,
                        (*base, "volumes_from", index),
                        Text(
                            gettext_noop(
                                "%(at)s.volumes_from: mounts the volumes of the container "
                                "%(other)s, which is not part of this stack"
                            ),
                            at=format_path(base),
                            other=other,
                        ),
                    )
            elif text.split(":", 1)[0] not in self.services:
                self.add(
                    HOST_PATH,
                    name,
                    (*base, "volumes_from", index),
                    Text(
                        gettext_noop(
                            "%(at)s.volumes_from: mounts the volumes of %(other)s, which is not "
                            "a service of this stack"
                        ),
                        at=format_path(base),
                        other=text.split(":", 1)[0],
                    ),
                )

    def lists(self, name: str, config: dict, base: Path) -> None:
        at = format_path(base)
        caps = config.get("cap_add")
        if caps:
            items = [str(c) for c in _items(caps)]
            self.add(
                CAP_ADD,
                name,
                (*base, "cap_add"),
                Text(
                    gettext_noop("%(at)s adds capabilities: %(items)s"),
                    at=at,
                    items=", ".join(items),
                ),
            )
        devices = config.get("devices")
        if devices:
            items = [_device(d) for d in _items(devices)]
            self.add(
                DEVICES,
                name,
                (*base, "devices"),
                Text(
                    gettext_noop("%(at)s gets host devices: %(items)s"),
                    at=at,
                    items=", ".join(items),
                ),
            )

    def security_opt(self, name: str, config: dict, base: Path) -> None:
        options = config.get("security_opt")
        if not options:
            return
        items = _items(options)
        for index, option in enumerate(items):
            text = str(option).strip()
            if _safe_security_opt(text):
                continue
            self.add(
                SECURITY_OPT,
                name,
                (*base, "security_opt", index),
                Text(
                    gettext_noop(
                        "%(at)s.security_opt: %(option)s loosens the container's confinement"
                    ),
                    at=format_path(base),
                    option=text,
                ),
            )


def _items(value: Any) -> list:
    """A list as it is; a single value (a string, or a wrong type that the schema reports)
    as a list of one, so that a malformed file is still scanned, never crashes."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value)
    return [value]


def _device(item: Any) -> str:
    if isinstance(item, dict):  # long syntax (newer spec): {source, target, permissions}
        return str(item.get("source") or item)
    return str(item).split(":", 1)[0]


def _safe_security_opt(text: str) -> bool:
    match = re.match(r"([^=:]*)[=:]?(.*)", text)
    key, value = match.group(1).strip().lower(), match.group(2).strip().lower()
    if key in SAFE_SECURITY_OPTS:
        return True  # no-new-privileges (true or false) never loosens anything
    if key == "apparmor" and value == "docker-default":
        return True
    return key == "label" and value.startswith(("user:", "role:", "level:"))


def _foreign_volume(key: str, spec: Any) -> str | None:
    """The Docker name of a declared volume that is not the project's own (external, or
    given a ``name:``: the driver reuses an existing volume of that name), else None."""
    if not isinstance(spec, dict):
        return None
    external = spec.get("external")
    if isinstance(external, dict):
        return str(external.get("name") or spec.get("name") or key)
    if external:
        return str(spec.get("name") or key)
    return str(spec["name"]) if spec.get("name") else None


def _volume_device(spec: Any) -> str | None:
    """The host path a declared named volume binds (local driver with a ``device``)."""
    if not isinstance(spec, dict) or spec.get("external"):
        return None
    driver = str(spec.get("driver") or "local").strip().lower()
    options = spec.get("driver_opts")
    if driver != "local" or not isinstance(options, dict):
        return None
    device = options.get("device")
    if not isinstance(device, str) or not device.strip():
        return None
    if str(options.get("type") or "").strip().lower() in ("nfs", "nfs4", "cifs", "smb"):
        return None  # a network share, not the server's disk
    return device


def host_features(
    document: Any,
    *,
    project: str | None = None,
    positions: Mapping[Path, tuple[int, int]] | None = None,
) -> list[HostFeature]:
    """Every host-level feature each service of `document` uses (no allow-list applied).
    `project` (the compose project name) tells this stack's own containers apart in
    ``container:<name>``; `positions` (from ``load_compose_with_positions``) gives lines.
    Never raises on a malformed document."""
    if not isinstance(document, dict):
        return []
    scan = _Scan(document, project, positions)
    for name, config in scan.services.items():
        if isinstance(config, dict):
            scan.service(str(name), config)
    return scan.found


__all__ = [
    "FEATURES",
    "HostFeature",
    "host_features",
    "is_sensitive",
    "normalise_host_path",
    "outside_allow_list",
    "valid_allow_list_entry",
]
