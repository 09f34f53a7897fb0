"""Connecting to a server: the one place that answers "connect to this target" and "check
this target".

One transport per kind of target (a Docker socket of the platform's machine, Docker over
SSH, Docker over TCP+TLS), picked from ``TRANSPORTS`` by the target's kind, as healthchecks.io
picks an integration's transport. A transport knows what a new target of its kind needs (its
address fields, its credential), how to build the server's Docker client and how to check
the server, and whether the engine there is the organisation's own:

    with connect(target, timeout=5) as driver:   # a windflow.engine Driver
        driver.status(project)
    check_target(target)                          # tests the server, records a TargetCheck

A server that cannot be reached or used raises ServerUnavailable (a ServiceError) saying why,
with the engine error's code (``host_key_changed``, ``ssh_auth_failed``... docs/targets.md);
inside the block the driver raises engine errors (windflow.engine.errors) only, for the caller
to tell as it sees fit. Imports neither the services nor the tasks of the app, so both (and
the running jobs of other apps) can use it.
"""

from __future__ import annotations

import json
import logging
import os.path
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import ClassVar

import paramiko
from django.conf import settings
from django.db import connection
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.secrets import services as secrets
from apps.secrets.models import SecretRef
from apps.tenants import index as operator_index
from apps.tenants.models import LocalEngine, Organization
from apps.tenants.validators import allowed_local_sockets, local_socket_is_allowed
from windflow.engine import checks as engine_checks
from windflow.engine import dockerhost, ssh, tlsdocker
from windflow.engine.drivers import Driver
from windflow.engine.drivers.docker import DockerDriver
from windflow.engine.drivers.files import FileStore, LocalFiles, SFTPFiles
from windflow.engine.errors import EngineError, KeyFormatError
from windflow.errors import ServiceError
from windflow.redaction import secrets_in_scope

from .choices import TargetKind, TargetStatus
from .models import Target, TargetCheck

logger = logging.getLogger(__name__)

# Sent (target=) after a connection test reached the server: WindFlow's next contact with
# it, when what a lost deployment left there is removed (apps.deployments.tasks).
server_answered = Signal()

HOST_PATTERN = re.compile(r"^[A-Za-z0-9.-]{1,253}$|^\[?[0-9A-Fa-f:]+\]?$")
USER_PATTERN = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")


def engine_message(exc: EngineError) -> str:
    """An engine error as one text for people: what went wrong, then how to fix it."""
    hint = getattr(exc, "hint", "")
    return f"{exc} {hint}".strip()


class ServerUnavailable(ServiceError):
    """The server could not be reached or used. ``code`` names the kind of failure (the
    engine error's ``error_code``: ``host_key_changed``, ``ssh_auth_failed``,
    ``docker_permission_denied``...), ``summary`` says what went wrong, ``hint`` how to fix
    it; the message says both, for people."""

    def __init__(self, error: EngineError):
        super().__init__(engine_message(error), code=error.error_code)
        self.summary = str(error)
        self.hint = error.hint or ""


# --- Local engines: the platform's own Docker sockets -----------------------------------------
#
# WINDFLOW_LOCAL_TARGETS says whether organisations may use a Docker socket of the machine
# WindFlow runs on: "off" (never), "staff" (only an engine that platform staff assigned to the
# organisation in the admin) or "all" (any owner picks a socket: a single-organisation install).
# Whatever the mode, only the sockets of WINDFLOW_LOCAL_SOCKETS are ever dialled, and that is
# checked each time a target is connected, not only when it is created.

LOCAL_MODES = ("off", "staff", "all")


def local_targets_mode() -> str:
    mode = getattr(settings, "WINDFLOW_LOCAL_TARGETS", "off")
    return mode if mode in LOCAL_MODES else "off"


def assigned_engines():
    """The local engines that platform staff assigned to the current organisation."""
    return LocalEngine.objects.filter(organizations__schema_name=connection.schema_name).order_by(
        "name"
    )


def local_engine_of(target: Target) -> LocalEngine | None:
    """The engine (public schema) a local target was made from, if it still exists."""
    if target.engine_id is None:
        return None
    return LocalEngine.objects.filter(pk=target.engine_id).first()


def _organizations_on_socket(path: str) -> set:
    """The organisations (ids) that may reach the engine behind the socket `path`."""
    path = os.path.normpath(path or "/")
    ids = set()
    for engine in LocalEngine.objects.prefetch_related("organizations"):
        if os.path.normpath(engine.socket_path) == path:
            ids.update(organization.pk for organization in engine.organizations.all())
    if local_targets_mode() == "all":
        ids.update(
            Organization.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME).values_list(
                "pk", flat=True
            )
        )
    current = getattr(connection, "tenant", None)
    if current is not None and getattr(current, "pk", None) and not current.is_public:
        ids.add(current.pk)
    return ids


def _engine_for_new_target(engine) -> LocalEngine:
    """The assigned engine named by `engine` (a LocalEngine, its id or its name)."""
    queryset = assigned_engines()
    found = None
    if engine in (None, "") and queryset.count() == 1:
        found = queryset.first()  # the only one there is
    elif isinstance(engine, LocalEngine):
        found = queryset.filter(pk=engine.pk).first()
    elif engine not in (None, "") and "\x00" not in str(engine):
        text = str(engine).strip()
        if text.isascii() and text.isdigit() and len(text) < 18:
            found = queryset.filter(pk=int(text)).first()
        found = found or queryset.filter(name=text).first()
    if found is None:
        names = ", ".join(e.name for e in queryset)
        raise ServiceError(
            _("Pick one of the local engines assigned to this organisation: %(names)s.")
            % {"names": names}
            if names
            else _(
                "No local engine is assigned to this organisation: platform staff assign them "
                "(WINDFLOW_LOCAL_TARGETS=staff)."
            ),
            field="engine",
            code="engine_not_assigned",
        )
    return found


# --- Transports ---------------------------------------------------------------------------------


@dataclass
class Setup:
    """What a new target of a kind stores beyond its address: more columns, and the value
    of its credential (a server credential secret; None when the kind has none)."""

    columns: dict = field(default_factory=dict)
    credential: dict | None = None


class Transport:
    """How WindFlow reaches one kind of server. Subclasses say how a new target of their kind
    is checked and set up (class methods: there is no target yet), how the server's Docker
    client is built and how the server is checked."""

    kind: ClassVar[str]
    # The suffix of the credential secret's name (TARGET_<SLUG>_<suffix>); "" for none.
    credential_suffix: ClassVar[str] = ""
    # The machine is the platform's (a socket of the machine WindFlow runs on), not a server
    # of the organisation's: only the organisation's own stacks are shown there.
    platform_machine: ClassVar[bool] = False
    # "Prepare server" (install Docker over a shell) works on it.
    can_prepare: ClassVar[bool] = False
    # The check recorded when the server cannot even be tried (no key, socket refused).
    unusable_check: ClassVar[str] = "credential"
    unusable_hint = gettext_lazy("Edit the target and give it a key.")

    def __init__(self, target: Target):
        self.target = target

    # -- a new target of this kind

    @classmethod
    def clean_fields(cls, *, host: str, port, user: str, engine, socket_path: str) -> dict:
        """The checked fields of a new target (before its name is known to be free): the
        local engine and socket columns. ServiceError naming the field otherwise."""
        return {"engine": None, "socket_path": ""}

    @classmethod
    def setup(cls, fields: dict) -> Setup:
        """What reaching the new server gives (host key, public key) and its credential, from
        the create form's `fields`. ServiceError naming the field otherwise."""
        return Setup()

    # -- connecting

    def docker_client(self, *, timeout: float):
        """A Docker Engine API client for the server (closed by the caller). Raises
        EngineError (the server) or ServiceError (the target's settings)."""
        raise NotImplementedError

    @contextmanager
    def driver(self, *, timeout: float = 10) -> Iterator[Driver]:
        """The server's driver for the block, its client closed after it."""
        try:
            client = self.docker_client(timeout=timeout)
        except EngineError as exc:
            raise ServerUnavailable(exc) from exc
        try:
            yield DockerDriver(client, where=self.target.name)
        finally:
            client.close()

    def run_checks(self) -> tuple[list, object]:
        """The connectivity checks of the server: (engine Check list, engine Facts or None).
        ServiceError when the target cannot even be tried."""
        raise NotImplementedError

    @contextmanager
    def files(self, stack: str) -> Iterator[FileStore]:
        """The folders of stack `stack`'s revisions on the server (relative binds, configs,
        secrets) for the block. ServiceError when this kind of server cannot take files."""
        raise ServiceError(
            _(
                "%(name)s is reached over TCP+TLS, which cannot copy the files this stack "
                "mounts (relative bind mounts, configs, secrets): deploy it to a server "
                "reached over SSH."
            )
            % {"name": self.target.name},
            code="files_need_ssh",
        )
        yield  # pragma: no cover - a generator, for @contextmanager

    def session(self):
        """A context manager giving a shell session on the server (to prepare it)."""
        raise ServiceError(
            _("%(name)s is not a server reached over SSH.") % {"name": self.target.name},
            code="not_ssh",
        )

    # -- whose engine it is

    def is_shared_engine(self) -> bool:
        """The engine is shared between organisations."""
        return False

    def is_platform_engine(self) -> bool:
        """The engine is the platform's, not the organisation's own: what already runs there
        is not the organisation's."""
        return False


class LocalSocketTransport(Transport):
    """A Docker socket of the machine WindFlow runs on: the platform operator's to hand out
    (WINDFLOW_LOCAL_TARGETS, WINDFLOW_LOCAL_SOCKETS, engines assigned by staff), checked each
    time it is connected."""

    kind = TargetKind.LOCAL
    platform_machine = True
    unusable_check = "socket"
    unusable_hint = gettext_lazy("Ask the platform operator.")

    @classmethod
    def clean_fields(cls, *, host, port, user, engine, socket_path) -> dict:
        """`engine` and `socket_path` by the operator's mode; ServiceError naming the setting
        when the mode or the allow-list refuses."""
        mode = local_targets_mode()
        if mode == "off":
            raise ServiceError(
                _(
                    "Local Docker engines are turned off on this platform "
                    "(WINDFLOW_LOCAL_TARGETS=off): add a server over SSH or TCP+TLS."
                ),
                field="kind",
                code="local_targets_off",
            )
        if mode == "staff" or engine not in (None, ""):
            found = _engine_for_new_target(engine)
            return {"engine": found, "socket_path": found.socket_path}
        allowed = allowed_local_sockets()
        if not socket_path and len(allowed) == 1:
            socket_path = allowed[0]
        if not local_socket_is_allowed(socket_path):
            raise ServiceError(
                _(
                    "%(path)s is not an allowed Docker socket (WINDFLOW_LOCAL_SOCKETS): "
                    "pick one of %(allowed)s."
                )
                % {"path": socket_path or "-", "allowed": ", ".join(allowed) or "-"},
                field="socket_path",
                code="socket_not_allowed",
            )
        return {"engine": None, "socket_path": os.path.normpath(socket_path)}

    def socket_path(self) -> str:
        """The unix socket to dial, checked now against the operator's mode, the engine's
        assignment and the allow-list; ServiceError saying why otherwise."""
        target = self.target
        mode = local_targets_mode()
        if mode == "off":
            raise ServiceError(
                _(
                    "%(name)s uses a Docker socket of the platform's machine, and local Docker "
                    "engines are turned off on this platform (WINDFLOW_LOCAL_TARGETS=off): "
                    "move its stacks to a server over SSH or TCP+TLS."
                )
                % {"name": target.name},
                code="local_targets_off",
            )
        if target.engine_id is not None:
            path = self._assigned_engine().socket_path
        elif mode == "staff":
            raise ServiceError(
                _(
                    "%(name)s names the Docker socket %(path)s itself; on this platform local "
                    "engines are assigned by platform staff (WINDFLOW_LOCAL_TARGETS=staff): "
                    "ask them for one."
                )
                % {"name": target.name, "path": target.socket_path or "-"},
                code="engine_required",
            )
        else:
            path = target.socket_path
        if not local_socket_is_allowed(path):
            raise ServiceError(
                _(
                    "WindFlow does not connect to the Docker socket %(path)s: it is not on the "
                    "operator's allow-list (WINDFLOW_LOCAL_SOCKETS)."
                )
                % {"path": path or "-"},
                code="socket_not_allowed",
            )
        return os.path.normpath(path)

    def _assigned_engine(self) -> LocalEngine:
        target = self.target
        engine = local_engine_of(target)
        if engine is None:
            raise ServiceError(
                _(
                    "The local engine of %(name)s was removed by the platform staff: move its "
                    "stacks to another server."
                )
                % {"name": target.name},
                code="engine_removed",
            )
        if not engine.organizations.filter(schema_name=connection.schema_name).exists():
            raise ServiceError(
                _(
                    "The local engine %(engine)s is no longer assigned to this organisation: "
                    "ask the platform staff, or move the stacks of %(name)s to another server."
                )
                % {"engine": engine.name, "name": target.name},
                code="engine_not_assigned",
            )
        return engine

    def docker_client(self, *, timeout):
        return dockerhost.docker_client_local(self.socket_path(), timeout=timeout)

    def run_checks(self):
        return engine_checks.check_local_socket(self.socket_path())

    @contextmanager
    def files(self, stack: str) -> Iterator[FileStore]:
        """The machine WindFlow runs on: written directly."""
        self.socket_path()  # the same checks as for connecting
        yield _file_store(LocalFiles(), stack)

    def is_shared_engine(self) -> bool:
        """A local engine that platform staff assigned to more than one organisation (through
        any engine on the same socket), or any local socket in "all" mode while the platform
        has several organisations."""
        engine = local_engine_of(self.target)
        path = engine.socket_path if engine is not None else self.target.socket_path
        return len(_organizations_on_socket(path)) > 1

    def is_platform_engine(self) -> bool:
        """A local socket handed out by staff, or shared between organisations. A
        single-organisation install ("all" mode, one organisation) owns its machine."""
        return local_targets_mode() != "all" or self.is_shared_engine()


class RemoteTransport(Transport):
    """A server of the organisation's, at a host and port, with a credential kept as a
    server credential secret."""

    @classmethod
    def clean_fields(cls, *, host, port, user, engine, socket_path) -> dict:
        if not HOST_PATTERN.match(host or ""):
            raise ServiceError(_("Enter a host name or an IP address."), field="host")
        if not 1 <= int(port) <= 65535:
            raise ServiceError(_("The port must be between 1 and 65535."), field="port")
        return super().clean_fields(
            host=host, port=port, user=user, engine=engine, socket_path=socket_path
        )

    def credential(self) -> dict:
        """The target's credential (secret values: keep them in a redaction scope)."""
        target = self.target
        if (
            target.credential_id is None
            or not SecretRef.server_credentials.filter(pk=target.credential_id).exists()
        ):
            raise ServiceError(
                _("The SSH key of this target was deleted: add a new key."),
                code="credential_missing",
            )
        return json.loads(secrets.read_value(target.credential))

    def endpoint(self):
        """A context manager giving the engine's endpoint, with its credential resolved (and
        redacted from every log) only for the block."""
        raise NotImplementedError


class SSHTransport(RemoteTransport):
    """Docker over SSH: a pinned host key (confirmed by an admin before the first
    connection), a private key; the Docker API runs over channels of that session."""

    kind = TargetKind.SSH
    credential_suffix = "SSH_KEY"
    can_prepare = True

    @classmethod
    def clean_fields(cls, *, host, port, user, engine, socket_path) -> dict:
        fields = super().clean_fields(
            host=host, port=port, user=user, engine=engine, socket_path=socket_path
        )
        if not USER_PATTERN.match(user or ""):
            raise ServiceError(_("Enter a valid user name."), field="user")
        return fields

    @classmethod
    def setup(cls, fields: dict) -> Setup:
        """The key pair (generated, or the pasted key checked) and the server's host key,
        scanned now (it must answer) and waiting for an admin's confirmation."""
        private_key = fields.get("private_key") or ""
        passphrase = fields.get("passphrase") or ""
        if fields.get("generate_key"):
            private_key, public_key = ssh.generate_ed25519_keypair()
            passphrase = ""
        elif not private_key.strip():
            raise ServiceError(
                _("Paste a private key, or let WindFlow generate one."), field="private_key"
            )
        else:
            public_key = cls._public_key(private_key, passphrase)
        host_key = cls.scan_host_key(fields["host"], int(fields["port"]), field="host")
        return Setup(
            columns={
                "public_key": public_key,
                "pending_host_key_fingerprint": host_key.fingerprint,
                "host_key_type": host_key.key_type,
            },
            credential={"private_key": private_key, "passphrase": passphrase},
        )

    @staticmethod
    def _public_key(private_key: str, passphrase: str) -> str:
        try:
            return ssh.public_line_of(private_key, passphrase or None)
        except KeyFormatError as exc:
            field = "passphrase" if "passphrase" in str(exc).lower() else "private_key"
            raise ServiceError(str(exc), field=field) from exc

    @staticmethod
    def scan_host_key(host: str, port: int, *, field: str | None = None) -> ssh.HostKey:
        """The host key the server presents now; ServiceError (on `field`) when it does not
        answer."""
        try:
            return ssh.scan_host_key(host, port, timeout=5)
        except EngineError as exc:
            raise ServiceError(engine_message(exc), field=field) from exc

    @contextmanager
    def endpoint(self) -> Iterator[ssh.SSHEndpoint]:
        target = self.target
        credential = self.credential()
        passphrase = credential.get("passphrase") or ""
        with secrets_in_scope([credential["private_key"], passphrase]):
            yield ssh.SSHEndpoint(
                host=target.host,
                port=target.port,
                user=target.user,
                private_key=credential["private_key"],
                passphrase=passphrase or None,
                pinned_fingerprint=target.host_key_fingerprint or None,
            )

    def docker_client(self, *, timeout):
        with self.endpoint() as endpoint:
            return dockerhost.docker_client_ssh(endpoint, timeout=timeout)

    def run_checks(self):
        with self.endpoint() as endpoint:
            # A healthy session goes back to the pool: the next job on this server reuses it.
            return engine_checks.check_ssh_target(endpoint, pool=ssh.pool)

    @contextmanager
    def session(self) -> Iterator[ssh.SSHSession]:
        with self.endpoint() as endpoint, ssh.pool.session(endpoint) as session:
            yield session

    @contextmanager
    def files(self, stack: str) -> Iterator[FileStore]:
        """Over SFTP, on a channel of the server's SSH session."""
        try:
            with self.session() as session:
                sftp = paramiko.SFTPClient.from_transport(session.transport)
                try:
                    yield _file_store(SFTPFiles(sftp), stack)
                finally:
                    sftp.close()
        except EngineError as exc:
            raise ServerUnavailable(exc) from exc
        except paramiko.SSHException as exc:
            raise ServerUnavailable(
                EngineError(
                    f"{self.target.name}: SFTP is not available ({exc}).",
                    "Turn on the SFTP subsystem of the server's sshd (Subsystem sftp).",
                )
            ) from exc


class TLSTransport(RemoteTransport):
    """Docker over TCP with mutual TLS (dockerd --tlsverify): the CA, the client certificate
    and its key."""

    kind = TargetKind.TCP_TLS
    credential_suffix = "TLS"

    @classmethod
    def setup(cls, fields: dict) -> Setup:
        material = {name: fields.get(name) or "" for name in ("ca_pem", "cert_pem", "key_pem")}
        try:
            tlsdocker.validate_tls_material(**material)
        except KeyFormatError as exc:
            message = str(exc)
            field = (
                "ca_pem"
                if "CA" in message
                else "cert_pem"
                if "certificate" in message
                else "key_pem"
            )
            raise ServiceError(message, field=field) from exc
        return Setup(credential=material)

    @contextmanager
    def endpoint(self):
        credential = self.credential()
        with secrets_in_scope([credential["key_pem"]]):
            yield tlsdocker.TLSEndpoint(
                host=self.target.host,
                port=self.target.port,
                ca_pem=credential["ca_pem"],
                cert_pem=credential["cert_pem"],
                key_pem=credential["key_pem"],
            )

    def docker_client(self, *, timeout):
        with self.endpoint() as endpoint:
            return tlsdocker.docker_client_tls(endpoint, timeout=timeout)

    def run_checks(self):
        with self.endpoint() as endpoint:
            return tlsdocker.check_tls_target(endpoint)


TRANSPORTS: dict[str, type[Transport]] = {
    transport.kind: transport for transport in (LocalSocketTransport, SSHTransport, TLSTransport)
}


def transport_class(kind: str) -> type[Transport]:
    """The transport of targets of `kind`; ServiceError (on the kind field) for a kind that
    WindFlow cannot connect to."""
    try:
        return TRANSPORTS[kind]
    except (KeyError, TypeError):
        raise ServiceError(_("Unknown kind of target."), field="kind") from None


def transport_for(target: Target) -> Transport:
    """The transport that reaches `target`, by its kind."""
    try:
        return transport_class(target.kind)(target)
    except ServiceError:
        raise ServiceError(
            _("WindFlow cannot connect to %(name)s: its kind %(kind)s is unknown.")
            % {"name": target.name, "kind": target.kind or "-"},
            code="unknown_kind",
        ) from None


def _file_store(fs, stack: str) -> FileStore:
    return FileStore(
        fs,
        files_root=settings.WINDFLOW_STACK_FILES_ROOT,
        secrets_root=settings.WINDFLOW_STACK_SECRETS_ROOT,
        stack=stack,
    )


# --- Connecting and checking --------------------------------------------------------------------


@contextmanager
def connect(target: Target, *, timeout: float = 10) -> Iterator[Driver]:
    """The driver of `target`'s engine for the block, closed (with its SSH session) after it.
    A server that cannot be reached or used raises ServerUnavailable, whose code names why
    (docs/targets.md), with the reason and its fix."""
    with transport_for(target).driver(timeout=timeout) as driver:
        yield driver


@contextmanager
def stack_files(target: Target, stack: str) -> Iterator[FileStore]:
    """The folders of stack `stack`'s revisions on `target` for the block: written directly
    on the platform's machine, over SFTP on an SSH server; ServiceError (files_need_ssh) on
    a TCP+TLS server. ServerUnavailable when the server cannot be reached."""
    with transport_for(target).files(stack) as store:
        yield store


def is_shared_engine(target: Target | None) -> bool:
    """True when the Docker engine of `target` is shared between organisations (see
    LocalSocketTransport.is_shared_engine). False for SSH and TCP+TLS servers (the
    organisation's own)."""
    return target is not None and transport_for(target).is_shared_engine()


def is_platform_engine(target: Target | None) -> bool:
    """True when the target is a Docker engine of the platform's (a local socket handed out
    by staff, or shared between organisations), not a server the organisation owns: what
    already runs there is not the organisation's."""
    return target is not None and transport_for(target).is_platform_engine()


def check_target(target: Target, *, triggered_by=None) -> TargetCheck:
    """Run the connectivity test, store it, update status, facts and last_seen."""
    started = time.perf_counter()
    try:
        results, facts = transport_for(target).run_checks()
    except ServiceError as exc:
        transport = TRANSPORTS.get(target.kind, Transport)
        results = [
            engine_checks.Check(
                name=transport.unusable_check,
                ok=False,
                detail=exc.message,
                hint=str(transport.unusable_hint),
            )
        ]
        facts = None
    status = _status_of(results)
    check = TargetCheck.objects.create(
        target=target,
        status=status,
        triggered_by=triggered_by,
        duration_ms=int((time.perf_counter() - started) * 1000),
        results=[_check_dict(result) for result in results],
    )
    target.status = status
    fields = ["status"]
    if status != TargetStatus.OFFLINE:
        target.last_seen = timezone.now()
        fields.append("last_seen")
    if facts is not None:
        target.facts = asdict(facts) if is_dataclass(facts) else dict(facts)
        fields.append("facts")
    target.save(update_fields=fields)
    failed = next((result.name for result in results if not result.ok), "")
    operator_index.server_checked(target, failed_check=failed)
    if status != TargetStatus.OFFLINE:
        for receiver, result in server_answered.send_robust(sender=Target, target=target):
            if isinstance(result, Exception):
                logger.warning("%s after the check of %s failed: %s", receiver, target, result)
    return check


# A failure of one of these means the engine was not reached at all.
BLOCKING_CHECKS = frozenset(
    {"ssh reachable", "host key", "authenticated", "credential", "socket", "tcp reachable", "tls"}
)


def _status_of(results) -> str:
    if results and all(result.ok for result in results):
        return TargetStatus.ONLINE
    if not results or any(not result.ok and result.name in BLOCKING_CHECKS for result in results):
        return TargetStatus.OFFLINE
    return TargetStatus.DEGRADED


def _check_dict(result) -> dict:
    return {
        "name": result.name,
        "ok": result.ok,
        "detail": result.detail,
        "hint": result.hint,
        "duration_ms": round(result.duration_ms, 1),
    }
