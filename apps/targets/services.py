"""Targets: register servers (SSH or the local Docker socket), pin host keys, test them,
prepare them. The SSH and Docker work itself is the engine's (windflow.engine)."""

from __future__ import annotations

import json
import os.path
import re

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from apps.accounts import permissions
from apps.accounts.models import Membership
from apps.audit import services as audit
from apps.secrets import services as secrets
from apps.tenants.models import LocalEngine, Organization
from apps.tenants.validators import allowed_local_sockets, local_socket_is_allowed
from windflow.engine import ssh
from windflow.engine.errors import EngineError, KeyFormatError
from windflow.engine.labels import PROJECT_LABEL, STACK_LABEL
from windflow.errors import Conflict, ServiceError

from .checks import check_target
from .choices import RunStatus, TargetKind
from .connection import docker_client_for, engine_message, local_targets_mode
from .models import PrepareRun, Target, TargetCheck

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]{0,61}[a-z0-9]$|^[a-z0-9]$")
HOST_PATTERN = re.compile(r"^[A-Za-z0-9.-]{1,253}$|^\[?[0-9A-Fa-f:]+\]?$")
USER_PATTERN = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")


def _credential_name(slug: str, kind: str) -> str:
    suffix = "TLS" if kind == TargetKind.TCP_TLS else "SSH_KEY"
    return f"TARGET_{slug.upper().replace('-', '_').replace('.', '_')}_{suffix}"


def _check_tls_material(ca_pem: str, cert_pem: str, key_pem: str) -> None:
    from windflow.engine.tlsdocker import validate_tls_material

    try:
        validate_tls_material(ca_pem, cert_pem, key_pem)
    except KeyFormatError as exc:
        message = str(exc)
        field = (
            "ca_pem" if "CA" in message else "cert_pem" if "certificate" in message else "key_pem"
        )
        raise ServiceError(message, field=field) from exc


def _validate_address(*, name, kind, host, port, user) -> None:
    if not NAME_PATTERN.match(name or ""):
        raise ServiceError(
            _("Use lower-case letters, digits, dots and hyphens (e.g. web-1)."), field="name"
        )
    if kind not in TargetKind.values:
        raise ServiceError(_("Unknown kind of target."), field="kind")
    if kind in (TargetKind.SSH, TargetKind.TCP_TLS):
        if not HOST_PATTERN.match(host or ""):
            raise ServiceError(_("Enter a host name or an IP address."), field="host")
        if not 1 <= int(port) <= 65535:
            raise ServiceError(_("The port must be between 1 and 65535."), field="port")
    if kind == TargetKind.SSH and not USER_PATTERN.match(user or ""):
        raise ServiceError(_("Enter a valid user name."), field="user")


def _check_key(private_key: str, passphrase: str | None) -> str:
    try:
        return ssh.public_line_of(private_key, passphrase or None)
    except KeyFormatError as exc:
        raise ServiceError(
            str(exc), field="passphrase" if "passphrase" in str(exc).lower() else "private_key"
        ) from exc


def create_target(
    actor: Membership,
    *,
    name: str,
    kind: str,
    host: str = "",
    port: int = 22,
    user: str = "",
    socket_path: str = "",
    engine=None,
    private_key: str = "",
    passphrase: str = "",
    generate_key: bool = False,
    ca_pem: str = "",
    cert_pem: str = "",
    key_pem: str = "",
    labels: dict | None = None,
    environments=(),
) -> Target:
    """Register a target. For SSH, the host key is scanned now (it must answer) and waits for
    the admin's confirmation before it is pinned; nothing is stored if anything fails. A local
    target follows WINDFLOW_LOCAL_TARGETS: refused when off, made from an `engine` assigned to
    the organisation in staff mode (the only one when there is one), from an allowed
    `socket_path` in all mode."""
    permissions.require(actor, "target.add")
    name = (name or "").strip().lower()
    _validate_address(name=name, kind=kind, host=host, port=port, user=user)
    local = (
        _local_target_fields(engine, socket_path)
        if kind == TargetKind.LOCAL
        else {"engine": None, "socket_path": ""}
    )
    slug = slugify(name)
    if Target.objects.filter(slug=slug).exists():
        raise Conflict(
            _("A target named %(name)s already exists.") % {"name": name},
            field="name",
            code="duplicate",
        )
    public_key = ""
    host_key = None
    if kind == TargetKind.SSH:
        if generate_key:
            private_key, public_key = ssh.generate_ed25519_keypair()
            passphrase = ""
        elif not private_key.strip():
            raise ServiceError(
                _("Paste a private key, or let WindFlow generate one."), field="private_key"
            )
        else:
            public_key = _check_key(private_key, passphrase)
        try:
            host_key = ssh.scan_host_key(host, int(port), timeout=5)
        except EngineError as exc:
            raise ServiceError(engine_message(exc), field="host") from exc
    if kind == TargetKind.TCP_TLS:
        _check_tls_material(ca_pem, cert_pem, key_pem)
    try:
        with transaction.atomic():
            target = Target.objects.create(
                name=name,
                slug=slug,
                kind=kind,
                host=host.strip(),
                port=int(port),
                user=user.strip(),
                socket_path=local["socket_path"],
                engine=local["engine"],
                public_key=public_key,
                labels=labels or {},
                pending_host_key_fingerprint=host_key.fingerprint if host_key else "",
                host_key_type=host_key.key_type if host_key else "",
            )
            target.environments.set(environments)
            if kind in (TargetKind.SSH, TargetKind.TCP_TLS):
                if kind == TargetKind.SSH:
                    value = {"private_key": private_key, "passphrase": passphrase or ""}
                else:
                    value = {"ca_pem": ca_pem, "cert_pem": cert_pem, "key_pem": key_pem}
                target.credential = secrets.create_server_credential(
                    actor,
                    name=_credential_name(slug, kind),
                    value=json.dumps(value),
                    description=_("Credentials of target %(name)s") % {"name": name},
                )
                target.save(update_fields=["credential"])
            audit.record(
                "target.create",
                obj=target,
                changes={
                    "kind": kind,
                    "address": target.address,
                    **({"engine": local["engine"].name} if local["engine"] else {}),
                    "host_key": target.pending_host_key_fingerprint,
                },
                actor=actor,
            )
    except IntegrityError as exc:
        raise Conflict(
            _("A target named %(name)s already exists.") % {"name": name},
            field="name",
            code="duplicate",
        ) from exc
    return target


def confirm_host_key(actor: Membership, target: Target, fingerprint: str) -> Target:
    """Pin the host key the admin has compared with the server's own."""
    permissions.require(actor, "target.change")
    if not target.pending_host_key_fingerprint:
        raise ServiceError(_("There is no host key waiting for confirmation."))
    if fingerprint.strip() != target.pending_host_key_fingerprint:
        raise ServiceError(
            _("The fingerprint does not match the one the server presented."), field="fingerprint"
        )
    before = target.host_key_fingerprint
    target.host_key_fingerprint = target.pending_host_key_fingerprint
    target.pending_host_key_fingerprint = ""
    with transaction.atomic():
        target.save(update_fields=["host_key_fingerprint", "pending_host_key_fingerprint"])
        audit.record(
            "target.pin_host_key",
            obj=target,
            changes={"host_key": [before, target.host_key_fingerprint]},
            actor=actor,
        )
    return target


def rescan_host_key(actor: Membership, target: Target) -> Target:
    """After a server was reinstalled: read its new key, to be confirmed like the first."""
    permissions.require(actor, "target.change")
    try:
        host_key = ssh.scan_host_key(target.host, target.port, timeout=5)
    except EngineError as exc:
        raise ServiceError(engine_message(exc)) from exc
    target.pending_host_key_fingerprint = host_key.fingerprint
    target.host_key_type = host_key.key_type
    target.save(update_fields=["pending_host_key_fingerprint", "host_key_type"])
    return target


def update_target(
    actor: Membership, target: Target, *, labels=None, environments=None, name=None
) -> Target:
    permissions.require(actor, "target.change")
    before = {"labels": target.labels, "name": target.name}
    with transaction.atomic():
        if labels is not None:
            target.labels = labels
        if name is not None and name != target.name:
            _validate_address(name=name, kind=TargetKind.LOCAL, host="", port=1, user="")
            target.name = name
        target.save()
        if environments is not None:
            target.environments.set(environments)
        changes = audit.diff(before, {"labels": target.labels, "name": target.name})
        audit.record("target.update", obj=target, changes=changes, actor=actor)
    return target


def delete_target(actor: Membership, target: Target) -> None:
    """Refused while stacks use the server: they must be deleted or moved first (their
    containers would be left unmanaged)."""
    permissions.require(actor, "target.delete")
    in_use = target.stacks.count()
    if in_use:
        raise Conflict(
            ngettext(
                "%(n)d stack uses %(name)s: delete it or move it to another server first.",
                "%(n)d stacks use %(name)s: delete them or move them to another server first.",
                in_use,
            )
            % {"n": in_use, "name": target.name},
            code="target_in_use",
        )
    with transaction.atomic():
        audit.record("target.delete", obj=target, actor=actor)
        credential = target.credential
        target.delete()
        if credential is not None:
            secrets.delete_server_credential(actor, credential)


def stacks_on(target: Target):
    """The stacks deployed to (or meant for) this server, for its page."""
    return target.stacks.select_related("environment", "current_revision").order_by("name")


# --- Local engines: the platform's own Docker sockets -----------------------------------------
#
# WINDFLOW_LOCAL_TARGETS says whether organisations may use a Docker socket of the machine
# WindFlow runs on: "off" (never), "staff" (only an engine that platform staff assigned to the
# organisation in the admin) or "all" (any owner picks a socket: a single-organisation install).
# Whatever the mode, only the sockets of WINDFLOW_LOCAL_SOCKETS are ever dialled, and that is
# checked each time a target is connected, not only when it is created.


def assigned_engines():
    """The local engines that platform staff assigned to the current organisation."""
    return LocalEngine.objects.filter(organizations__schema_name=connection.schema_name).order_by(
        "name"
    )


def local_socket_choices() -> list[tuple[str, str]]:
    """What an owner may pick for a new local target: (value, label) pairs. In staff mode the
    engines assigned to this organisation (value: the engine's id); in all mode the allowed
    sockets; in off mode nothing."""
    mode = local_targets_mode()
    if mode == "staff":
        return [(str(engine.pk), engine.name) for engine in assigned_engines()]
    if mode == "all":
        return [(path, path) for path in allowed_local_sockets()]
    return []


def _local_refusal() -> ServiceError:
    return ServiceError(
        _(
            "Local Docker engines are turned off on this platform (WINDFLOW_LOCAL_TARGETS=off): "
            "add a server over SSH or TCP+TLS."
        ),
        field="kind",
        code="local_targets_off",
    )


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


def _local_target_fields(engine, socket_path: str) -> dict:
    """`engine` and `socket_path` of a new local target, by the operator's mode; ServiceError
    naming the setting when the mode or the allow-list refuses."""
    mode = local_targets_mode()
    if mode == "off":
        raise _local_refusal()
    if mode == "staff":
        found = _engine_for_new_target(engine)
        return {"engine": found, "socket_path": found.socket_path}
    if engine not in (None, ""):
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
            % {"path": socket_path or "-", "allowed": ", ".join(allowed_local_sockets()) or "-"},
            field="socket_path",
            code="socket_not_allowed",
        )
    return {"engine": None, "socket_path": os.path.normpath(socket_path)}


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


def local_engine_of(target: Target) -> LocalEngine | None:
    """The engine (public schema) a local target was made from, if it still exists."""
    if target.engine_id is None:
        return None
    return LocalEngine.objects.filter(pk=target.engine_id).first()


def is_platform_engine(target: Target | None) -> bool:
    """True when the target is a Docker engine of the platform's (a local socket handed out
    by staff, or shared between organisations), not a server the organisation owns: what
    already runs there is not the organisation's. A single-organisation install ("all" mode,
    one organisation) owns its machine."""
    if target is None or target.kind != TargetKind.LOCAL:
        return False
    return local_targets_mode() != "all" or is_shared_engine(target)


def is_shared_engine(target: Target) -> bool:
    """True when the Docker engine of `target` is shared between organisations: a local
    engine that platform staff assigned to more than one organisation (through any engine on
    the same socket), or any local socket in "all" mode while the platform has several
    organisations. False for SSH and TCP+TLS servers (the organisation's own)."""
    if target is None or target.kind != TargetKind.LOCAL:
        return False
    engine = local_engine_of(target)
    path = engine.socket_path if engine is not None else target.socket_path
    return len(_organizations_on_socket(path)) > 1


def list_containers(target: Target) -> list[dict]:
    """What runs on the target now (for its page): name, image, state, status, ports, and the
    stack it belongs to. A local engine is the platform's (and may be shared with other
    organisations): there, only the containers of this organisation's stacks are listed. An
    SSH or TCP+TLS server is the organisation's own: everything on it is listed."""
    from apps.stacks.models import Stack

    stacks = {str(uid): name for uid, name in Stack.objects.values_list("uid", "name")}
    own_only = target.kind == TargetKind.LOCAL
    with docker_client_for(target, timeout=5) as client:
        try:
            containers = client.containers.list(
                all=True, filters={"label": [STACK_LABEL]} if own_only else None
            )
        except Exception as exc:  # docker SDK and transport errors alike
            from windflow.engine.dockerhost import docker_error

            raise ServiceError(
                engine_message(docker_error(exc, target.name)), code="docker_unavailable"
            ) from exc
        out = []
        for container in containers:
            labels = (container.attrs.get("Config") or {}).get("Labels") or {}
            stack = stacks.get(labels.get(STACK_LABEL) or "")
            if own_only and stack is None:
                continue  # another organisation's, or the platform's own
            out.append({**_container_dict(container), "stack": stack or ""})
        return out


def _container_dict(container) -> dict:
    attrs = container.attrs
    ports = sorted(
        {
            f"{binding['HostIp'] or '*'}:{binding['HostPort']}->{port}"
            for port, bindings in (attrs.get("NetworkSettings", {}).get("Ports") or {}).items()
            for binding in bindings or []
        }
    )
    return {
        "name": container.name,
        "image": attrs.get("Config", {}).get("Image", ""),
        "state": attrs.get("State", {}).get("Status", ""),
        "status": attrs.get("State", {}).get("Health", {}).get("Status", ""),
        "project": attrs.get("Config", {}).get("Labels", {}).get(PROJECT_LABEL, ""),
        "ports": ports,
    }


def request_check(actor: Membership, target: Target) -> TargetCheck:
    permissions.require(actor, "target.check")
    return check_target(target, triggered_by=actor.user)


# --- Preparing a server -----------------------------------------------------------------------


def request_prepare(actor: Membership, target: Target) -> PrepareRun:
    permissions.require(actor, "target.prepare")
    if target.kind != TargetKind.SSH:
        raise ServiceError(_("Only SSH targets can be prepared."))
    if not target.host_key_fingerprint:
        raise ServiceError(_("Confirm the server's host key first."))
    if target.prepare_runs.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).exists():
        raise Conflict(_("A preparation is already running on this server."))
    from windflow.workers import send_on_commit

    from .tasks import prepare_target

    with transaction.atomic():
        run = PrepareRun.objects.create(target=target, requested_by=actor.user)
        audit.record("target.prepare", obj=target, actor=actor)
        send_on_commit(prepare_target, run.pk)
    return run
