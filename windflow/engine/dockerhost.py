"""Docker Engine API clients for targets: the local unix socket, or a server over SSH.

Pure Python (docker SDK, paramiko; no Django).

Over SSH, the docker SDK's own ``ssh://`` support reads ``~/.ssh/config`` and
``known_hosts`` and makes its own connection. Here every HTTP connection of the SDK is
instead a channel of *our* pinned, key-authenticated session (``windflow.engine.ssh``)
running ``docker system dial-stdio`` on the server: the same host key pin and private
key as every other SSH call, and one TCP connection for commands and API alike.

    client = docker_client_ssh(endpoint)          # verifies the API answers
    client.ping(); client.version()
    client.close()                                # closes its SSH session too
"""

from __future__ import annotations

import os
import socket
import stat
import threading

import docker
import requests
import requests.adapters
import urllib3
from docker.errors import APIError, DockerException
from docker.errors import NotFound as DockerNotFound
from docker.transport.basehttpadapter import BaseHTTPAdapter
from docker.transport.sshconn import SSHConnection, SSHConnectionPool

from . import ssh as sshmod
from .errors import (
    DockerUnavailable,
    EngineError,
    NotFound,
    PermissionDeniedDocker,
    Unreachable,
)

__all__ = [
    "DEFAULT_SOCKET",
    "classify_docker_output",
    "docker_client_local",
    "docker_client_over_session",
    "docker_client_ssh",
    "docker_error",
]

DEFAULT_SOCKET = "/var/run/docker.sock"
DIAL_STDIO = "docker system dial-stdio"
# HTTP connections to the engine over one SSH session, each a channel: two of the session's
# channels stay free for commands (ssh.MAX_CHANNELS in all).
API_CHANNELS = sshmod.MAX_CHANNELS - 2
_PLACEHOLDER_API = "1.24"  # replaced by the negotiated version before the client is returned


# ------------------------------------------------------------------ error classification


def classify_docker_output(output: str, *, user: str, host: str, exit_code: int) -> EngineError:
    """Turn what the docker CLI printed on a failure into the engine error that fits."""
    text = output.strip()
    low = text.lower()
    first = text.splitlines()[0] if text else f"exit code {exit_code}"
    if exit_code == 127 or "command not found" in low or ("not found" in low and "docker" in low):
        return DockerUnavailable(
            f"Docker is not installed on {host} (no docker command for {user}).",
            hint="Run Prepare server to install Docker Engine and the compose plugin.",
        )
    if "permission denied" in low:
        return PermissionDeniedDocker(
            f"{user} may not use the Docker socket on {host} ({first}).",
            hint=f"Add {user} to the docker group: sudo usermod -aG docker {user} "
            "(WindFlow reconnects, so the new group applies).",
        )
    if exit_code == 124:
        return DockerUnavailable(
            f"The Docker engine on {host} did not answer in time.",
            hint="Check the engine on the server: sudo systemctl status docker",
        )
    if "cannot connect to the docker daemon" in low or "is the docker daemon running" in low:
        return DockerUnavailable(
            f"Docker is installed on {host} but its engine is not running ({first}).",
            hint="Start it: sudo systemctl enable --now docker (or run Prepare server).",
        )
    return DockerUnavailable(f"Docker did not answer on {host}: {first[:300]}")


def _diagnose_remote(session: sshmod.SSHSession) -> EngineError:
    """Why the API over SSH failed, asked of the docker CLI on the server."""
    endpoint = session.endpoint
    try:
        result = session.run(
            "command -v docker >/dev/null 2>&1 || exit 127; "
            "docker version --format '{{.Server.Version}}' 2>&1",
            timeout=15,
        )
    except EngineError as exc:
        return exc
    if result.exit_code == 0:
        return DockerUnavailable(
            f"The Docker engine on {endpoint.host} answers its CLI but not "
            f"`{DIAL_STDIO}`: {result.stdout.strip()[:200]}",
            hint="Update the docker CLI on the server (Docker 18.09 or newer).",
        )
    return classify_docker_output(
        result.stdout + result.stderr,
        user=endpoint.user,
        host=endpoint.host,
        exit_code=result.exit_code,
    )


def docker_error(exc: BaseException, where: str) -> EngineError:
    """An engine error for an exception of the docker SDK / requests (for callers)."""
    if isinstance(exc, EngineError):
        return exc
    if isinstance(exc, requests.exceptions.Timeout | socket.timeout | TimeoutError):
        return DockerUnavailable(f"The Docker engine at {where} did not answer in time.")
    if isinstance(exc, DockerNotFound):
        return NotFound(f"The Docker engine at {where} answered: {exc.explanation}")
    if isinstance(exc, APIError):
        return DockerUnavailable(f"The Docker engine at {where} answered: {exc.explanation}")
    text = str(exc)
    if "Permission denied" in text or isinstance(exc, PermissionError):
        return PermissionDeniedDocker(f"No permission to use the Docker engine at {where}.")
    return DockerUnavailable(f"The Docker engine at {where} does not answer ({text[:300]}).")


# ---------------------------------------------------------------------- local socket


def _current_user() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:  # pragma: no cover - uid without a passwd entry (containers)
        return str(os.geteuid())


def check_socket_access(socket_path: str) -> None:
    """DockerUnavailable when there is no socket at `socket_path`, PermissionDeniedDocker
    when this process may not use it."""
    try:
        mode = os.stat(socket_path).st_mode
    except FileNotFoundError:
        raise DockerUnavailable(
            f"There is no Docker socket at {socket_path}.",
            hint="Install and start Docker on this machine, or correct the socket path.",
        ) from None
    except PermissionError:
        mode = None
    if mode is not None and not stat.S_ISSOCK(mode):
        raise DockerUnavailable(f"{socket_path} is not a unix socket.")
    if mode is None or not os.access(socket_path, os.R_OK | os.W_OK):
        user = _current_user()
        raise PermissionDeniedDocker(
            f"{user} may not use the Docker socket {socket_path}.",
            hint=f"Add {user} to the docker group: sudo usermod -aG docker {user} "
            "(then restart WindFlow).",
        )


def docker_client_local(
    socket_path: str = DEFAULT_SOCKET, timeout: float = 10
) -> docker.DockerClient:
    """A client for the engine behind a local unix socket, API version negotiated.
    Raises DockerUnavailable or PermissionDeniedDocker."""
    check_socket_access(socket_path)
    where = f"unix://{socket_path}"
    try:
        return docker.DockerClient(base_url=where, version="auto", timeout=timeout)
    except DockerException as exc:
        cause = exc.__context__ or exc
        if isinstance(cause, PermissionError) or "Permission denied" in str(exc):
            raise docker_error(PermissionError(), socket_path) from None
        raise DockerUnavailable(
            f"The Docker engine at {socket_path} does not answer ({str(exc)[:300]}).",
            hint="Start Docker on this machine: sudo systemctl start docker",
        ) from None


# ---------------------------------------------------------------------------- over SSH


class _SessionHolder:
    """The SSH session that the client's channels run on. An owned session is
    reconnected (same endpoint, same pin) when it drops."""

    def __init__(self, session: sshmod.SSHSession, owned: bool):
        self.session = session
        self.owned = owned
        self.generation = 0
        self._lock = threading.Lock()

    def current(self) -> sshmod.SSHSession:
        with self._lock:
            if not self.session.alive and self.owned:
                self.session.close()
                self.session = sshmod.connect(self.session.endpoint)
                self.generation += 1
            return self.session

    def close(self) -> None:
        if self.owned:
            self.session.close()


class _ChannelConnection(SSHConnection):
    """An HTTP connection whose socket is a channel running `docker system dial-stdio`."""

    def __init__(self, holder: _SessionHolder, timeout: float):
        urllib3.connection.HTTPConnection.__init__(self, "localhost", timeout=timeout)
        self.holder = holder
        self.timeout = timeout
        self.ssh_transport = None
        self.ssh_host = None

    def connect(self) -> None:
        session = self.holder.current()
        self.sock = session.open_channel_command(DIAL_STDIO, timeout=self.timeout)


class _ChannelConnectionPool(SSHConnectionPool):
    """At most `maxsize` connections (channels) at once: a request beyond them waits for one
    to come back (ssh.CHANNEL_WAIT at most), never opens another channel."""

    def __init__(self, holder: _SessionHolder, timeout: float, maxsize: int):
        super().__init__(ssh_client=None, timeout=timeout, maxsize=maxsize, host=None)
        self.holder = holder
        self.block = True

    def _new_conn(self):
        return _ChannelConnection(self.holder, self.timeout)

    def _get_conn(self, timeout=None):
        conn = super()._get_conn(sshmod.CHANNEL_WAIT if timeout is None else timeout)
        channel = getattr(conn, "sock", None)
        if channel is not None and (channel.closed or channel.eof_received):
            conn.close()  # its dial-stdio ended (the engine closed an idle connection)
        return conn


# Every URL of the engine goes through one pool: the SDK's adapters keep a pool per URL
# (each container's, each image's...), whose idle connections would each hold a channel.
_ONE_POOL = "engine"


class _PinnedSSHAdapter(BaseHTTPAdapter):
    __attrs__ = [*requests.adapters.HTTPAdapter.__attrs__, "pools", "timeout", "max_pool_size"]

    def __init__(self, holder: _SessionHolder, timeout: float, max_pool_size: int = API_CHANNELS):
        self.holder = holder
        self.timeout = timeout
        self.max_pool_size = max_pool_size
        self._generation = holder.generation
        self.pools = urllib3._collections.RecentlyUsedContainer(1, dispose_func=lambda p: p.close())
        super().__init__()

    def get_connection(self, url, proxies=None):
        self.holder.current()  # reconnects an owned session that dropped
        with self.pools.lock:
            if self.holder.generation != self._generation:
                # The session was replaced: connections on the old one are dead.
                self.pools.clear()
                self._generation = self.holder.generation
            pool = self.pools.get(_ONE_POOL)
            if pool:
                return pool
            pool = _ChannelConnectionPool(self.holder, self.timeout, self.max_pool_size)
            self.pools[_ONE_POOL] = pool
        return pool

    def close(self):
        super().close()
        self.holder.close()


def docker_client_over_session(
    session: sshmod.SSHSession, timeout: float = 10, *, owned: bool = False
) -> docker.DockerClient:
    """A Docker client whose HTTP connections are channels of `session` (which stays
    open when the client closes, unless `owned`). The API version is negotiated with the
    engine: DockerUnavailable / PermissionDeniedDocker say why when it does not answer."""
    holder = _SessionHolder(session, owned)
    # Placeholder base URL and version: no request goes there; both are replaced below.
    client = docker.DockerClient(
        base_url="tcp://127.0.0.1:9", version=_PLACEHOLDER_API, timeout=timeout
    )
    api = client.api
    adapter = _PinnedSSHAdapter(holder, timeout)
    api._custom_adapter = adapter
    api.mount("http+docker://ssh", adapter)
    api.base_url = "http+docker://ssh"  # the SDK's marker for SSH raw sockets (attach, logs)
    try:
        api._version = _negotiate(api, session)
    except BaseException:
        client.close()
        raise
    return client


def _negotiate(api: docker.APIClient, session: sshmod.SSHSession) -> str:
    try:
        return api.version(api_version=False)["ApiVersion"]
    except EngineError:
        raise
    except (requests.exceptions.RequestException, DockerException, OSError, KeyError) as exc:
        if not session.alive:
            raise Unreachable(f"{session.endpoint}: the SSH connection was lost.") from None
        if isinstance(exc, requests.exceptions.Timeout):
            raise DockerUnavailable(
                f"The Docker engine on {session.endpoint.host} did not answer in time.",
                hint="Check the engine on the server: sudo systemctl status docker",
            ) from None
        raise _diagnose_remote(session) from None


def docker_client_ssh(endpoint: sshmod.SSHEndpoint, timeout: float = 10) -> docker.DockerClient:
    """A Docker client for the engine on `endpoint`, over its own pinned SSH session
    (closed with the client; reconnected if it drops). Raises the SSH errors of
    ``ssh.connect`` and DockerUnavailable / PermissionDeniedDocker."""
    session = sshmod.connect(endpoint)
    return docker_client_over_session(session, timeout, owned=True)
