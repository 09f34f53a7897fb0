"""Connecting to a target: the SSH or TCP+TLS endpoint with its key, a Docker Engine API
client, and the checks of a local socket against the operator's settings. Imports neither the
services nor the tasks of the app, so both (and the running jobs) can use it."""

from __future__ import annotations

import json
import os.path
from contextlib import contextmanager

from django.conf import settings
from django.db import connection
from django.utils.translation import gettext as _

from apps.secrets import services as secrets
from apps.secrets.models import SecretRef
from apps.tenants.models import LocalEngine
from apps.tenants.validators import local_socket_is_allowed
from windflow.engine import ssh
from windflow.engine.errors import EngineError
from windflow.errors import ServiceError
from windflow.redaction import secrets_in_scope

from .choices import TargetKind
from .models import Target

# WINDFLOW_LOCAL_TARGETS: see "Local engines" in apps.targets.services.
LOCAL_MODES = ("off", "staff", "all")


def local_targets_mode() -> str:
    mode = getattr(settings, "WINDFLOW_LOCAL_TARGETS", "off")
    return mode if mode in LOCAL_MODES else "off"


def local_socket_for(target: Target) -> str:
    """The unix socket to dial for local `target`, checked now against the operator's mode, the
    engine's assignment and the allow-list; ServiceError saying why otherwise."""
    mode = local_targets_mode()
    if mode == "off":
        raise ServiceError(
            _(
                "%(name)s uses a Docker socket of the platform's machine, and local Docker "
                "engines are turned off on this platform (WINDFLOW_LOCAL_TARGETS=off): move its "
                "stacks to a server over SSH or TCP+TLS."
            )
            % {"name": target.name},
            code="local_targets_off",
        )
    if target.engine_id is not None:
        engine = LocalEngine.objects.filter(pk=target.engine_id).first()
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
        path = engine.socket_path
    elif mode == "staff":
        raise ServiceError(
            _(
                "%(name)s names the Docker socket %(path)s itself; on this platform local engines "
                "are assigned by platform staff (WINDFLOW_LOCAL_TARGETS=staff): ask them for one."
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


def engine_message(exc: EngineError) -> str:
    hint = getattr(exc, "hint", "")
    return f"{exc} {hint}".strip()


@contextmanager
def endpoint_for(target: Target):
    """The target's SSH endpoint, with its key resolved (and redacted from every log) only
    for the duration of the block."""
    if (
        target.credential_id is None
        or not SecretRef.server_credentials.filter(pk=target.credential_id).exists()
    ):
        raise ServiceError(
            _("The SSH key of this target was deleted: add a new key."), code="credential_missing"
        )
    credential = json.loads(secrets.read_value(target.credential))
    if target.kind == TargetKind.TCP_TLS:
        from windflow.engine.tlsdocker import TLSEndpoint

        with secrets_in_scope([credential["key_pem"]]):
            yield TLSEndpoint(
                host=target.host,
                port=target.port,
                ca_pem=credential["ca_pem"],
                cert_pem=credential["cert_pem"],
                key_pem=credential["key_pem"],
            )
        return
    with secrets_in_scope([credential["private_key"], credential.get("passphrase") or ""]):
        yield ssh.SSHEndpoint(
            host=target.host,
            port=target.port,
            user=target.user,
            private_key=credential["private_key"],
            passphrase=credential.get("passphrase") or None,
            pinned_fingerprint=target.host_key_fingerprint or None,
        )


@contextmanager
def docker_client_for(target: Target, *, timeout: float = 10):
    """A Docker Engine API client for `target`, closed (with its SSH session) after the
    block. Engine errors while connecting become a ServiceError with a hint."""
    from windflow.engine import dockerhost

    try:
        if target.kind == TargetKind.LOCAL:
            client = dockerhost.docker_client_local(local_socket_for(target), timeout=timeout)
        elif target.kind == TargetKind.TCP_TLS:
            from windflow.engine.tlsdocker import docker_client_tls

            with endpoint_for(target) as endpoint:
                client = docker_client_tls(endpoint, timeout=timeout)
        else:
            with endpoint_for(target) as endpoint:
                client = dockerhost.docker_client_ssh(endpoint, timeout=timeout)
    except EngineError as exc:
        raise ServiceError(engine_message(exc), code="docker_unavailable") from exc
    try:
        yield client
    finally:
        client.close()
