"""SSH to the servers WindFlow deploys to: keys, host key pinning, sessions and a pool.

Pure Python (paramiko and cryptography; no Django). Nothing here reads ``~/.ssh``,
``known_hosts``, an SSH agent or an ssh config file: the private key comes from the
caller, and the server's host key must match the fingerprint pinned on the endpoint.

    private_pem, public_line = generate_ed25519_keypair()
    host_key = scan_host_key("10.0.0.5", 22)           # show it, let an admin confirm
    endpoint = SSHEndpoint("10.0.0.5", 22, "deploy", private_pem,
                           pinned_fingerprint=host_key.fingerprint)
    with pool.session(endpoint) as ssh:               # reused while alive and fresh
        result = ssh.run("uname -a")                  # RunResult(exit_code, stdout, ...)

Timeouts: connecting (TCP, SSH banner, key exchange and authentication together) takes
at most ``CONNECT_TIMEOUT`` (5 s); every command has a timeout; a channel that the
server never answers is closed by a watchdog. No call can hang.
"""

from __future__ import annotations

import atexit
import base64
import binascii
import codecs
import concurrent.futures
import contextlib
import functools
import hashlib
import io
import ipaddress
import logging
import os
import select
import shlex
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import paramiko
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from .errors import (
    AuthenticationFailed,
    ChannelLimit,
    CommandFailed,
    CommandTimeout,
    ConnectTimeout,
    HostKeyMismatch,
    HostKeyUnknown,
    KeyFormatError,
    Unreachable,
)

__all__ = [
    "CONNECT_TIMEOUT",
    "HostKey",
    "RunResult",
    "SSHEndpoint",
    "SSHSession",
    "SessionPool",
    "connect",
    "fingerprint",
    "generate_ed25519_keypair",
    "load_private_key",
    "pool",
    "public_line_of",
    "scan_host_key",
]

log = logging.getLogger(__name__)
# paramiko logs tracebacks of failed handshakes at ERROR: ours are reported as errors.
logging.getLogger("paramiko").setLevel(logging.CRITICAL)

CONNECT_TIMEOUT = 5.0  # seconds: the most any connect may take, all stages together
CHANNEL_TIMEOUT = 5.0  # opening a channel and starting a command on it
# sshd allows MaxSessions (10 by default) channels open at once on one connection, and
# frees a closed one only once its command has exited: a session opens at most this many.
MAX_CHANNELS = 8
CHANNEL_WAIT = 60.0  # seconds a new command waits for one of its session's channels
CHANNEL_REFUSED_RETRY = 2.0  # seconds to retry a channel refused while none is open
_CHANNEL_POLL = 0.05
KEEPALIVE_INTERVAL = 15  # seconds between keepalives on live sessions
KEY_COMMENT = "windflow"
_READ_CHUNK = 32768


# ------------------------------------------------------------------------------- keys


def generate_ed25519_keypair(comment: str = KEY_COMMENT) -> tuple[str, str]:
    """A new ed25519 key pair: (private key in OpenSSH PEM format, public key line)."""
    key = ed25519.Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    return private_pem, _public_line(key, comment)


def _public_line(key, comment: str = "") -> str:
    line = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return f"{line} {comment}" if comment else line


def public_line_of(private_pem: str, passphrase: str | None = None) -> str:
    """The OpenSSH public key line (``ssh-ed25519 AAAA... windflow``) of a private key."""
    return _public_line(_load_crypto_key(private_pem, passphrase), KEY_COMMENT)


def load_private_key(pem: str, passphrase: str | None = None) -> paramiko.PKey:
    """A paramiko key from an OpenSSH or PEM private key (ed25519, RSA or ECDSA).

    Raises KeyFormatError with a message that says whether the key is malformed, of an
    unsupported type, needs a passphrase, or the passphrase is wrong. Decrypted keys
    are cached (an OpenSSH passphrase costs ~1 s of bcrypt per load)."""
    if not isinstance(pem, str) or (passphrase is not None and not isinstance(passphrase, str)):
        raise KeyFormatError("The private key and its passphrase must be text.")
    return _load_paramiko_key(pem, passphrase or None)


@functools.lru_cache(maxsize=256)
def _load_paramiko_key(pem: str, passphrase: str | None) -> paramiko.PKey:
    key = _load_crypto_key(pem, passphrase)
    # Hand paramiko an unencrypted OpenSSH serialisation: it reads every type from it.
    text = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    if isinstance(key, ed25519.Ed25519PrivateKey):
        cls = paramiko.Ed25519Key
    elif isinstance(key, rsa.RSAPrivateKey):
        cls = paramiko.RSAKey
    else:
        cls = paramiko.ECDSAKey
    try:
        return cls.from_private_key(io.StringIO(text))
    except (paramiko.SSHException, ValueError) as exc:  # pragma: no cover - cryptography parsed it
        raise KeyFormatError(f"The private key could not be used: {type(exc).__name__}.") from None


_SUPPORTED = "ed25519, RSA or ECDSA"


def _normalize_pem(text: str) -> str:
    """Undo what copy and paste does to a key: CRLF, indentation, literal \\n, one line."""
    text = text.strip().replace("\r\n", "\n").replace("\r", "\n")
    if "\n" not in text and "\\n" in text:
        text = text.replace("\\n", "\n")
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    if len(lines) == 1 and lines[0].startswith("-----BEGIN ") and "-----END " in lines[0]:
        # The whole key on one line (a form field that dropped the newlines): rewrap it.
        head, _, rest = lines[0][len("-----BEGIN ") :].partition("-----")
        body, _, tail = rest.partition("-----END ")
        body = "".join(body.split())
        wrapped = [body[i : i + 70] for i in range(0, len(body), 70)]
        lines = [f"-----BEGIN {head}-----", *wrapped, f"-----END {tail}"]
    return "\n".join(lines) + "\n"


def _openssh_cipher(text: str) -> str | None:
    """The cipher name in an OpenSSH private key ("none" when unencrypted), else None."""
    body = text.split("-----BEGIN OPENSSH PRIVATE KEY-----", 1)[-1]
    body = body.split("-----END OPENSSH PRIVATE KEY-----", 1)[0]
    try:
        blob = base64.b64decode("".join(body.split()))
    except (binascii.Error, ValueError):
        return None
    magic = b"openssh-key-v1\x00"
    if not blob.startswith(magic) or len(blob) < len(magic) + 4:
        return None
    size = int.from_bytes(blob[len(magic) : len(magic) + 4], "big")
    start = len(magic) + 4
    if size > 64 or start + size > len(blob):
        return None
    return blob[start : start + size].decode("ascii", "replace")


def _load_crypto_key(pem: str, passphrase: str | None):
    """A cryptography private key object, or KeyFormatError saying exactly what is wrong.
    The messages never quote the key."""
    if not isinstance(pem, str) or not pem.strip():
        raise KeyFormatError("No private key was given.")
    text = _normalize_pem(pem)
    first = text.split("\n", 1)[0]
    if first.startswith("PuTTY-User-Key-File"):
        raise KeyFormatError(
            "This is a PuTTY key (.ppk): WindFlow needs an OpenSSH or PEM private key.",
            hint="Convert it with: puttygen key.ppk -O private-openssh -o key",
        )
    if first.startswith(("ssh-", "ecdsa-")) or "-----BEGIN SSH2 PUBLIC KEY-----" in first:
        raise KeyFormatError(
            "This is a public key: paste the private key (the file without .pub).",
        )
    if not first.startswith("-----BEGIN ") or "PRIVATE KEY-----" not in first:
        raise KeyFormatError(
            "The private key is malformed: it does not start with a "
            "'-----BEGIN ... PRIVATE KEY-----' line."
        )
    if "-----END " not in text:
        raise KeyFormatError(
            "The private key is malformed: its '-----END ... PRIVATE KEY-----' line is "
            "missing (was it cut when copied?)."
        )
    openssh = "BEGIN OPENSSH PRIVATE KEY" in first
    if openssh:
        cipher = _openssh_cipher(text)
        if cipher is None:
            raise KeyFormatError("The private key is malformed: its OpenSSH data is corrupt.")
        encrypted = cipher != "none"
    else:
        encrypted = "ENCRYPTED" in first or "Proc-Type: 4,ENCRYPTED" in text
    if encrypted and not passphrase:
        raise KeyFormatError(
            "This private key is protected by a passphrase: enter its passphrase.",
            hint="Give the passphrase with the key, or remove it: ssh-keygen -p -f KEYFILE",
        )
    password = passphrase.encode() if encrypted and passphrase else None
    data = text.encode()
    try:
        if openssh:
            key = serialization.load_ssh_private_key(data, password)
        else:
            key = serialization.load_pem_private_key(data, password)
    except UnsupportedAlgorithm:
        raise KeyFormatError(
            f"This private key type is not supported: use an {_SUPPORTED} key.",
            hint="Generate one with: ssh-keygen -t ed25519",
        ) from None
    except (ValueError, TypeError):
        if encrypted:
            raise KeyFormatError(
                "The passphrase is wrong for this private key.",
                hint="Check the passphrase (it is case sensitive) and try again.",
            ) from None
        if "DSA PRIVATE KEY" in first and "ECDSA" not in first:
            raise KeyFormatError(
                f"DSA keys are not supported: use an {_SUPPORTED} key.",
                hint="Generate one with: ssh-keygen -t ed25519",
            ) from None
        raise KeyFormatError(
            "The private key is malformed: its data could not be decoded (damaged when "
            f"copied, or not an {_SUPPORTED} key)."
        ) from None
    if not isinstance(
        key, ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    ):
        raise KeyFormatError(
            f"This private key type ({type(key).__name__.removeprefix('_')}) is not "
            f"supported: use an {_SUPPORTED} key.",
            hint="Generate one with: ssh-keygen -t ed25519",
        )
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name not in (
        "secp256r1",
        "secp384r1",
        "secp521r1",
    ):
        raise KeyFormatError(
            f"ECDSA keys on the curve {key.curve.name} are not supported by SSH: "
            "use an ed25519 key."
        )
    return key


def fingerprint(public_key: bytes | str | paramiko.PKey) -> str:
    """The OpenSSH SHA256 fingerprint (``SHA256:<base64 without padding>``) of a public
    key: its wire blob (bytes), an OpenSSH public key line, the base64 blob alone, or a
    paramiko key."""
    if isinstance(public_key, paramiko.PKey):
        blob = public_key.asbytes()
    elif isinstance(public_key, bytes | bytearray | memoryview):
        blob = bytes(public_key)
    elif isinstance(public_key, str):
        fields = public_key.split()
        if not fields:
            raise ValueError("empty public key")
        encoded = fields[1] if len(fields) > 1 else fields[0]
        try:
            blob = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("not an OpenSSH public key line") from None
    else:
        raise TypeError(f"cannot fingerprint a {type(public_key).__name__}")
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def _same_fingerprint(a: str, b: str) -> bool:
    def norm(value: str) -> str:
        value = value.strip()
        value = value.removeprefix("SHA256:").removeprefix("sha256:")
        return value.rstrip("=")

    return bool(a) and bool(b) and norm(a) == norm(b)


# -------------------------------------------------------------------------- endpoints


@dataclass(frozen=True)
class SSHEndpoint:
    """Where and how to log in. The key and passphrase stay out of repr()."""

    host: str
    port: int
    user: str
    private_key: str = field(repr=False)
    passphrase: str | None = field(default=None, repr=False)
    pinned_fingerprint: str | None = None

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.user}@{self.address}"


@dataclass(frozen=True)
class HostKey:
    """A server's host key: ``SHA256:...`` fingerprint, type and OpenSSH public line."""

    fingerprint: str
    key_type: str
    public_line: str


@dataclass(frozen=True)
class RunResult:
    exit_code: int
    stdout: str
    stderr: str
    duration: float  # seconds

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


# --------------------------------------------------------------------- connect stages

_resolvers: dict[int, concurrent.futures.ThreadPoolExecutor] = {}
_resolvers_lock = threading.Lock()


def _resolver() -> concurrent.futures.ThreadPoolExecutor:
    """Threads for name lookups, one executor per process (threads do not survive fork)."""
    pid = os.getpid()
    with _resolvers_lock:
        executor = _resolvers.get(pid)
        if executor is None:
            _resolvers.clear()
            executor = _resolvers[pid] = concurrent.futures.ThreadPoolExecutor(
                max_workers=8, thread_name_prefix="wf-dns"
            )
        return executor


def _remaining(deadline: float, what: str, address: str, timeout: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise ConnectTimeout(f"{address}: no answer within {timeout:g} s ({what}).")
    return left


def _resolve(host: str, port: int, deadline: float, timeout: float, address: str):
    """getaddrinfo with a deadline (the system resolver has none of its own)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    future = _resolver().submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        return future.result(timeout=_remaining(deadline, "name lookup", address, timeout))
    except concurrent.futures.TimeoutError:
        raise ConnectTimeout(
            f"{address}: the name {host!r} did not resolve within {timeout:g} s.",
            hint="Check the host name and this machine's DNS servers.",
        ) from None
    except socket.gaierror:
        raise Unreachable(
            f"{address}: unknown host name {host!r}.",
            hint="Check the spelling of the host name, or use its IP address.",
        ) from None


def _open_socket(host: str, port: int, deadline: float, timeout: float) -> socket.socket:
    """A TCP connection to host:port before the deadline."""
    address = SSHEndpoint(host, port, "", "").address
    if not isinstance(port, int) or not 0 < port < 65536:
        raise Unreachable(f"{address}: the port must be between 1 and 65535.")
    infos = _resolve(host, port, deadline, timeout, address)
    last: Exception | None = None
    for family, kind, proto, _, sockaddr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(_remaining(deadline, "TCP connect", address, timeout))
            sock.connect(sockaddr)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        except TimeoutError:
            sock.close()
            raise ConnectTimeout(
                f"{address}: no answer to the TCP connection within {timeout:g} s."
            ) from None
        except ConnectTimeout:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            last = exc
    if isinstance(last, ConnectionRefusedError):
        raise Unreachable(
            f"{address}: connection refused (nothing listens on port {port}).",
            hint=f"Check that the SSH server runs on {host} and listens on port {port}.",
        )
    reason = getattr(last, "strerror", None) or str(last) or "no address"
    raise Unreachable(f"{address}: cannot connect ({reason}).")


def _handshake(
    sock: socket.socket, address: str, deadline: float, timeout: float
) -> tuple[paramiko.Transport, HostKey]:
    """SSH banner and key exchange on a connected socket: the transport and host key."""
    try:
        left = _remaining(deadline, "SSH banner", address, timeout)
        transport = paramiko.Transport(sock)
    except ConnectTimeout:
        sock.close()
        raise
    except Exception as exc:
        sock.close()
        raise Unreachable(f"{address}: cannot start SSH ({exc}).") from None
    transport.banner_timeout = left
    transport.handshake_timeout = left
    transport.auth_timeout = left
    transport.channel_timeout = CHANNEL_TIMEOUT
    try:
        transport.start_client(timeout=left)
        key = transport.get_remote_server_key()
    except Exception as exc:
        transport.close()
        timed_out = time.monotonic() >= deadline - 0.05 or "timed out" in str(exc).lower()
        if timed_out or not str(exc):
            raise ConnectTimeout(
                f"{address}: no SSH handshake within {timeout:g} s (the port accepts "
                "connections but no SSH server answers on it)."
            ) from None
        text = str(exc)
        if "banner" in text.lower() or "protocol version" in text.lower():
            raise Unreachable(
                f"{address}: this is not an SSH server, or it closed the connection at once.",
                hint="Check the port: it must be the SSH port (usually 22). A server "
                "throttling many new connections (sshd MaxStartups) closes them too.",
            ) from None
        raise Unreachable(f"{address}: the SSH handshake failed ({text}).") from None
    name = key.get_name()
    host_key = HostKey(fingerprint(key.asbytes()), name, f"{name} {key.get_base64()}")
    return transport, host_key


def _check_pin(endpoint: SSHEndpoint, host_key: HostKey) -> None:
    pinned = (endpoint.pinned_fingerprint or "").strip()
    if not pinned:
        raise HostKeyUnknown(
            f"{endpoint.address} presented the {host_key.key_type} host key "
            f"{host_key.fingerprint}, and no host key is pinned yet: confirm it first.",
            fingerprint=host_key.fingerprint,
            key_type=host_key.key_type,
            public_line=host_key.public_line,
        )
    if not _same_fingerprint(pinned, host_key.fingerprint):
        expected = pinned if pinned.startswith("SHA256:") else f"SHA256:{pinned}"
        raise HostKeyMismatch(
            f"The host key of {endpoint.address} changed: pinned {expected}, presented "
            f"{host_key.fingerprint} ({host_key.key_type}). Connection refused until an "
            "admin confirms the new key.",
            expected=expected,
            actual=host_key.fingerprint,
        )


def _authenticate(
    transport: paramiko.Transport,
    endpoint: SSHEndpoint,
    pkey: paramiko.PKey,
    deadline: float,
    timeout: float,
) -> None:
    address = endpoint.address
    transport.auth_timeout = _remaining(deadline, "authentication", address, timeout)
    public = f"{pkey.get_name()} {pkey.get_base64()} {KEY_COMMENT}"
    hint = (
        f"Add this public key to ~/.ssh/authorized_keys of {endpoint.user} on "
        f"{endpoint.host}: {public}"
    )
    try:
        transport.auth_publickey(endpoint.user, pkey)
    except paramiko.BadAuthenticationType as exc:
        allowed = ", ".join(exc.allowed_types) or "none"
        raise AuthenticationFailed(
            f"{endpoint}: the server does not accept public keys for {endpoint.user} "
            f"(it allows: {allowed}).",
            hint="Enable PubkeyAuthentication in the server's sshd_config. " + hint,
        ) from None
    except paramiko.AuthenticationException as exc:
        if "timeout" in str(exc).lower():
            raise ConnectTimeout(
                f"{endpoint}: authentication did not finish within {timeout:g} s."
            ) from None
        raise AuthenticationFailed(
            f"{endpoint}: the server refused the key {fingerprint(pkey)} for user {endpoint.user}.",
            hint=hint,
        ) from None
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise Unreachable(
            f"{endpoint}: the connection was lost during authentication ({exc})."
        ) from None
    if not transport.is_authenticated():
        raise AuthenticationFailed(
            f"{endpoint}: the server wants more than a key for {endpoint.user} "
            "(a second factor or a password): WindFlow logs in with a key only.",
            hint="Let this user log in with a public key alone (AuthenticationMethods).",
        )


def scan_host_key(host: str, port: int = 22, timeout: float = CONNECT_TIMEOUT) -> HostKey:
    """Connect, read the server's host key, close. No authentication.

    Raises Unreachable / ConnectTimeout. Show the result to a person to confirm, then
    pin ``HostKey.fingerprint`` on the endpoint."""
    timeout = min(float(timeout), CONNECT_TIMEOUT)
    deadline = time.monotonic() + timeout
    address = SSHEndpoint(host, port, "", "").address
    sock = _open_socket(host, port, deadline, timeout)
    transport, host_key = _handshake(sock, address, deadline, timeout)
    transport.close()
    return host_key


def connect(endpoint: SSHEndpoint, timeout: float = CONNECT_TIMEOUT) -> SSHSession:
    """A new authenticated session, refused unless the host key matches the pin.

    Raises KeyFormatError (before any network traffic), Unreachable, ConnectTimeout,
    HostKeyUnknown (nothing pinned), HostKeyMismatch, AuthenticationFailed. Everything
    (TCP, banner, key exchange, authentication) finishes within `timeout` (≤ 5 s)."""
    pkey = load_private_key(endpoint.private_key, endpoint.passphrase)
    timeout = min(float(timeout), CONNECT_TIMEOUT)
    deadline = time.monotonic() + timeout
    sock = _open_socket(endpoint.host, endpoint.port, deadline, timeout)
    transport, host_key = _handshake(sock, endpoint.address, deadline, timeout)
    try:
        _check_pin(endpoint, host_key)
        _authenticate(transport, endpoint, pkey, deadline, timeout)
    except BaseException:
        transport.close()
        raise
    return SSHSession(endpoint, transport, host_key)


# --------------------------------------------------------------------------- sessions


class SSHSession:
    """One authenticated SSH connection. Commands run on channels of it; it is safe to
    use from several threads at once (each call opens its own channel).

    At most `max_channels` channels are open at once (below sshd's default MaxSessions of
    10): a command beyond them waits for one to close. A channel that the server refuses
    while others are open (a lower MaxSessions) is asked for again as they close."""

    def __init__(
        self,
        endpoint: SSHEndpoint,
        transport: paramiko.Transport,
        host_key: HostKey,
        *,
        max_channels: int = MAX_CHANNELS,
    ):
        self.endpoint = endpoint
        self.transport = transport
        self.host_key = host_key
        self.created_at = time.monotonic()
        self.last_used = self.created_at
        self.max_channels = max(1, max_channels)
        self._channels: dict[int, paramiko.Channel] = {}  # open ones, by channel id
        self._opening = 0  # channels being opened now
        self._channels_changed = threading.Condition()
        self._client: paramiko.SSHClient | None = None
        self._fabric = None
        transport.set_keepalive(KEEPALIVE_INTERVAL)

    def __repr__(self) -> str:
        state = "alive" if self.alive else "closed"
        return f"<SSHSession {self.endpoint} {state}>"

    def __enter__(self) -> SSHSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def alive(self) -> bool:
        return self.transport.is_active() and self.transport.is_authenticated()

    @property
    def client(self) -> paramiko.SSHClient:
        """A paramiko SSHClient over this connection (no known_hosts, no new handshake)."""
        if self._client is None:
            client = paramiko.SSHClient()
            client._transport = self.transport
            self._client = client
        return self._client

    def fabric(self):
        """A fabric Connection that uses this already pinned and authenticated connection
        (its ssh config files are not read). Closing it closes this session."""
        if self._fabric is None:
            from fabric import Config, Connection

            # No ssh config files, no known_hosts, and never our own stdin (a worker).
            config = Config(
                ssh_config=paramiko.SSHConfig(),
                lazy=True,
                overrides={
                    "load_ssh_configs": False,
                    "run": {"in_stream": False},
                    "timeouts": {"command": 1800, "connect": CONNECT_TIMEOUT},
                },
            )
            conn = Connection(
                self.endpoint.host,
                user=self.endpoint.user,
                port=self.endpoint.port,
                config=config,
                connect_timeout=CONNECT_TIMEOUT,
            )
            conn.client = self.client
            conn.transport = self.transport
            self._fabric = conn
        return self._fabric

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.transport.close()

    # -- channels

    def _lost(self, exc: BaseException | None = None) -> Unreachable:
        reason = f" ({exc})" if exc and str(exc) else ""
        return Unreachable(
            f"{self.endpoint}: the SSH connection was lost{reason}.",
            hint="The server closed the connection or the network dropped it; try again.",
        )

    @property
    def open_channels(self) -> int:
        """How many channels of this session are open now."""
        with self._channels_changed:
            return self._count_open()

    def _count_open(self) -> int:
        # Called with the condition held. A channel closed by either side frees its place.
        for chanid in [key for key, channel in self._channels.items() if channel.closed]:
            del self._channels[chanid]
        return len(self._channels)

    def _release(self, channel: paramiko.Channel) -> None:
        with self._channels_changed:
            self._channels.pop(channel.get_id(), None)
            self._channels_changed.notify_all()

    def _open_channel(self) -> paramiko.Channel:
        """A new session channel, once fewer than `max_channels` are open. The server may
        refuse it while others are open (its MaxSessions is lower, or it has not yet freed
        channels that just closed): it is asked again as they close, up to CHANNEL_WAIT. A
        refusal with none open is retried briefly, then is an error."""
        deadline = time.monotonic() + CHANNEL_WAIT
        refused_until = None
        while True:
            self._reserve(deadline)
            try:
                channel = self.transport.open_session(timeout=CHANNEL_TIMEOUT)
            except (paramiko.SSHException, OSError, EOFError) as exc:
                with self._channels_changed:
                    self._opening -= 1
                    others = self._count_open() + self._opening
                if not self.transport.is_active():
                    raise self._lost(exc) from None
                if "timeout" in str(exc).lower():  # no answer at all
                    raise Unreachable(
                        f"{self.endpoint}: the server did not open a channel within "
                        f"{CHANNEL_TIMEOUT:g} s.",
                        hint="The server may be frozen or overloaded: check that it is up "
                        "and that it answers, then try again.",
                    ) from None
                # Refused (paramiko hands the refusal to one of the threads asking: the others
                # read "Unable to open channel").
                now = time.monotonic()
                if not others:
                    refused_until = refused_until or now + CHANNEL_REFUSED_RETRY
                    if now >= refused_until:
                        raise self._refused(exc) from None
                elif now >= deadline:
                    raise self._refused(exc) from None
                with self._channels_changed:
                    self._channels_changed.wait(_CHANNEL_POLL)
                continue
            with self._channels_changed:
                self._opening -= 1
                self._channels[channel.get_id()] = channel
            return channel

    def _reserve(self, deadline: float) -> None:
        """Wait until a channel may be opened, and count it as opening."""
        with self._channels_changed:
            while True:
                if not self.transport.is_active():
                    raise self._lost()
                if self._count_open() + self._opening < self.max_channels:
                    self._opening += 1
                    return
                if time.monotonic() >= deadline:
                    raise ChannelLimit(
                        f"{self.endpoint}: no SSH channel was free for {CHANNEL_WAIT:g} s "
                        f"({self.max_channels} open on one connection, all busy).",
                    )
                self._channels_changed.wait(_CHANNEL_POLL)

    def _refused(self, exc: BaseException) -> ChannelLimit:
        open_now = self.open_channels
        return ChannelLimit(
            f"{self.endpoint}: the server refused a new channel ({exc}) with {open_now} "
            "open on the connection."
        )

    def _exec(self, command: str, *, combine: bool = False) -> paramiko.Channel:
        """A channel running `command`; opening and starting it are bounded by a watchdog."""
        self.last_used = time.monotonic()
        channel = self._open_channel()
        if combine:
            channel.set_combine_stderr(True)
        watchdog = threading.Timer(CHANNEL_TIMEOUT, channel.close)
        watchdog.daemon = True
        watchdog.start()
        try:
            channel.exec_command(command)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            channel.close()
            self._release(channel)
            if not self.transport.is_active():
                raise self._lost(exc) from None
            raise CommandFailed(
                f"{self.endpoint}: the server did not start the command "
                f"({exc or f'no answer within {CHANNEL_TIMEOUT:g} s'})."
            ) from None
        finally:
            watchdog.cancel()
        return channel

    def _pump(
        self,
        channel: paramiko.Channel,
        deadline: float,
        timeout: float,
        command: str,
        on_stdout: Callable[[bytes], None],
        on_stderr: Callable[[bytes], None] | None = None,
    ) -> int:
        """Read both streams until EOF, then the exit status; CommandTimeout at the deadline."""
        fd = channel.fileno()
        try:
            while True:
                eof = channel.eof_received or channel.closed
                while channel.recv_ready():
                    on_stdout(channel.recv(_READ_CHUNK))
                while channel.recv_stderr_ready():
                    data = channel.recv_stderr(_READ_CHUNK)
                    (on_stderr or on_stdout)(data)
                if eof:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CommandTimeout(
                        f"{self.endpoint}: the command did not finish within {timeout:g} s: "
                        f"{_short(command)}"
                    )
                select.select([fd], [], [], min(left, 1.0))
            left = deadline - time.monotonic()
            if not channel.status_event.wait(max(0.0, min(left, 5.0))):
                if not self.transport.is_active():
                    raise self._lost()
                raise CommandTimeout(
                    f"{self.endpoint}: no exit status for the command within {timeout:g} s: "
                    f"{_short(command)}"
                )
            if channel.closed and channel.exit_status == -1 and not self.transport.is_active():
                raise self._lost()
            return channel.recv_exit_status()
        finally:
            channel.close()
            self._release(channel)
            self.last_used = time.monotonic()

    # -- public commands

    def run(self, command: str, timeout: float = 60) -> RunResult:
        """Run a command; never raises on a non-zero exit code. Raises CommandTimeout
        past `timeout` (the channel is closed), Unreachable when the connection drops."""
        started = time.monotonic()
        deadline = started + timeout
        out: list[bytes] = []
        err: list[bytes] = []
        channel = self._exec(command)
        code = self._pump(channel, deadline, timeout, command, out.append, err.append)
        return RunResult(
            code,
            b"".join(out).decode("utf-8", "replace"),
            b"".join(err).decode("utf-8", "replace"),
            time.monotonic() - started,
        )

    def stream(self, command: str, on_line: Callable[[str], None], timeout: float = 1800) -> int:
        """Run a command and call `on_line` for each line of its output (stdout and stderr
        merged, in order, without the line ending) as it comes. Returns the exit code."""
        deadline = time.monotonic() + timeout
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        pending = [""]

        def feed(data: bytes) -> None:
            text = pending[0] + decoder.decode(data)
            *lines, pending[0] = text.split("\n")
            for line in lines:
                on_line(line.rstrip("\r"))

        # sshd reads the command's stdout and stderr through two pipes and loses their
        # order: merge them on the server, where the order is still known.
        channel = self._exec(f"exec 2>&1\n{command}", combine=True)
        code = self._pump(channel, deadline, timeout, command, feed)
        rest = pending[0] + decoder.decode(b"", final=True)
        if rest:
            on_line(rest.rstrip("\r"))
        return code

    def put(
        self, data: bytes | str, remote_path: str, mode: int = 0o644, timeout: float = 120
    ) -> None:
        """Write `data` to `remote_path` atomically (temporary file, chmod, rename).
        Raises CommandFailed when it cannot be written."""
        if isinstance(data, str):
            data = data.encode()
        path = shlex.quote(remote_path)
        script = (
            "set -e; umask 077; "
            f'd=$(dirname -- {path}); t=$(mktemp "$d/.windflow-upload.XXXXXX"); '
            "trap 'rm -f \"$t\"' EXIT; "
            f'cat > "$t"; chmod {mode:o} "$t"; mv -f -- "$t" {path}; trap - EXIT'
        )
        command = f"sh -c {shlex.quote(script)}"
        started = time.monotonic()
        deadline = started + timeout
        channel = self._exec(command)
        err: list[bytes] = []
        try:
            channel.settimeout(max(0.1, deadline - time.monotonic()))
            channel.sendall(data)
            channel.shutdown_write()
        except TimeoutError:
            channel.close()
            raise CommandTimeout(
                f"{self.endpoint}: uploading {remote_path} took more than {timeout:g} s."
            ) from None
        except (OSError, EOFError, paramiko.SSHException):
            pass  # the remote side stopped reading: its exit status and stderr say why
        code = self._pump(channel, deadline, timeout, command, lambda _: None, err.append)
        if code != 0:
            reason = b"".join(err).decode("utf-8", "replace").strip() or f"exit code {code}"
            raise CommandFailed(
                f"{self.endpoint}: cannot write {remote_path}: {reason}",
                hint="Check that the directory exists and that the user may write to it.",
            )

    def probe_channels(self, wanted: int = MAX_CHANNELS) -> int:
        """How many channels the server lets this connection open at once, up to `wanted`
        (sshd's MaxSessions, when lower). Opens them side by side, then closes them all."""
        opened: list[paramiko.Channel] = []
        try:
            while len(opened) < wanted:
                try:
                    opened.append(self.transport.open_session(timeout=CHANNEL_TIMEOUT))
                except (paramiko.SSHException, OSError, EOFError) as exc:
                    if not self.transport.is_active():
                        raise self._lost(exc) from None
                    break
        finally:
            for channel in opened:
                channel.close()
        return len(opened)

    def open_channel_command(self, command: str, timeout: float = 60) -> paramiko.Channel:
        """A raw channel running `command` (for protocols over stdio, such as
        ``docker system dial-stdio``); reads and writes on it time out after `timeout`."""
        channel = self._exec(command)
        channel.settimeout(timeout)
        return channel


def _short(command: str, limit: int = 80) -> str:
    command = " ".join(command.split())
    return command if len(command) <= limit else command[: limit - 1] + "…"


# ------------------------------------------------------------------------------- pool


class SessionPool:
    """Reuses live sessions per endpoint so workers do not handshake for every call.

    ``with pool.session(endpoint) as ssh:`` checks a session out (a fresh, live idle one
    when there is one, else a new connection) and gives it back after, unless it died.
    A session is used by one holder at a time. Idle sessions older than `max_idle`
    seconds are closed; at most `max_idle_per_endpoint` are kept per endpoint. Safe
    across threads; after a fork the child starts with an empty pool."""

    def __init__(
        self,
        max_idle: float = 60.0,
        max_idle_per_endpoint: int = 4,
        connect_timeout: float = CONNECT_TIMEOUT,
    ):
        self.max_idle = max_idle
        self.max_idle_per_endpoint = max_idle_per_endpoint
        self.connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._idle: dict[SSHEndpoint, list[SSHSession]] = {}
        self._pid = os.getpid()
        self.connects = 0  # new connections made (for tests and metrics)
        self.reuses = 0

    def _forked(self) -> None:
        # Called with the lock held. Sessions inherited through fork share sockets
        # with the parent: forget them without closing.
        if self._pid != os.getpid():
            self._idle = {}
            self._pid = os.getpid()

    def _expired(self, session: SSHSession, now: float) -> bool:
        return now - session.last_used > self.max_idle or not session.alive

    def _take(self, endpoint: SSHEndpoint) -> tuple[SSHSession | None, list[SSHSession]]:
        now = time.monotonic()
        stale: list[SSHSession] = []
        with self._lock:
            self._forked()
            for key in list(self._idle):
                keep = []
                for session in self._idle[key]:
                    (stale if self._expired(session, now) else keep).append(session)
                if keep:
                    self._idle[key] = keep
                else:
                    del self._idle[key]
            sessions = self._idle.get(endpoint)
            if sessions:
                session = sessions.pop()
                if not sessions:
                    del self._idle[endpoint]
                self.reuses += 1
                return session, stale
        return None, stale

    def checkout(self, endpoint: SSHEndpoint) -> SSHSession:
        """A live session for `endpoint` that the caller owns until ``checkin``."""
        session, stale = self._take(endpoint)
        for old in stale:
            old.close()
        if session is not None:
            return session
        session = connect(endpoint, self.connect_timeout)
        with self._lock:
            self.connects += 1
        return session

    def checkin(self, session: SSHSession) -> None:
        """Give a session back: kept while alive, closed otherwise or when there are
        enough idle ones."""
        surplus = None
        if session.alive:
            with self._lock:
                self._forked()
                sessions = self._idle.setdefault(session.endpoint, [])
                session.last_used = time.monotonic()
                sessions.append(session)
                if len(sessions) > self.max_idle_per_endpoint:
                    surplus = sessions.pop(0)
        else:
            surplus = session
        if surplus is not None:
            surplus.close()

    adopt = checkin

    @contextlib.contextmanager
    def session(self, endpoint: SSHEndpoint) -> Iterator[SSHSession]:
        session = self.checkout(endpoint)
        try:
            yield session
        finally:
            self.checkin(session)

    def discard(self, endpoint: SSHEndpoint | None = None, host: str | None = None) -> int:
        """Close idle sessions of one endpoint, or of every endpoint on `host` (after a
        host key re-confirmation, a Prepare server run, a credential change)."""
        with self._lock:
            self._forked()
            keys = [
                key
                for key in self._idle
                if (endpoint is not None and key == endpoint)
                or (host is not None and key.host == host)
            ]
            closing = [s for key in keys for s in self._idle.pop(key)]
        for session in closing:
            session.close()
        return len(closing)

    def idle_count(self, endpoint: SSHEndpoint | None = None) -> int:
        with self._lock:
            if endpoint is not None:
                return len(self._idle.get(endpoint, ()))
            return sum(len(v) for v in self._idle.values())

    def close_all(self) -> None:
        with self._lock:
            self._forked()
            closing = [s for sessions in self._idle.values() for s in sessions]
            self._idle = {}
        for session in closing:
            session.close()


pool = SessionPool()
atexit.register(pool.close_all)
