"""Lint a compose document: risky or fragile settings, each rule with an id.

``lint(document) -> list[Problem]``. Lint findings are advice: their severity is
``warning`` or ``info``, never ``error`` (errors come from ``validate`` and mean
the stack cannot be deployed). ``RULES`` maps each id to its title, severity
and fix hint, for the documentation and the editor.

Run it on the document *before* interpolation: a secret written as
``${DB_PASSWORD}`` is fine, the same value pasted in clear is not. Lint never
raises on a malformed document (``validate`` reports those) and never repeats a
secret value in a message.
"""

from __future__ import annotations

import re
from typing import Any

from windflow.engine.compose import Problem, finding, hostaccess
from windflow.engine.compose.validate import Rule, format_path
from windflow.engine.text import Text, gettext_noop

RULES: dict[str, Rule] = {
    "privileged": Rule(
        gettext_noop("Privileged container"),
        "warning",
        gettext_noop(
            "Remove privileged: true and grant only what the service needs with cap_add: or "
            "devices:."
        ),
    ),
    "host-namespace": Rule(
        gettext_noop("Host network, PID, IPC, UTS or user namespace"),
        "warning",
        gettext_noop(
            "Remove network_mode/pid/ipc/uts/userns_mode: host (and container: namespaces of "
            "other stacks); publish the ports the service needs with ports:."
        ),
    ),
    "docker-socket": Rule(
        gettext_noop("Docker socket mounted"),
        "warning",
        gettext_noop(
            "Whoever controls this container controls the server. Put a socket proxy that allows "
            "only the API calls needed (e.g. tecnativa/docker-socket-proxy) in front of it."
        ),
    ),
    "host-path": Rule(
        gettext_noop("Sensitive host path mounted"),
        "warning",
        gettext_noop(
            "Mount a named volume or a dedicated directory instead (e.g. /srv/<app>), read-only "
            "(:ro) where possible."
        ),
    ),
    "image-not-pinned": Rule(
        gettext_noop("Image not pinned to a version"),
        "warning",
        gettext_noop(
            "Pin a version tag (nginx:1.27) or a digest (nginx@sha256:...) so a redeploy or a "
            "rollback runs the same image."
        ),
    ),
    "no-healthcheck": Rule(
        gettext_noop("No healthcheck"),
        "warning",
        gettext_noop(
            "Add a healthcheck: (test, interval, retries) so the deployment is called good only "
            "when the service really answers, unless the image already defines one."
        ),
    ),
    "no-limits": Rule(
        gettext_noop("No memory or CPU limit"),
        "info",
        gettext_noop(
            "Set deploy.resources.limits (memory: 512M, cpus: '1') so one service cannot starve "
            "the server."
        ),
    ),
    "secret-in-clear": Rule(
        gettext_noop("Secret written in clear in environment"),
        "warning",
        gettext_noop(
            "Write ${NAME} instead and store the value as a WindFlow secret; it is then resolved "
            "at deploy time and never shown."
        ),
    ),
    "database-port-public": Rule(
        gettext_noop("Database port published on all interfaces"),
        "warning",
        gettext_noop(
            "Drop the ports: entry (services on the same network reach it by name), or bind it "
            "to loopback: 127.0.0.1:5432:5432."
        ),
    ),
    "no-restart-policy": Rule(
        gettext_noop("No restart policy"),
        "info",
        gettext_noop(
            "Add restart: unless-stopped (or always) so the service comes back after a crash or "
            "a reboot."
        ),
    ),
    "container-name": Rule(
        gettext_noop("Fixed container name"),
        "warning",
        gettext_noop(
            "Remove container_name: WindFlow names each container after the stack, the "
            "service and its number, and the other services reach it by its service name."
        ),
    ),
    "project-name-ignored": Rule(
        gettext_noop("Top-level name ignored"),
        "warning",
        gettext_noop("Remove name: the stack's name is the compose project's name on the server."),
    ),
}

DATABASE_PORTS = {
    1433: "SQL Server",
    1521: "Oracle",
    2379: "etcd",
    3306: "MySQL/MariaDB",
    5432: "PostgreSQL",
    5984: "CouchDB",
    6379: "Redis",
    7687: "Neo4j",
    8086: "InfluxDB",
    8123: "ClickHouse",
    9042: "Cassandra",
    9200: "Elasticsearch",
    9300: "Elasticsearch",
    11211: "Memcached",
    26257: "CockroachDB",
    27017: "MongoDB",
}
ALL_INTERFACES = frozenset({"", "0.0.0.0", "::", "[::]"})  # noqa: S104 - what we look for

SECRET_NAME = re.compile(
    r"PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL",
    re.IGNORECASE,
)


def _problem(rule: str, message: str, path: str) -> Problem:
    meta = RULES[rule]
    return finding(rule, meta.severity, message, path, meta.hint)


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "yes"))


def _interpolated(value: Any) -> bool:
    return isinstance(value, str) and "$" in value.replace("$$", "")


# --- host-level features (windflow.engine.compose.hostaccess decides what they are) ------

_HOST_RULES = {
    hostaccess.PRIVILEGED: "privileged",
    hostaccess.HOST_NAMESPACES: "host-namespace",
    hostaccess.DOCKER_SOCKET: "docker-socket",
    hostaccess.HOST_PATH: "host-path",
}


def _host_problems(features: list[hostaccess.HostFeature]) -> list[Problem]:
    """privileged-host-path from the host-level features: privileged, host namespaces, the Docker
    socket, and sensitive host paths (a bind of an ordinary directory is the compose
    policy's business, not a warning)."""
    bind_paths = {f.path for f in features if f.feature == hostaccess.HOST_PATH}
    problems = []
    for found in features:
        rule = _HOST_RULES.get(found.feature)
        if rule is None:
            continue
        if found.feature == hostaccess.HOST_PATH and not found.sensitive:
            continue
        if found.feature == hostaccess.DOCKER_SOCKET and found.path in bind_paths:
            continue  # "/" holds the socket too: one warning for the mount is enough
        message = found.detail
        if found.feature == hostaccess.PRIVILEGED:
            message = Text(
                gettext_noop("%(path)s: %(service)s runs as a privileged container"),
                path=found.path,
                service=found.service,
            )
        problems.append(_problem(rule, message, found.path))
    return problems


# --- image ---------------------------------------------------------------------------------


def _image_problem(name: str, service: dict[str, Any]) -> Problem | None:
    image = service.get("image")
    if not isinstance(image, str) or not image.strip() or _interpolated(image):
        return None
    if service.get("build") is not None:
        return None  # the name the built image is tagged with, not one pulled
    if "@" in image:
        return None  # pinned by digest
    last = image.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    at = format_path(["services", name, "image"])
    if not tag:
        message = Text(
            gettext_noop("%(at)s: %(image)s has no tag, so it means :latest"), at=at, image=image
        )
        return _problem("image-not-pinned", message, at)
    if tag == "latest":
        message = Text(
            gettext_noop("%(at)s: %(image)s uses the moving tag :latest"), at=at, image=image
        )
        return _problem("image-not-pinned", message, at)
    return None


# --- healthcheck, limits, restart ----------------------------------------------------------


def _has_healthcheck(service: dict[str, Any]) -> bool:
    check = service.get("healthcheck")
    if not isinstance(check, dict) or _truthy(check.get("disable")):
        return False
    test = check.get("test")
    if isinstance(test, list) and test[:1] == ["NONE"]:
        return False
    return test is not None


def _limits(service: dict[str, Any]) -> tuple[bool, bool]:
    deploy = service.get("deploy")
    limits: Any = {}
    if isinstance(deploy, dict) and isinstance(deploy.get("resources"), dict):
        limits = deploy["resources"].get("limits") or {}
    if not isinstance(limits, dict):
        limits = {}
    memory = bool(limits.get("memory") or service.get("mem_limit"))
    cpu = bool(limits.get("cpus") or service.get("cpus") or service.get("cpu_quota"))
    return memory, cpu


def _has_restart_policy(service: dict[str, Any]) -> bool:
    if service.get("restart") is not None:
        return True
    deploy = service.get("deploy")
    return isinstance(deploy, dict) and deploy.get("restart_policy") is not None


# --- environment ---------------------------------------------------------------------------


def _environment(service: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(path, variable name, value) for each entry, in either syntax."""
    env = service.get("environment")
    entries: list[tuple[str, str, Any]] = []
    if isinstance(env, dict):
        for key, value in env.items():
            entries.append((str(key), str(key), value))
    elif isinstance(env, list):
        for index, item in enumerate(env):
            if isinstance(item, str):
                key, sep, value = item.partition("=")
                entries.append((f"[{index}]", key, value if sep else None))
    return entries


def _secret_problems(name: str, service: dict[str, Any]) -> list[Problem]:
    problems = []
    for suffix, key, value in _environment(service):
        if not SECRET_NAME.search(key) or key.upper().endswith("_FILE"):
            continue
        if value is None or isinstance(value, bool) or _interpolated(value):
            continue
        if isinstance(value, str) and not value.strip():
            continue
        base = format_path(["services", name, "environment"])
        at = base + suffix if suffix.startswith("[") else f"{base}.{suffix}"
        problems.append(
            _problem(
                "secret-in-clear",
                Text(
                    gettext_noop("%(at)s: %(key)s holds a secret written in clear in the file"),
                    at=at,
                    key=key,
                ),
                at,
            )
        )
    return problems


# --- ports ---------------------------------------------------------------------------------


def _split_short_port(spec: str) -> tuple[str, str | None, str]:
    """ "[host_ip:][published:]target[/proto]" -> (host_ip, published, target)."""
    spec = spec.split("/", 1)[0]
    host_ip = ""
    if spec.startswith("["):  # [::1]:5432:5432
        end = spec.find("]")
        host_ip, spec = spec[: end + 1], spec[end + 2 :]
    parts = spec.split(":")
    if len(parts) == 1:
        return host_ip, None, parts[0]
    if len(parts) == 2:
        return host_ip, parts[0], parts[1]
    return ":".join(parts[:-2]), parts[-2], parts[-1]


def _port_numbers(target: Any) -> list[int]:
    text = str(target).strip()
    if "-" in text:
        low, _, high = text.partition("-")
        if low.isdigit() and high.isdigit() and int(high) - int(low) < 1000:
            return list(range(int(low), int(high) + 1))
        return []
    return [int(text)] if text.isdigit() else []


def _port_problems(name: str, service: dict[str, Any]) -> list[Problem]:
    ports = service.get("ports")
    if not isinstance(ports, list):
        return []
    problems = []
    for index, port in enumerate(ports):
        if isinstance(port, dict):
            host_ip, target = str(port.get("host_ip") or ""), port.get("target")
        elif isinstance(port, int | str) and not isinstance(port, bool):
            host_ip, _published, target = _split_short_port(str(port))
        else:
            continue
        if host_ip.strip() not in ALL_INTERFACES or _interpolated(host_ip):
            continue
        found = [DATABASE_PORTS[n] for n in _port_numbers(target) if n in DATABASE_PORTS]
        if found:
            at = format_path(["services", name, "ports", index])
            problems.append(
                _problem(
                    "database-port-public",
                    Text(
                        gettext_noop(
                            "%(at)s publishes the %(database)s port %(port)s on every network "
                            "interface of the server"
                        ),
                        at=at,
                        database=found[0],
                        port=target,
                    ),
                    at,
                )
            )
    return problems


# --- the linter ----------------------------------------------------------------------------


def lint_service(
    name: str, service: dict[str, Any], host: list[hostaccess.HostFeature] | None = None
) -> list[Problem]:
    """The findings of one service; `host` are its host-level features (computed here
    when not given)."""
    problems: list[Problem] = []
    base = format_path(["services", name])
    if host is None:
        host = hostaccess.host_features({"services": {name: service}})
    problems.extend(_host_problems(host))
    image = _image_problem(name, service)
    if image:
        problems.append(image)
    if not _has_healthcheck(service):
        at = f"{base}.healthcheck"
        message = Text(gettext_noop("%(at)s has no healthcheck"), at=base)
        problems.append(_problem("no-healthcheck", message, at))
    memory, cpu = _limits(service)
    if not (memory and cpu):
        at = f"{base}.deploy.resources.limits"
        if not (memory or cpu):
            template = gettext_noop("%(at)s has no memory or CPU limit")
        elif memory:
            template = gettext_noop("%(at)s has no CPU limit")
        else:
            template = gettext_noop("%(at)s has no memory limit")
        problems.append(_problem("no-limits", Text(template, at=base), at))
    problems.extend(_secret_problems(name, service))
    problems.extend(_port_problems(name, service))
    if not _has_restart_policy(service):
        at = f"{base}.restart"
        message = Text(gettext_noop("%(at)s has no restart policy"), at=base)
        problems.append(_problem("no-restart-policy", message, at))
    if service.get("container_name") is not None:
        at = f"{base}.container_name"
        problems.append(
            _problem(
                "container-name",
                Text(
                    gettext_noop(
                        "%(path)s: a fixed container name stops a redeploy from starting the "
                        "new container beside the old one, and the service from running more "
                        "than one replica"
                    ),
                    path=at,
                ),
                at,
            )
        )
    return problems


def _top_level_problems(document: dict[str, Any]) -> list[Problem]:
    if document.get("name") is None:
        return []
    return [
        _problem(
            "project-name-ignored",
            Text(
                gettext_noop(
                    "name: WindFlow ignores the project name of the file and deploys it "
                    "under the stack's name"
                )
            ),
            "name",
        )
    ]


def lint(document: Any) -> list[Problem]:
    """Lint a loaded compose document: its top level, then every service."""
    if not isinstance(document, dict):
        return []
    problems = _top_level_problems(document)
    if not isinstance(document.get("services"), dict):
        return problems
    host = hostaccess.host_features(document)
    for name, service in document["services"].items():
        if isinstance(service, dict):
            mine = [f for f in host if f.service == str(name)]
            problems.extend(lint_service(str(name), service, mine))
    return problems
