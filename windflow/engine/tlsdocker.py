"""Docker engines over TCP with mutual TLS (``dockerd --tlsverify`` on tcp://host:2376).

Pure Python (docker SDK, cryptography; no Django).

    endpoint = TLSEndpoint("10.0.0.5", 2376, ca_pem, cert_pem, key_pem)
    validate_tls_material(ca_pem, cert_pem, key_pem)   # KeyFormatError says what is wrong
    client = docker_client_tls(endpoint)               # verifies the API answers
    client.close()                                     # removes its private PEM files
    checks, facts = check_tls_target(endpoint)

The SDK reads the PEM material from files: each client writes them to its own private
directory (0700, files 0600), removed when the client closes (or is collected).
Messages and hints never contain key material.
"""

from __future__ import annotations

import datetime
import os
import shutil
import socket
import ssl
import tempfile
import time
import weakref
from dataclasses import dataclass, field

import docker
import docker.tls
import requests
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from docker.errors import DockerException

from . import dockerhost
from .checks import (
    DISK,
    DOCKER_ENGINE,
    Check,
    Facts,
    _failed,
    _memory_check,
    _ms,
    _size,
)
from .errors import (
    AuthenticationFailed,
    ConnectTimeout,
    DockerUnavailable,
    EngineError,
    KeyFormatError,
    Unreachable,
)

__all__ = [
    "CONNECT_TIMEOUT",
    "TCP_REACHABLE",
    "TLS",
    "ServerCertificateUntrusted",
    "TLSEndpoint",
    "check_tls_target",
    "docker_client_tls",
    "validate_tls_material",
]

CONNECT_TIMEOUT = 5.0  # seconds: TCP connect of every connection
TCP_REACHABLE = "tcp reachable"
TLS = "tls"
_PLACEHOLDER_API = "1.24"  # replaced by the negotiated version before the client is returned

MATERIAL_HINT = (
    "Paste the three PEM files made for dockerd --tlsverify: the CA certificate (ca.pem), "
    "the client certificate (cert.pem) and its unencrypted key (key.pem), each from its "
    "-----BEGIN line to its -----END line."
)
SERVER_UNTRUSTED_HINT = (
    "The server's certificate is not signed by this CA (or does not name this host): "
    "paste the CA that signed the server's certificate (--tlscacert of dockerd), and "
    "connect with a host name or IP address listed in its subjectAltName."
)
CLIENT_REFUSED_HINT = (
    "The server refused the client certificate: use a client certificate signed by the "
    "CA the server trusts (dockerd --tlscacert), with the clientAuth extended key usage."
)


class ServerCertificateUntrusted(EngineError):
    """The server's TLS certificate does not verify against the CA (or the host name)."""

    default_hint = SERVER_UNTRUSTED_HINT
    error_code = "tls_untrusted"


@dataclass(frozen=True)
class TLSEndpoint:
    host: str
    port: int
    ca_pem: str = field(repr=False)
    cert_pem: str = field(repr=False)
    key_pem: str = field(repr=False)

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"tcp://{self.address}"


# ----------------------------------------------------------------------- PEM material


def _material_error(message: str) -> KeyFormatError:
    return KeyFormatError(message, hint=MATERIAL_HINT)


def _load_certificate(pem: str, what: str) -> x509.Certificate:
    if "-----BEGIN CERTIFICATE-----" not in (pem or ""):
        raise _material_error(f"The {what} is not a PEM certificate.")
    try:
        return x509.load_pem_x509_certificates(pem.strip().encode())[0]
    except (ValueError, UnicodeError, IndexError):
        raise _material_error(f"The {what} is not a PEM certificate (it does not parse).") from None


def _load_key(pem: str):
    if "PRIVATE KEY-----" not in (pem or ""):
        raise _material_error("The client key is not a PEM private key.")
    try:
        return serialization.load_pem_private_key(pem.strip().encode(), password=None)
    except TypeError:
        raise _material_error(
            "The client key is encrypted with a passphrase: the Docker client needs it "
            "unencrypted (openssl pkey -in key.pem -out key-plain.pem)."
        ) from None
    except UnsupportedAlgorithm:
        raise _material_error("The client key is of an unsupported type.") from None
    except (ValueError, UnicodeError):
        raise _material_error(
            "The client key is not a PEM private key (it does not parse)."
        ) from None


def _public_der(public_key) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def validate_tls_material(ca_pem: str, cert_pem: str, key_pem: str) -> None:
    """KeyFormatError (a clear message, never the material) unless the CA and client
    certificates are PEM certificates, the key a PEM private key (unencrypted) that
    belongs to the client certificate, and the client certificate is not expired."""
    ca = _load_certificate(ca_pem, "CA certificate")
    cert = _load_certificate(cert_pem, "client certificate")
    key = _load_key(key_pem)
    if _public_der(key.public_key()) != _public_der(cert.public_key()):
        raise _material_error("The client key does not match the client certificate.")
    now = datetime.datetime.now(datetime.UTC)
    if cert.not_valid_after_utc < now:
        raise _material_error(
            f"The client certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}."
        )
    if ca.not_valid_after_utc < now:
        raise _material_error(f"The CA certificate expired on {ca.not_valid_after_utc:%Y-%m-%d}.")


# --------------------------------------------------------------------------- errors


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__
        if exc is None:
            break
        args = getattr(exc, "args", ())
        if args and isinstance(args[0], BaseException) and id(args[0]) not in seen:
            yield args[0]


def tls_error(exc: BaseException, endpoint: TLSEndpoint) -> EngineError:
    """The engine error for an exception of the SDK / requests / ssl on `endpoint`."""
    if isinstance(exc, EngineError):
        return exc
    where = str(endpoint)
    chain = list(_chain(exc))
    text = " ".join(str(e) for e in chain).lower()
    if "certificate verify failed" in text or any(
        isinstance(e, ssl.SSLCertVerificationError) for e in chain
    ):
        reason = "does not match this host" if "mismatch" in text else "is not signed by this CA"
        return ServerCertificateUntrusted(f"The server's certificate at {where} {reason}.")
    if any(marker in text for marker in _CLIENT_REFUSED_ALERTS):
        return AuthenticationFailed(
            f"The server at {where} refused the client certificate.", hint=CLIENT_REFUSED_HINT
        )
    if "wrong version number" in text or "record layer failure" in text:
        return DockerUnavailable(
            f"{where} does not speak TLS.",
            hint="Check the port: 2376 is Docker's TLS port (2375 is plain HTTP).",
        )
    if any(isinstance(e, requests.exceptions.ConnectTimeout) for e in chain):
        return ConnectTimeout(f"{where} did not answer within {CONNECT_TIMEOUT:.0f} s.", _NET_HINT)
    if any(isinstance(e, requests.exceptions.Timeout | TimeoutError) for e in chain):
        return DockerUnavailable(f"The Docker engine at {where} did not answer in time.")
    if any(isinstance(e, ssl.SSLError | ConnectionResetError) for e in chain) or (
        "eof occurred" in text or "connection reset" in text or "connection aborted" in text
    ):
        # Servers that drop a refused client certificate without an alert.
        return AuthenticationFailed(
            f"The TLS connection to {where} was closed during the handshake: the server "
            "probably refused the client certificate.",
            hint=CLIENT_REFUSED_HINT,
        )
    if any(isinstance(e, requests.exceptions.ConnectionError | OSError) for e in chain):
        return Unreachable(f"{where} refused the connection or cannot be reached.", _NET_HINT)
    return dockerhost.docker_error(exc, where)


_CLIENT_REFUSED_ALERTS = (
    "alert unknown ca",
    "alert bad certificate",
    "alert certificate required",
    "alert certificate unknown",
    "alert handshake failure",
    "alert access denied",
)
_NET_HINT = (
    "Check the host name and port, that dockerd listens on it (-H tcp://0.0.0.0:2376 "
    "--tlsverify) and the firewalls."
)


def _tcp_probe(endpoint: TLSEndpoint, timeout: float) -> None:
    """Unreachable / ConnectTimeout unless a TCP connection opens within `timeout`."""
    timeout = min(float(timeout), CONNECT_TIMEOUT)
    try:
        with socket.create_connection((endpoint.host, endpoint.port), timeout=timeout):
            return
    except TimeoutError:
        raise ConnectTimeout(
            f"{endpoint} did not answer within {timeout:.0f} s.", _NET_HINT
        ) from None
    except socket.gaierror:
        raise Unreachable(f"The host name {endpoint.host} does not resolve.", _NET_HINT) from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise Unreachable(f"{endpoint}: {reason}.", _NET_HINT) from None


# --------------------------------------------------------------------------- client


def _write_private(directory: str, name: str, text: str) -> str:
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text.strip() + "\n")
    return path


class _TLSAPIClient(docker.APIClient):
    """Requests get a (connect, read) timeout: connect at most CONNECT_TIMEOUT."""

    def _set_request_timeout(self, kwargs):
        timeout = self.timeout
        if isinstance(timeout, int | float):
            timeout = (min(float(timeout), CONNECT_TIMEOUT), timeout)
        kwargs.setdefault("timeout", timeout)
        return kwargs


class TLSDockerClient(docker.DockerClient):
    """A DockerClient that owns a private directory of PEM files, removed on close()."""

    def __init__(self, tls_dir: str, **kwargs):
        self.api = _TLSAPIClient(**kwargs)
        # Else REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE would replace the pinned CA (and
        # HTTPS_PROXY would route the API through a proxy).
        self.api.trust_env = False
        self.tls_dir = tls_dir
        self._cleanup = weakref.finalize(self, shutil.rmtree, tls_dir, True)

    def close(self):
        try:
            super().close()
        finally:
            self._cleanup()


def docker_client_tls(endpoint: TLSEndpoint, timeout: float = 10) -> TLSDockerClient:
    """A Docker client for the engine at tcp://host:port with mutual TLS, API version
    negotiated. Raises Unreachable / ConnectTimeout (TCP), ServerCertificateUntrusted
    (server not trusted), AuthenticationFailed (client certificate refused),
    DockerUnavailable (no Docker API answers), KeyFormatError (bad PEM material)."""
    validate_tls_material(endpoint.ca_pem, endpoint.cert_pem, endpoint.key_pem)
    _tcp_probe(endpoint, timeout)
    tls_dir = tempfile.mkdtemp(prefix="windflow-tls-")  # 0700
    try:
        tls = docker.tls.TLSConfig(
            client_cert=(
                _write_private(tls_dir, "cert.pem", endpoint.cert_pem),
                _write_private(tls_dir, "key.pem", endpoint.key_pem),
            ),
            ca_cert=_write_private(tls_dir, "ca.pem", endpoint.ca_pem),
            verify=True,
        )
        client = TLSDockerClient(
            tls_dir,
            base_url=f"https://{endpoint.address}",
            tls=tls,
            version=_PLACEHOLDER_API,
            timeout=timeout,
        )
    except BaseException:
        shutil.rmtree(tls_dir, ignore_errors=True)
        raise
    try:
        client.api._version = client.api.version(api_version=False)["ApiVersion"]
    except BaseException as exc:
        client.close()
        if isinstance(exc, requests.exceptions.RequestException | DockerException | OSError):
            raise tls_error(exc, endpoint) from None
        if isinstance(exc, KeyError | ValueError):
            raise DockerUnavailable(
                f"{endpoint} answers TLS but not the Docker API.",
                hint="Check the port: it should be dockerd's (2376).",
            ) from None
        raise
    return client


# --------------------------------------------------------------------------- checks


def _disk_from_df(client: docker.DockerClient, host: str) -> Check:
    """The Docker API tells what Docker uses, not the free space left."""
    try:
        df = client.df()
    except Exception:  # informational only
        return Check(DISK, True, "free disk space is not reported by the Docker API")
    used = sum(item.get("Size") or 0 for item in df.get("Images") or [])
    used += sum(item.get("SizeRw") or 0 for item in df.get("Containers") or [])
    used += sum((item.get("UsageData") or {}).get("Size") or 0 for item in df.get("Volumes") or [])
    return Check(
        DISK,
        True,
        f"Docker uses {_size(used)} on {host} (images, containers, volumes); "
        "free disk space is not reported by the Docker API",
    )


def check_tls_target(endpoint: TLSEndpoint, timeout: float = 5) -> tuple[list[Check], Facts | None]:
    """Check a Docker engine over TCP+TLS: "tcp reachable", "tls" (the server's
    certificate verifies against the CA and the server accepts the client certificate),
    "docker engine", then "disk" (what Docker uses: free space is not in the API) and
    "memory". Stops at the first failure; facts are None when the engine was not
    queried."""
    started = time.monotonic()
    try:
        validate_tls_material(endpoint.ca_pem, endpoint.cert_pem, endpoint.key_pem)
    except EngineError as error:
        return [_failed(TLS, error, started)], None
    try:
        _tcp_probe(endpoint, timeout)
    except EngineError as error:
        return [_failed(TCP_REACHABLE, error, started)], None
    checks = [
        Check(TCP_REACHABLE, True, f"{endpoint.address} accepts TCP", duration_ms=_ms(started))
    ]
    step = time.monotonic()
    try:
        client = docker_client_tls(endpoint, timeout=timeout)
    except (ServerCertificateUntrusted, AuthenticationFailed, KeyFormatError, Unreachable) as error:
        checks.append(_failed(TLS, error, step))
        return checks, None
    except EngineError as error:
        checks.append(Check(TLS, True, "TLS handshake done", duration_ms=_ms(step)))
        checks.append(_failed(DOCKER_ENGINE, error))
        return checks, None
    try:
        checks.append(
            Check(
                TLS,
                True,
                "the server's certificate is signed by this CA and the server accepted "
                "the client certificate",
                duration_ms=_ms(step),
            )
        )
        step = time.monotonic()
        try:
            version = client.version()
            info = client.info()
        except Exception as exc:
            checks.append(_failed(DOCKER_ENGINE, tls_error(exc, endpoint), step))
            return checks, None
        checks.append(
            Check(
                DOCKER_ENGINE,
                True,
                f"Docker {version.get('Version')} (API {version.get('ApiVersion')}) at {endpoint}",
                duration_ms=_ms(step),
            )
        )
        checks.append(_disk_from_df(client, endpoint.host))
        checks.append(_memory_check(info.get("MemTotal"), None, endpoint.host))
        facts = Facts(
            os=info.get("OperatingSystem"),
            architecture=info.get("Architecture"),
            cpus=info.get("NCPU"),
            memory_bytes=info.get("MemTotal"),
            docker_version=version.get("Version"),
        )
        return checks, facts
    finally:
        client.close()
