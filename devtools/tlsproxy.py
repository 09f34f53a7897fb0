"""Docker over TCP + mutual TLS for tests: socat in front of a local engine's socket."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from .base import (
    HOST,
    DetachedServer,
    DevServiceError,
    free_port,
    require_free_port,
    spawn_daemon,
)
from .dockerd import SYSTEM_SOCKET, tests_engine_socket

TLS_PROXY_TIMEOUT = 10


@dataclass
class TlsProxy(DetachedServer):
    """socat with mutual TLS on 127.0.0.1 in front of the local Docker socket: what a
    remote ``dockerd --tlsverify`` looks like to a client. PEM strings for the client."""

    name = "socat"
    log_name = "socat.log"

    def _read(self, name: str) -> str:
        return (self.data_dir / name).read_text()

    @property
    def ca_pem(self) -> str:
        return self._read("ca.pem")

    @property
    def client_cert_pem(self) -> str:
        return self._read("client.pem")

    @property
    def client_key_pem(self) -> str:
        return self._read("client.key")


def tls_pem_pair(
    data_dir: Path, name: str, common_name: str, issuer: tuple | None, *, server: bool = False
) -> tuple:
    """Write ``name.pem`` and ``name.key`` (0600); a CA when `issuer` is None, else a
    leaf signed by `issuer` (certificate, key). Returns (certificate, key)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    signer_cert, signer_key = issuer or (None, key)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(signer_cert.subject if signer_cert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if server:
        import ipaddress

        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if issuer is not None:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    cert = builder.sign(signer_key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    for path, data in (
        (data_dir / f"{name}.pem", cert.public_bytes(serialization.Encoding.PEM)),
        (data_dir / f"{name}.key", key_pem),
    ):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    return cert, key


def _wait_tls_proxy(proxy: TlsProxy, timeout: float = TLS_PROXY_TIMEOUT) -> None:
    def accepts() -> bool:
        with contextlib.suppress(OSError), socket.create_connection((HOST, proxy.port), 0.5):
            return True
        return False

    proxy.wait_ready(accepts, f"listen on {HOST}:{proxy.port}", timeout)


def start_tls_docker_proxy(
    data_dir: Path, port: int | None = None, *, socket_path: str | None = None
) -> TlsProxy:
    """Put mutual TLS in front of the local Docker engine: a new CA (``ca.pem``), a
    server certificate for 127.0.0.1/localhost (``server.pem``/``.key``) and a client
    certificate (``client.pem``/``.key``) in `data_dir`, then ``socat OPENSSL-LISTEN``
    on 127.0.0.1:`port` (a free one when None) forwarding to the Docker socket, detached
    (log ``socat.log``). Returns once the port accepts connections (10 s at most).
    `socket_path` is the engine's socket (default: the test run's engine, else the
    machine's). The engine must already run (``ensure_docker_engine``); needs `socat`."""
    socket_path = socket_path or tests_engine_socket() or SYSTEM_SOCKET
    socat = shutil.which("socat")
    if socat is None:
        raise DevServiceError("socat was not found: install it with `apt-get install -y socat`")
    data_dir = Path(data_dir).absolute()
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    port = port or free_port()
    require_free_port(port, f"the TLS proxy in {data_dir}")
    ca = tls_pem_pair(data_dir, "ca", "WindFlow test CA", None)
    tls_pem_pair(data_dir, "server", "localhost", ca, server=True)
    tls_pem_pair(data_dir, "client", "windflow-client", ca)
    listen = (
        f"OPENSSL-LISTEN:{port},bind={HOST},reuseaddr,fork,cert={data_dir}/server.pem,"
        f"key={data_dir}/server.key,cafile={data_dir}/ca.pem,verify=1"
    )
    log = data_dir / "socat.log"
    process = spawn_daemon([socat, listen, f"UNIX-CONNECT:{socket_path}"], log)
    proxy = TlsProxy(data_dir, port, process)
    _wait_tls_proxy(proxy)
    return proxy
