"""The Vault backend against a real OpenBao server (Vault's API), started for this run."""

import pytest

from apps.accounts.models import Membership
from apps.secrets import services
from apps.secrets.backends import SecretBackendError, VaultBackend
from apps.secrets.models import SecretRef


@pytest.fixture
def manager(owner, acme, in_acme):
    return Membership.objects.get(user=owner, organization=acme)


def test_it_writes_reads_and_versions_in_vault(vault, manager):
    secret = services.create_secret(manager, name="REGISTRY_TOKEN", value="tok-version-1")
    assert secret.backend == "vault"
    services.rotate_secret(manager, secret, "tok-version-2")
    assert services.resolve(["REGISTRY_TOKEN"]) == {"REGISTRY_TOKEN": "tok-version-2"}
    stored = vault.client().secrets.kv.v2.read_secret_version(
        path="windflow/acme/org/REGISTRY_TOKEN", mount_point="secret", raise_on_deleted_version=True
    )
    assert stored["data"]["data"]["value"] == "tok-version-2"
    assert stored["data"]["metadata"]["version"] == 2
    assert [v.version for v in services.versions(SecretRef.objects.get())] == [2, 1]


def test_it_keeps_organisations_apart_in_vault(vault, manager, globex, outsider):
    from django.db import connection

    services.create_secret(manager, name="SHARED_NAME", value="acme-value")
    connection.set_tenant(globex)
    services.create_secret(
        Membership.objects.get(user=outsider, organization=globex),
        name="SHARED_NAME",
        value="globex-value",
    )
    assert services.resolve(["SHARED_NAME"]) == {"SHARED_NAME": "globex-value"}
    connection.set_tenant(manager.organization)
    assert services.resolve(["SHARED_NAME"]) == {"SHARED_NAME": "acme-value"}

    kv = vault.client().secrets.kv.v2
    listed = kv.list_secrets(path="windflow", mount_point="secret")["data"]["keys"]
    assert {"acme/", "globex/"} <= set(listed)
    values = {}
    for schema in ("acme", "globex"):
        keys = kv.list_secrets(path=f"windflow/{schema}/org", mount_point="secret")["data"]["keys"]
        assert "SHARED_NAME" in keys
        stored = kv.read_secret_version(
            path=f"windflow/{schema}/org/SHARED_NAME",
            mount_point="secret",
            raise_on_deleted_version=True,
        )
        values[schema] = stored["data"]["data"]["value"]
    # Same name, two paths, each organisation's own value: neither sees the other's.
    assert values == {"acme": "acme-value", "globex": "globex-value"}


def test_it_leaves_nothing_half_written_when_vault_is_sealed(vault, manager):
    vault.seal()
    with pytest.raises(SecretBackendError, match="sealed"):
        services.create_secret(manager, name="DB_PASSWORD", value="never-stored")
    assert not SecretRef.objects.exists()


def test_it_explains_an_unreachable_vault(vault, manager, settings):
    settings.VAULT_ADDR = "http://127.0.0.1:9"  # nothing listens there
    VaultBackend.forget_client()
    with pytest.raises(SecretBackendError, match="unreachable") as error:
        services.create_secret(manager, name="DB_PASSWORD", value="never-stored")
    assert "never-stored" not in str(error.value)
    assert not SecretRef.objects.exists()


def test_it_explains_a_wrong_token(vault, manager, settings):
    settings.VAULT_TOKEN = "not-the-token"
    VaultBackend.forget_client()
    with pytest.raises(SecretBackendError, match="refused access"):
        services.create_secret(manager, name="DB_PASSWORD", value="never-stored")
    assert not SecretRef.objects.exists()


def test_it_logs_in_with_approle_and_is_held_to_its_policy(vault, manager, settings):
    from devtools.openbao import enable_approle

    role_id, secret_id = enable_approle(
        vault,
        "windflow-acme",
        'path "secret/data/windflow/acme/*" { capabilities = '
        '["create", "update", "read"] }\npath "secret/metadata/windflow/acme/*" '
        '{ capabilities = ["read", "delete"] }',
    )
    settings.VAULT_TOKEN = None
    settings.VAULT_ROLE_ID, settings.VAULT_SECRET_ID = role_id, secret_id
    VaultBackend.forget_client()
    services.create_secret(manager, name="APPROLE_OK", value="approle-value")
    assert services.resolve(["APPROLE_OK"]) == {"APPROLE_OK": "approle-value"}
    settings.VAULT_PATH_PREFIX = "elsewhere"  # outside the policy
    with pytest.raises(SecretBackendError, match="refused access"):
        services.create_secret(manager, name="DENIED", value="denied-value")
    assert not SecretRef.objects.filter(name="DENIED").exists()
