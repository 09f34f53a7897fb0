"""Targets: register servers (SSH, TCP+TLS or a local Docker socket), pin host keys, test
them, prepare them. What differs by kind of server (its fields, its credential, how it is
reached and checked) is its transport's (apps.targets.connect); the SSH and Docker work itself
is the engine's (windflow.engine)."""

from __future__ import annotations

import json
import re

from django.db import IntegrityError, transaction
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from apps.accounts import permissions
from apps.accounts.models import Membership
from apps.audit import services as audit
from apps.secrets import services as secrets
from apps.tenants import index as operator_index
from apps.tenants.validators import allowed_local_sockets
from windflow.engine.errors import EngineError
from windflow.engine.labels import STACK_LABEL
from windflow.errors import Conflict, ServiceError

from .choices import RunStatus, TargetKind
from .connect import (
    ServerUnavailable,
    SSHTransport,
    assigned_engines,
    check_target,
    connect,
    transport_class,
    transport_for,
)

# What pages ask about a server's engine, answered by its transport: re-exported here.
from .connect import is_platform_engine as is_platform_engine
from .connect import is_shared_engine as is_shared_engine
from .connect import local_engine_of as local_engine_of
from .connect import local_targets_mode as local_targets_mode
from .models import PrepareRun, Target, TargetCheck

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]{0,61}[a-z0-9]$|^[a-z0-9]$")


# --- Access: how pages, the API and consumers reach a server --------------------------------


def visible_targets(actor: Membership | None, queryset=None):
    """The organisation's servers that `actor` may see."""
    if queryset is None:
        queryset = Target.objects.all()
    return permissions.visible(actor, queryset, "target.view")


def get_target_for(
    actor: Membership | None, slug, action="target.view", *, queryset=None
) -> Target:
    """The server `slug`, for `action` on it: NotFound when `actor` cannot see it, Forbidden
    when their role does not allow `action`."""
    return permissions.get_visible(actor, visible_targets(actor, queryset), action, slug=slug)


# --- Servers -----------------------------------------------------------------------------------


def _credential_name(slug: str, suffix: str) -> str:
    return f"TARGET_{slug.upper().replace('-', '_').replace('.', '_')}_{suffix}"


def _validate_name(name: str) -> None:
    if not NAME_PATTERN.match(name or ""):
        raise ServiceError(
            _("Use lower-case letters, digits, dots and hyphens (e.g. web-1)."), field="name"
        )


def validate_target_name(name: str) -> None:
    """ServiceError (on "name") unless `name` is a valid server name."""
    _validate_name(name)


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
    _validate_name(name)
    transport = transport_class(kind)
    local = transport.clean_fields(
        host=host, port=port, user=user, engine=engine, socket_path=socket_path
    )
    slug = slugify(name)
    if Target.objects.filter(slug=slug).exists():
        raise Conflict(
            _("A target named %(name)s already exists.") % {"name": name},
            field="name",
            code="duplicate",
        )
    setup = transport.setup(
        {
            "host": host,
            "port": port,
            "private_key": private_key,
            "passphrase": passphrase,
            "generate_key": generate_key,
            "ca_pem": ca_pem,
            "cert_pem": cert_pem,
            "key_pem": key_pem,
        }
    )
    try:
        with transaction.atomic():
            target = Target.objects.create(
                name=name,
                slug=slug,
                kind=kind,
                host=host.strip(),
                port=int(port),
                user=user.strip(),
                labels=labels or {},
                **local,
                **setup.columns,
            )
            target.environments.set(environments)
            if setup.credential is not None:
                target.credential = secrets.create_server_credential(
                    actor,
                    name=_credential_name(slug, transport.credential_suffix),
                    value=json.dumps(setup.credential),
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
            operator_index.server_added()
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
    host_key = SSHTransport.scan_host_key(target.host, target.port)
    before = target.pending_host_key_fingerprint
    target.pending_host_key_fingerprint = host_key.fingerprint
    target.host_key_type = host_key.key_type
    with transaction.atomic():
        target.save(update_fields=["pending_host_key_fingerprint", "host_key_type"])
        audit.record(
            "target.rescan_host_key",
            obj=target,
            changes={
                "pending_host_key": [before, host_key.fingerprint],
                "pinned_host_key": target.host_key_fingerprint,
                "key_type": host_key.key_type,
            },
            actor=actor,
        )
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
            _validate_name(name)
            target.name = name
        target.save()
        if environments is not None:
            target.environments.set(environments)
        changes = audit.diff(before, {"labels": target.labels, "name": target.name})
        audit.record("target.update", obj=target, changes=changes, actor=actor)
    return target


def check_target_address(target: Target, *, host: str, port, user: str):
    """Whether `target` (SSH or TCP+TLS) can be reached at this new address: the fields
    checked as a new server's, and for SSH the host key it presents there, read now (it
    must answer). Returns that host key (None for TCP+TLS); ServiceError naming the field."""
    if target.kind == TargetKind.LOCAL:
        raise ServiceError(
            _("A local server's Docker engine is the platform operator's to change."),
            field="host",
        )
    transport_class(target.kind).clean_fields(
        host=host, port=port, user=user, engine=target.engine, socket_path=target.socket_path
    )
    if target.kind != TargetKind.SSH:
        return None
    return SSHTransport.scan_host_key(host, int(port), field="host")


def change_target_address(
    actor: Membership, target: Target, *, host: str, port, user: str, host_key=None
) -> Target:
    """Move a server to another address (host, port, SSH user), checked as a new server's.
    For SSH the host key presented there (`host_key` when the caller has just read it, as
    `check_target_address` gives it) is pinned again only after an admin's confirmation,
    unless it is the pinned one. Audited."""
    permissions.require(actor, "target.change")
    host, user, port = (host or "").strip(), (user or "").strip(), int(port)
    if (host, port, user) == (target.host, target.port, target.user):
        return target
    if host_key is None:
        host_key = check_target_address(target, host=host, port=port, user=user)
    before = {"address": target.address, "host_key": target.host_key_fingerprint}
    target.host, target.port, target.user = host, port, user
    if host_key is not None and host_key.fingerprint != target.host_key_fingerprint:
        target.host_key_fingerprint = ""
        target.pending_host_key_fingerprint = host_key.fingerprint
        target.host_key_type = host_key.key_type
    with transaction.atomic():
        target.save()
        after = {"address": target.address, "host_key": target.host_key_fingerprint}
        changes = audit.diff(before, after)
        if target.pending_host_key_fingerprint:
            changes["pending_host_key"] = target.pending_host_key_fingerprint
        audit.record("target.change_address", obj=target, changes=changes, actor=actor)
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
        operator_index.server_removed(target.pk)
        target.delete()
        if credential is not None:
            secrets.delete_server_credential(actor, credential)


def stacks_on(target: Target):
    """The stacks deployed to (or meant for) this server, for its page."""
    return target.stacks.select_related("environment", "current_revision").order_by("name")


# --- Local engines: the platform's own Docker sockets (see apps.targets.connect) ----------------


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


def list_containers(target: Target) -> list[dict]:
    """What runs on the target now (for its page): name, image, state, status, ports, and the
    stack it belongs to. A local engine is the platform's (and may be shared with other
    organisations): there, only the containers of this organisation's stacks are listed. An
    SSH or TCP+TLS server is the organisation's own: everything on it is listed."""
    from apps.stacks.models import Stack

    stacks = {str(uid): name for uid, name in Stack.objects.values_list("uid", "name")}
    own_only = transport_for(target).platform_machine
    with connect(target, timeout=5) as driver:
        try:
            containers = driver.containers(label=STACK_LABEL if own_only else None)
        except EngineError as exc:
            raise ServerUnavailable(exc) from exc
    out = []
    for container in containers:
        stack = stacks.get(container.labels.get(STACK_LABEL) or "")
        if own_only and stack is None:
            continue  # another organisation's, or the platform's own
        out.append({**_container_dict(container), "stack": stack or ""})
    return out


def _container_dict(container) -> dict:
    ports = sorted(
        {
            f"{port['host_ip'] or '*'}:{'' if port['published'] is None else port['published']}"
            f"->{port['target']}/{port['protocol']}"
            for port in container.ports
        }
    )
    return {
        "name": container.name,
        "image": container.image,
        "state": container.state,
        "status": container.health or "",
        "project": container.project,
        "ports": ports,
    }


def request_check(actor: Membership, target: Target) -> TargetCheck:
    permissions.require(actor, "target.check")
    return check_target(target, triggered_by=actor.user)


# --- Preparing a server -----------------------------------------------------------------------


def request_prepare(actor: Membership, target: Target) -> PrepareRun:
    permissions.require(actor, "target.prepare")
    if not transport_for(target).can_prepare:
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
