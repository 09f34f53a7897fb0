"""A private OpenSSH server and system users, for SSH and engine tests (root).

sshd = start_sshd(Path("var/sshd"))    # private OpenSSH on 127.0.0.1, own host key
sshd.authorize("root", "ssh-ed25519 AAAA...")
ensure_system_user("nodocker", docker_access=False)
"""

from __future__ import annotations

import base64
import contextlib
import functools
import grp
import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .base import (
    HOST,
    DevServiceError,
    Service,
    fail,
    grant_traverse,
    is_root,
    previous_port,
    read_int,
    require_free_port,
    run,
    system_program,
)

SSHD = "/usr/sbin/sshd"
SSHD_TIMEOUT = 20
SSHD_PRIVSEP_DIR = Path("/run/sshd")


def openssh_fingerprint(public_key_line: str) -> str:
    """``SHA256:<base64, no padding>`` of an OpenSSH public key line, as `ssh-keygen -lf`."""
    try:
        blob = base64.b64decode(public_key_line.split()[1], validate=True)
    except (IndexError, ValueError):
        raise ValueError(f"not an OpenSSH public key line: {public_key_line[:40]!r}") from None
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def ssh_banner(port: int, host: str = HOST, timeout: float = 1.0) -> str | None:
    """The identification line (``SSH-2.0-...``) an SSH server sends, else None."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            data = b""
            while b"\n" not in data and len(data) < 512:
                chunk = sock.recv(256)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    line = data.split(b"\n", 1)[0].strip().decode(errors="replace")
    return line if line.startswith("SSH-") else None


@functools.cache
def _sshd_knows(option: str) -> bool:
    """True when this sshd accepts `option` (PerSourcePenalties exists from OpenSSH 9.8)."""
    try:
        result = subprocess.run(
            [SSHD, "-t", "-f", "/dev/null", "-o", f"{option}=no"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=SSHD_TIMEOUT,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return b"Bad configuration option" not in result.stderr


def _sshd_quote(value: str) -> str:
    if any(ch in value for ch in '"\n'):
        raise DevServiceError(f"sshd cannot use a path holding quotes or newlines: {value!r}")
    return f'"{value}"'


@dataclass
class Sshd(Service):
    """A private OpenSSH server on 127.0.0.1 with its own host key and key-only logins.
    `docker_host` (``unix:///...``) is set as DOCKER_HOST in every session, so that the
    docker CLI on "the server" talks to that engine (the test run's private one)."""

    name = "sshd"
    process_name = "sshd"
    log_name = "sshd.log"
    pid_name = "sshd.pid"
    stop_timeout = SSHD_TIMEOUT  # open sessions end on their own

    data_dir: Path
    port: int
    host: str = HOST
    started: bool = True  # False when an already running server was reused
    docker_host: str | None = None
    options: dict = field(default_factory=dict)  # sshd_config lines beyond the stock ones

    @property
    def config_file(self) -> Path:
        return self.data_dir / "sshd_config"

    @property
    def host_key_file(self) -> Path:
        return self.data_dir / "ssh_host_ed25519_key"

    @property
    def authorized_keys_dir(self) -> Path:
        return self.data_dir / "authorized_keys"

    @property
    def host_public_key(self) -> str:
        """``ssh-ed25519 AAAA...`` (no comment): pin it in known_hosts / paramiko."""
        fields = Path(f"{self.host_key_file}.pub").read_text().split()
        return f"{fields[0]} {fields[1]}"

    @property
    def host_key_fingerprint(self) -> str:
        return openssh_fingerprint(self.host_public_key)

    def authorize(self, user: str, public_key_line: str) -> None:
        """Let `user` log in with `public_key_line` (appended to its authorized_keys)."""
        line = public_key_line.strip()
        if not line or "\n" in line:
            raise ValueError("authorize() takes one OpenSSH public key line")
        openssh_fingerprint(line)  # validates the key blob
        self.authorized_keys_dir.mkdir(mode=0o755, exist_ok=True)
        keys = self.authorized_keys_dir / user
        with keys.open("a") as out:
            out.write(line + "\n")
        keys.chmod(0o644)
        _let_user_read(keys, user)

    def rotate_host_key(self) -> str:
        """Replace the host key and restart on the same port; returns the new fingerprint."""
        self.stop()
        for path in (self.host_key_file, Path(f"{self.host_key_file}.pub")):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        _launch_sshd(self)
        return self.host_key_fingerprint


def _let_user_read(path: Path, user: str) -> None:
    """sshd reads authorized_keys as the user: as root, let a non-root user reach
    `path` (o+x on ancestors that lack it, never read)."""
    if not is_root() or user == "root":
        return
    try:
        account = pwd.getpwnam(user)
    except KeyError:
        return  # no such user: sshd refuses the login anyway
    grant_traverse(path.parent, account)


def _write_sshd_config(server: Sshd) -> None:
    """A stock sshd_config: OpenSSH's defaults (MaxSessions 10, MaxStartups 10:30:100...), so
    that the tests meet the limits of a server as installed. Only what a test server on
    loopback needs is set: its port and address, its host key, pidfile and authorized keys
    (in a temporary directory, hence StrictModes off), SFTP (which distributions turn on),
    the test engine as DOCKER_HOST, and `options` (a test that needs another setting, e.g.
    {"MaxSessions": "3"})."""
    keys_pattern = str(server.authorized_keys_dir).replace("%", "%%") + "/%u"
    lines = [
        "# WindFlow private sshd: rewritten at every start by devtools.sshd",
        f"Port {server.port}",
        f"ListenAddress {HOST}",
        f"HostKey {_sshd_quote(str(server.host_key_file))}",
        f"PidFile {_sshd_quote(str(server.pidfile))}",
        f"AuthorizedKeysFile {_sshd_quote(keys_pattern)}",
        "StrictModes no",
        "Subsystem sftp internal-sftp",  # as in every distribution's sshd_config
    ]
    if server.docker_host:
        lines.append(f"SetEnv {_sshd_quote('DOCKER_HOST=' + server.docker_host)}")
    if _sshd_knows("PerSourcePenalties"):  # OpenSSH >= 9.8 would lock out the test client
        lines.append("PerSourcePenalties no")
    for option, value in server.options.items():
        if not option.isalnum() or "\n" in str(value):
            raise DevServiceError(f"not an sshd option: {option!r} {value!r}")
        lines.append(f"{option} {value}")
    server.config_file.write_text("\n".join(lines) + "\n")


def _configured_docker_host(server: Sshd) -> str | None:
    try:
        config = server.config_file.read_text()
    except OSError:
        return None
    for line in config.splitlines():
        if line.startswith('SetEnv "DOCKER_HOST='):
            return line.removeprefix('SetEnv "DOCKER_HOST=').rstrip('"')
    return None


def _ensure_host_key(server: Sshd) -> None:
    if server.host_key_file.exists() and Path(f"{server.host_key_file}.pub").exists():
        return
    with contextlib.suppress(FileNotFoundError):
        server.host_key_file.unlink()
    keygen = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"
    cmd = [keygen, "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(server.host_key_file)]
    run(cmd, log=server.log_file, timeout=SSHD_TIMEOUT, what="ssh-keygen of the sshd host key")


def _wait_sshd_ready(server: Sshd, timeout: float = SSHD_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # A patient wait for each banner: on a loaded machine an impatient client leaves
        # half-open logins behind, which the stock MaxStartups (10) then starts dropping.
        left = max(0.5, deadline - time.monotonic())
        if server.is_running() and ssh_banner(server.port, timeout=min(5.0, left)):
            return
        if server.pidfile.exists() and not server.is_running():
            break  # died after writing its pidfile
        time.sleep(0.05)
    server.stop()
    raise fail(
        f"sshd in {server.data_dir} did not send its banner on {HOST}:{server.port} "
        f"within {timeout:.0f} s",
        server.log_file,
    )


def _launch_sshd(server: Sshd) -> None:
    """Write the config, make the host key if missing, start sshd (it daemonizes) and wait."""
    require_free_port(server.port, f"sshd in {server.data_dir}")
    _ensure_host_key(server)
    _write_sshd_config(server)
    with contextlib.suppress(PermissionError):  # privilege separation dir (root only)
        SSHD_PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        server.pidfile.unlink()
    cmd = [SSHD, "-f", str(server.config_file), "-E", str(server.log_file)]
    run(cmd, log=server.log_file, timeout=SSHD_TIMEOUT, what=f"starting sshd in {server.data_dir}")
    (server.data_dir / "sshd.port").write_text(f"{server.port}\n")
    _wait_sshd_ready(server)


def start_sshd(
    data_dir: Path,
    port: int | None = None,
    *,
    docker_host: str | None = None,
    options: dict | None = None,
) -> Sshd:
    """Start (or reuse) a private OpenSSH server on 127.0.0.1 with its files in `data_dir`.

    A stock configuration (OpenSSH's defaults: MaxSessions 10 per connection, MaxStartups
    10:30:100, root by key only), an ed25519 host key generated in `data_dir` on first start
    and kept, authorized keys in ``data_dir/authorized_keys/<user>`` (see
    ``Sshd.authorize``). `options` adds sshd_config lines ({"MaxSessions": "3"}); a server
    started with options is never reused. `port=None` takes the port used last time when it
    is free, else a free one. `docker_host` (``unix:///...``) becomes DOCKER_HOST in every
    session. Returns once the server sends its SSH banner (10 s at most)."""
    if not os.access(SSHD, os.X_OK):
        raise DevServiceError(
            f"{SSHD} was not found: install it with `apt-get install -y openssh-server`"
        )
    data_dir = Path(data_dir).absolute()
    data_dir.mkdir(parents=True, exist_ok=True)
    previous = Sshd(
        data_dir, read_int(data_dir / "sshd.port") or 0, started=False, docker_host=docker_host
    )
    configured = _configured_docker_host(previous)
    same_engine = docker_host in (None, configured)  # None: whatever it was started with
    previous.docker_host = configured
    if (
        not options
        and previous.is_running()
        and same_engine
        and port in (None, previous.port)
        and ssh_banner(previous.port)
    ):
        return previous
    previous.stop()
    server = Sshd(
        data_dir,
        port or previous_port(previous.port or None),
        started=True,
        docker_host=docker_host,
        options=dict(options or {}),
    )
    _launch_sshd(server)
    return server


# ----------------------------------------------------------------------- system users


def _admin(cmd: list[str], what: str) -> None:
    """Run a short admin command (useradd, usermod, gpasswd) and explain a failure."""
    cmd = [(system_program(cmd[0]) or cmd[0]), *cmd[1:]]
    try:
        result = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise DevServiceError(f"{what} failed: {exc}") from None
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()
        raise DevServiceError(f"{what} failed (exit code {result.returncode}): {output}")


def _shadow_password(name: str) -> str | None:
    try:
        for line in Path("/etc/shadow").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == name and len(fields) > 1:
                return fields[1]
    except OSError:
        return None
    return None


def ensure_system_user(name: str, *, docker_access: bool) -> str:
    """As root: a normal login user `name` (home, /bin/bash) that can log in by key,
    in the `docker` group when `docker_access` and out of it otherwise. Idempotent.

    A new account's password is locked (``!``), which makes sshd refuse even key
    logins without PAM: it is set to ``*`` (no password, not locked)."""
    if not is_root():
        raise DevServiceError(f"creating or changing the system user {name!r} needs root")
    try:
        account = pwd.getpwnam(name)
    except KeyError:
        _admin(["useradd", "-m", "-s", "/bin/bash", name], f"useradd {name}")
        account = pwd.getpwnam(name)
    if (_shadow_password(name) or "").startswith("!"):
        _admin(["usermod", "-p", "*", name], f"unlocking {name} for key logins")
    _set_docker_access(account, docker_access)
    return name


def _docker_group(create: bool) -> grp.struct_group | None:
    try:
        return grp.getgrnam("docker")
    except KeyError:
        if not create:
            return None
    _admin(["groupadd", "--system", "docker"], "groupadd docker")
    return grp.getgrnam("docker")


def _set_docker_access(account: pwd.struct_passwd, allowed: bool) -> None:
    group = _docker_group(create=allowed)
    if group is None:
        return  # no docker group: nobody but root reaches the socket
    member = account.pw_name in group.gr_mem
    if allowed and not member and account.pw_gid != group.gr_gid:
        _admin(["usermod", "-aG", "docker", account.pw_name], f"adding {account.pw_name} to docker")
    elif not allowed and account.pw_gid == group.gr_gid:
        raise DevServiceError(f"{account.pw_name}'s primary group is docker: cannot take it out")
    elif not allowed and member:
        _admin(
            ["gpasswd", "-d", account.pw_name, "docker"], f"taking {account.pw_name} out of docker"
        )
