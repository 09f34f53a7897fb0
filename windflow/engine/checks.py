"""Connectivity checks of a target, check by check, each failure with a hint to fix it.

Pure Python (no Django).

    checks, facts = check_ssh_target(endpoint)
    checks, facts = check_local_socket("/var/run/docker.sock")

Over SSH the checks run in order on one connection: "ssh reachable" (TCP and SSH
handshake), "host key" (matches the pin), "authenticated", "ssh sessions" (the server
lets one connection open as many sessions as WindFlow uses), then one remote command
gathers everything else: "docker engine", "docker permission", "disk", "memory".
They stop at the first blocking failure (SSH-level, and no "docker permission" check
without an engine). A failed check with ``warning=True`` (low disk or memory) leaves
the target usable. ``code`` names the engine error class of a failure.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass

from . import dockerhost
from . import ssh as sshmod
from .errors import (
    ChannelLimit,
    DockerUnavailable,
    EngineError,
    PermissionDeniedDocker,
)
from .units import GiB, MiB, format_bytes

__all__ = [
    "DISK_WARN_BYTES",
    "MEMORY_WARN_BYTES",
    "Check",
    "Facts",
    "check_local_socket",
    "check_ssh_target",
]

DISK_WARN_BYTES = 5 * GiB
MEMORY_WARN_BYTES = 256 * MiB  # available memory below this: warn
FACTS_TIMEOUT = 20  # seconds for the remote facts command (docker calls inside: 8 s each)

SSH_REACHABLE = "ssh reachable"
HOST_KEY = "host key"
AUTHENTICATED = "authenticated"
SSH_SESSIONS = "ssh sessions"
DOCKER_SOCKET = "docker socket"
DOCKER_ENGINE = "docker engine"
DOCKER_PERMISSION = "docker permission"
DISK = "disk"
MEMORY = "memory"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    hint: str = ""
    duration_ms: float = 0
    code: str = ""  # the EngineError class name of a failure ("PermissionDeniedDocker")
    warning: bool = False  # a failure that leaves the target usable (low disk, memory)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Facts:
    os: str | None = None
    architecture: str | None = None
    cpus: int | None = None
    memory_bytes: int | None = None
    disk_free_bytes: int | None = None
    docker_version: str | None = None
    compose_version: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


def _failed(name: str, error: EngineError, started: float | None = None, ms: float = 0) -> Check:
    duration = _ms(started) if started is not None else ms
    return Check(name, False, str(error), error.hint, duration, code=error.code)


def _size(value: int | None) -> str:
    return format_bytes(value)


# ----------------------------------------------------------------------- SSH target

# One remote command gathers the facts and the docker state: key=value lines.
FACTS_SCRIPT = r"""
echo windflow_facts=1
export LC_ALL=C
T=
command -v timeout >/dev/null 2>&1 && T="timeout 8"
if [ -r /etc/os-release ]; then
  ( . /etc/os-release; printf 'os=%s\n' "${PRETTY_NAME:-${NAME:-}}" )
fi
printf 'kernel=%s\n' "$(uname -sr 2>/dev/null)"
printf 'arch=%s\n' "$(uname -m 2>/dev/null)"
printf 'cpus=%s\n' "$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc 2>/dev/null)"
awk '/^MemTotal:/ {printf "mem_total=%.0f\n", $2 * 1024}
     /^MemAvailable:/ {printf "mem_available=%.0f\n", $2 * 1024}' /proc/meminfo 2>/dev/null
d=/var/lib/docker
[ -d "$d" ] || d=/
df -Pk "$d" 2>/dev/null | awk 'NR == 2 {
  printf "disk_free=%.0f\ndisk_total=%.0f\n", $4 * 1024, $2 * 1024
  printf "disk_mount=%s\n", $6
}'
printf 'user=%s\n' "$(id -un 2>/dev/null)"
sock=/var/run/docker.sock
case "${DOCKER_HOST:-}" in unix://*) sock=${DOCKER_HOST#unix://} ;; esac
printf 'sock=%s\n' "$sock"
[ -S "$sock" ] && echo sock_exists=1
if command -v docker >/dev/null 2>&1; then
  printf 'docker_cli=%s\n' "$(command -v docker)"
  out=$($T docker version --format '{{.Server.Version}}' 2>&1)
  printf 'docker_rc=%s\n' "$?"
  printf '%s\n' "$out" | sed 's/^/docker_out=/'
  printf 'compose=%s\n' "$($T docker compose version --short 2>/dev/null)"
fi
exit 0
"""


def _parse(output: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in output.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        if key == "docker_out" and key in values:
            values[key] += "\n" + value
        else:
            values[key] = value.strip() if key != "docker_out" else value
    return values


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value not in (None, "") else None
    except ValueError:
        return None


def _facts_of(values: dict[str, str], docker_version: str | None) -> Facts:
    os_name = values.get("os") or values.get("kernel") or None
    compose = (values.get("compose") or "").strip().removeprefix("v") or None
    return Facts(
        os=os_name,
        architecture=values.get("arch") or None,
        cpus=_int(values.get("cpus")),
        memory_bytes=_int(values.get("mem_total")),
        disk_free_bytes=_int(values.get("disk_free")),
        docker_version=docker_version,
        compose_version=compose,
    )


def _disk_check(free: int | None, total: int | None, where: str, host: str) -> Check:
    if free is None:
        return Check(DISK, False, "Free disk space could not be read.", warning=True)
    detail = f"{_size(free)} free on {where}"
    if total:
        detail += f" (of {_size(total)})"
    if free < DISK_WARN_BYTES:
        return Check(
            DISK,
            False,
            f"Low disk space: {detail}; images and volumes need room.",
            f"Free space on {host} (docker system prune -a removes unused images), "
            "or grow the disk: keep at least 5 GiB free.",
            warning=True,
        )
    return Check(DISK, True, detail)


def _memory_check(total: int | None, available: int | None, host: str) -> Check:
    if total is None:
        return Check(MEMORY, False, "Memory could not be read.", warning=True)
    detail = f"{_size(total)} total"
    if available is not None:
        detail += f", {_size(available)} available"
    if available is not None and available < MEMORY_WARN_BYTES:
        return Check(
            MEMORY,
            False,
            f"Low memory: {detail}.",
            f"Stop unused containers on {host}, add memory, or add swap.",
            warning=True,
        )
    return Check(MEMORY, True, detail)


def _docker_checks(
    values: dict[str, str], endpoint: sshmod.SSHEndpoint, duration_ms: float
) -> tuple[list[Check], str | None]:
    """The "docker engine" and "docker permission" checks from the facts output."""
    host, sock = endpoint.host, values.get("sock") or dockerhost.DEFAULT_SOCKET
    user = values.get("user") or endpoint.user
    if not values.get("docker_cli"):
        if values.get("sock_exists"):
            error = DockerUnavailable(
                f"A Docker engine socket exists on {host} ({sock}) but there is no docker "
                f"command for {user}: WindFlow needs it (docker system dial-stdio).",
                hint="Run Prepare server to install the docker CLI and the compose plugin.",
            )
        else:
            error = DockerUnavailable(
                f"Docker is not installed on {host}.",
                hint="Run Prepare server to install Docker Engine and the compose plugin.",
            )
        return [_failed(DOCKER_ENGINE, error, ms=duration_ms)], None
    code = _int(values.get("docker_rc"))
    output = values.get("docker_out", "")
    version = output.strip().splitlines()[-1].strip() if code == 0 and output.strip() else None
    compose = (values.get("compose") or "").strip() or "not installed"
    if code == 0 and version:
        return [
            Check(
                DOCKER_ENGINE,
                True,
                f"Docker {version} (compose plugin {compose})",
                duration_ms=duration_ms,
            ),
            Check(DOCKER_PERMISSION, True, f"{user} can use the Docker socket {sock}"),
        ], version
    error = dockerhost.classify_docker_output(
        output, user=user, host=host, exit_code=code if code is not None else 1
    )
    if isinstance(error, PermissionDeniedDocker):
        engine = Check(
            DOCKER_ENGINE,
            True,
            f"Docker socket {sock} present (its version needs permission to read)",
            duration_ms=duration_ms,
        )
        return [engine, _failed(DOCKER_PERMISSION, error)], None
    return [_failed(DOCKER_ENGINE, error, ms=duration_ms)], None


def _sessions_check(session: sshmod.SSHSession) -> Check:
    """Whether one connection may hold the channels that a deployment opens at once."""
    started = time.monotonic()
    wanted = sshmod.MAX_CHANNELS
    try:
        allowed = session.probe_channels(wanted)
    except EngineError as error:
        return _failed(SSH_SESSIONS, error, started)
    if allowed < wanted:
        error = ChannelLimit(
            f"{session.endpoint.address} lets one SSH connection open only {allowed} "
            f"session(s) at once (sshd MaxSessions); WindFlow uses up to {wanted}, so "
            'deployments will be slow or fail with "refused a new channel".'
        )
        return _failed(SSH_SESSIONS, error, started)
    return Check(
        SSH_SESSIONS,
        True,
        f"{wanted} sessions at once on one connection",
        duration_ms=_ms(started),
    )


def check_ssh_target(
    endpoint: sshmod.SSHEndpoint,
    timeout: float = sshmod.CONNECT_TIMEOUT,
    *,
    pool: sshmod.SessionPool | None = None,
) -> tuple[list[Check], Facts | None]:
    """Check a target over SSH with a fresh connection (the test is real, not a pooled
    session that happens to be alive). Facts are None when no command could run.

    With `pool`, the healthy session is handed to it afterwards for reuse."""
    checks: list[Check] = []
    timeout = min(float(timeout), sshmod.CONNECT_TIMEOUT)
    try:
        pkey = sshmod.load_private_key(endpoint.private_key, endpoint.passphrase)
    except EngineError as error:
        return [_failed(AUTHENTICATED, error)], None

    # 1. ssh reachable: TCP, then an SSH server that completes a key exchange.
    started = time.monotonic()
    deadline = started + timeout
    try:
        sock = sshmod._open_socket(endpoint.host, endpoint.port, deadline, timeout)
        transport, host_key = sshmod._handshake(sock, endpoint.address, deadline, timeout)
    except EngineError as error:
        return [_failed(SSH_REACHABLE, error, started)], None
    checks.append(
        Check(
            SSH_REACHABLE,
            True,
            f"{endpoint.address} answers: {transport.remote_version or 'SSH'}",
            duration_ms=_ms(started),
        )
    )
    session: sshmod.SSHSession | None = None
    try:
        # 2. host key
        step = time.monotonic()
        try:
            sshmod._check_pin(endpoint, host_key)
        except EngineError as error:
            checks.append(_failed(HOST_KEY, error, step))
            return checks, None
        checks.append(
            Check(
                HOST_KEY,
                True,
                f"{host_key.key_type} {host_key.fingerprint} matches the pinned key",
                duration_ms=_ms(step),
            )
        )
        # 3. authenticated
        step = time.monotonic()
        try:
            sshmod._authenticate(transport, endpoint, pkey, deadline, timeout)
        except EngineError as error:
            checks.append(_failed(AUTHENTICATED, error, step))
            return checks, None
        checks.append(
            Check(
                AUTHENTICATED,
                True,
                f"logged in as {endpoint.user} with the key {sshmod.fingerprint(pkey)}",
                duration_ms=_ms(step),
            )
        )
        session = sshmod.SSHSession(endpoint, transport, host_key)
        # 4. ssh sessions (not blocking: the rest is still worth knowing)
        checks.append(_sessions_check(session))
        # 5-8: one remote command for everything else.
        step = time.monotonic()
        try:
            result = session.run(f"sh -c {shlex.quote(FACTS_SCRIPT)}", timeout=FACTS_TIMEOUT)
        except EngineError as error:
            checks.append(_failed(DOCKER_ENGINE, error, step))
            return checks, None
        values = _parse(result.stdout)
        if not values.get("windflow_facts"):
            output = (result.stdout + result.stderr).strip()
            checks.append(
                Check(
                    DOCKER_ENGINE,
                    False,
                    f"{endpoint.user} logged in but the server ran no command "
                    f"(exit code {result.exit_code}): {output[:200] or 'no output'}",
                    f"Give {endpoint.user} a login shell: sudo usermod -s /bin/bash "
                    f"{endpoint.user} (and no ForceCommand for it in sshd_config).",
                    _ms(step),
                    code="CommandFailed",
                )
            )
            return checks, None
        docker_checks, docker_version = _docker_checks(values, endpoint, _ms(step))
        checks.extend(docker_checks)
        checks.append(
            _disk_check(
                _int(values.get("disk_free")),
                _int(values.get("disk_total")),
                values.get("disk_mount") or "/",
                endpoint.host,
            )
        )
        checks.append(
            _memory_check(
                _int(values.get("mem_total")), _int(values.get("mem_available")), endpoint.host
            )
        )
        return checks, _facts_of(values, docker_version)
    finally:
        if session is not None and pool is not None and session.alive:
            pool.adopt(session)
        else:
            transport.close()


# ---------------------------------------------------------------------- local socket


def _meminfo() -> dict[str, int]:
    values: dict[str, int] = {}
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                fields = rest.split()
                if fields and fields[0].isdigit():
                    values[key] = int(fields[0]) * 1024
    except OSError:
        pass
    return values


def _local_compose_version(socket_path: str) -> str | None:
    docker_cli = shutil.which("docker")
    if not docker_cli:
        return None
    env = dict(os.environ, DOCKER_HOST=f"unix://{socket_path}")
    try:
        result = subprocess.run(  # noqa: S603 - fixed argv
            [docker_cli, "compose", "version", "--short"],
            capture_output=True,
            text=True,
            timeout=5,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    version = result.stdout.strip().removeprefix("v")
    return version if result.returncode == 0 and version else None


def check_local_socket(
    socket_path: str = dockerhost.DEFAULT_SOCKET, timeout: float = 5
) -> tuple[list[Check], Facts | None]:
    """Check the Docker engine behind a local unix socket: "docker engine" (socket and
    API version), "docker permission", "disk" (where the engine keeps its data, when
    this machine can see it) and "memory". Facts are None when the engine cannot be
    queried."""
    checks: list[Check] = []
    started = time.monotonic()
    try:
        dockerhost.check_socket_access(socket_path)
    except PermissionDeniedDocker as error:
        checks.append(
            Check(
                DOCKER_ENGINE,
                True,
                f"Docker socket {socket_path} present",
                duration_ms=_ms(started),
            )
        )
        checks.append(_failed(DOCKER_PERMISSION, error))
        return checks, None
    except EngineError as error:
        return [_failed(DOCKER_ENGINE, error, started)], None
    try:
        client = dockerhost.docker_client_local(socket_path, timeout=timeout)
        try:
            version = client.version()
            info = client.info()
        finally:
            client.close()
    except EngineError as error:
        return [_failed(DOCKER_ENGINE, error, started)], None
    except Exception as exc:
        return [_failed(DOCKER_ENGINE, dockerhost.docker_error(exc, socket_path), started)], None
    checks.append(
        Check(
            DOCKER_ENGINE,
            True,
            f"Docker {version.get('Version')} (API {version.get('ApiVersion')}) at {socket_path}",
            duration_ms=_ms(started),
        )
    )
    checks.append(Check(DOCKER_PERMISSION, True, f"this process can use {socket_path}"))
    root_dir = info.get("DockerRootDir") or "/"
    where = root_dir if os.path.isdir(root_dir) else "/"
    try:
        usage = shutil.disk_usage(where)
        free, total = usage.free, usage.total
    except OSError:
        free = total = None
    checks.append(_disk_check(free, total, where, "this machine"))
    meminfo = _meminfo()
    total_memory = info.get("MemTotal") or meminfo.get("MemTotal")
    checks.append(_memory_check(total_memory, meminfo.get("MemAvailable"), "this machine"))
    facts = Facts(
        os=info.get("OperatingSystem"),
        architecture=info.get("Architecture"),
        cpus=info.get("NCPU"),
        memory_bytes=total_memory,
        disk_free_bytes=free,
        docker_version=version.get("Version"),
        compose_version=_local_compose_version(socket_path),
    )
    return checks, facts
