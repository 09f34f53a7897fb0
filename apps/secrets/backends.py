"""Where secret values live. Two backends behind one small interface:

- `local`: envelope encryption in PostgreSQL (the default when no Vault is configured);
- `vault`: HashiCorp Vault (or OpenBao) KV v2 through hvac, token or AppRole auth.

Errors become `SecretBackendError` with a message for people, never with a value in it.
"""

from __future__ import annotations

import threading
from typing import Protocol

from django.conf import settings
from django.db import connection
from django.utils import timezone

from windflow.errors import ServiceError

from . import crypto
from .models import DataKey, SecretRef, SecretVersion


class SecretBackendError(ServiceError):
    status_code = 503
    code = "secret_backend_unavailable"


class SecretBackend(Protocol):
    name: str

    def write(self, secret: SecretRef, version: int, value: str) -> int:
        """Store `value` as the next version; returns the version number stored."""

    def read(self, secret: SecretRef, version: int) -> str: ...

    def destroy(self, secret: SecretRef) -> None: ...


# --- Local: AES-GCM envelope encryption in the organisation's schema --------------------------


def master_keys() -> list[bytes]:
    """The current master key first, then the previous one (during a rotation)."""
    keys = [crypto.parse_master_key(settings.WINDFLOW_MASTER_KEY)]
    if settings.WINDFLOW_MASTER_KEY_PREVIOUS:
        keys.append(crypto.parse_master_key(settings.WINDFLOW_MASTER_KEY_PREVIOUS))
    return keys


def _context(kind: str, *parts) -> bytes:
    return ":".join(["windflow", kind, connection.schema_name, *map(str, parts)]).encode()


def unwrap(data_key: DataKey) -> bytes:
    for key in master_keys():
        if crypto.key_id(key) == data_key.master_key_id:
            return crypto.open_sealed(key, bytes(data_key.wrapped_key), _context("datakey"))
    raise SecretBackendError(
        "The master key that protects this organisation's secrets is not configured "
        "(set WINDFLOW_MASTER_KEY, or WINDFLOW_MASTER_KEY_PREVIOUS during a rotation).",
        code="master_key_missing",
    )


def organization_data_key() -> bytes:
    data_key = DataKey.objects.first()
    if data_key is None:
        master = master_keys()[0]
        raw = crypto.new_data_key()
        DataKey.objects.create(
            wrapped_key=crypto.seal(master, raw, _context("datakey")),
            master_key_id=crypto.key_id(master),
        )
        return raw
    return unwrap(data_key)


def rewrap_data_key() -> bool:
    """Wrap this organisation's data key with the current master key. True if it changed."""
    data_key = DataKey.objects.select_for_update().first()
    if data_key is None:
        return False
    current = master_keys()[0]
    if data_key.master_key_id == crypto.key_id(current):
        return False
    raw = unwrap(data_key)
    data_key.wrapped_key = crypto.seal(current, raw, _context("datakey"))
    data_key.master_key_id = crypto.key_id(current)
    data_key.rewrapped_at = timezone.now()
    data_key.save(update_fields=["wrapped_key", "master_key_id", "rewrapped_at"])
    return True


class LocalBackend:
    name = "local"

    def write(self, secret, version, value):
        sealed = crypto.seal(
            organization_data_key(), value.encode(), _context("secret", secret.pk, version)
        )
        SecretVersion.objects.filter(secret=secret, version=version).update(ciphertext=sealed)
        return version

    def read(self, secret, version):
        sealed = (
            SecretVersion.objects.filter(secret=secret, version=version)
            .values_list("ciphertext", flat=True)
            .first()
        )
        if sealed is None:
            raise SecretBackendError(
                f"No stored value for {secret.name} version {version}.", code="secret_value_missing"
            )
        try:
            return crypto.open_sealed(
                organization_data_key(), bytes(sealed), _context("secret", secret.pk, version)
            ).decode()
        except crypto.CryptoError as exc:
            raise SecretBackendError(
                f"{secret.name} could not be decrypted: {exc}", code="secret_undecryptable"
            ) from exc

    def read_many(self, secrets) -> dict[int, str]:
        """Current values of many secrets with one query and one data-key unwrap."""
        key = organization_data_key()
        wanted = {(s.pk, s.version): s for s in secrets}
        rows = SecretVersion.objects.filter(secret__in=[s.pk for s in secrets]).values_list(
            "secret_id", "version", "ciphertext"
        )
        values = {}
        for secret_id, version, sealed in rows:
            if (secret_id, version) in wanted and sealed is not None:
                context = _context("secret", secret_id, version)
                try:
                    values[secret_id] = crypto.open_sealed(key, bytes(sealed), context).decode()
                except crypto.CryptoError as exc:
                    name = wanted[(secret_id, version)].name
                    raise SecretBackendError(
                        f"{name} could not be decrypted: {exc}", code="secret_undecryptable"
                    ) from exc
        return values

    def destroy(self, secret):
        """Versions go with the row (cascade)."""


# --- Vault KV v2 ------------------------------------------------------------------------------


class VaultBackend:
    name = "vault"
    _lock = threading.Lock()
    _client = None

    def _path(self, secret: SecretRef) -> str:
        return f"{settings.VAULT_PATH_PREFIX}/{connection.schema_name}/{secret.location}"

    def client(self):
        import hvac

        with self._lock:
            if VaultBackend._client is None:
                client = hvac.Client(
                    url=settings.VAULT_ADDR,
                    token=settings.VAULT_TOKEN,
                    timeout=settings.VAULT_TIMEOUT,
                )
                if settings.VAULT_ROLE_ID:
                    client.auth.approle.login(
                        role_id=settings.VAULT_ROLE_ID, secret_id=settings.VAULT_SECRET_ID
                    )
                VaultBackend._client = client
            return VaultBackend._client

    @classmethod
    def forget_client(cls):
        with cls._lock:
            cls._client = None

    def _call(self, operation):
        """Run one hvac call; on an expired AppRole token log in again once."""
        import hvac.exceptions as errors
        import requests

        try:
            try:
                return operation(self.client())
            except errors.Forbidden:
                if not settings.VAULT_ROLE_ID:
                    raise
                self.forget_client()
                return operation(self.client())
        except errors.VaultDown as exc:
            raise SecretBackendError(
                "Vault is sealed or down: unseal it and try again.", code="vault_sealed"
            ) from exc
        except (errors.Forbidden, errors.Unauthorized) as exc:
            raise SecretBackendError(
                "Vault refused access: check WindFlow's Vault token or AppRole policy.",
                code="vault_forbidden",
            ) from exc
        except errors.InvalidPath as exc:
            raise SecretBackendError(
                "The secret is not in Vault (deleted outside WindFlow?).", code="vault_not_found"
            ) from exc
        except errors.VaultError as exc:
            raise SecretBackendError(
                f"Vault answered with an error ({type(exc).__name__}).", code="vault_error"
            ) from exc
        except requests.RequestException as exc:
            self.forget_client()
            raise SecretBackendError(
                f"Vault is unreachable at {settings.VAULT_ADDR}.", code="vault_unreachable"
            ) from exc

    def write(self, secret, version, value):
        response = self._call(
            lambda c: c.secrets.kv.v2.create_or_update_secret(
                path=self._path(secret),
                secret={"value": value},
                mount_point=settings.VAULT_KV_MOUNT,
            )
        )
        return int(response["data"]["version"])

    def read(self, secret, version):
        response = self._call(
            lambda c: c.secrets.kv.v2.read_secret_version(
                path=self._path(secret),
                version=version,
                mount_point=settings.VAULT_KV_MOUNT,
                raise_on_deleted_version=True,
            )
        )
        return response["data"]["data"]["value"]

    def read_many(self, secrets) -> dict[int, str]:
        return {secret.pk: self.read(secret, secret.version) for secret in secrets}

    def destroy(self, secret):
        self._call(
            lambda c: c.secrets.kv.v2.delete_metadata_and_all_versions(
                path=self._path(secret), mount_point=settings.VAULT_KV_MOUNT
            )
        )


BACKENDS = {"local": LocalBackend(), "vault": VaultBackend()}


def default_backend_name() -> str:
    return settings.WINDFLOW_SECRETS_BACKEND


def backend_for(name: str) -> SecretBackend:
    return BACKENDS[name]
