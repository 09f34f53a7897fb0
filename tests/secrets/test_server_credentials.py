"""Server credentials (SSH keys, TLS client material of targets) live apart from stack secrets
(issue 9): no stack can reference one, no role lists or reads one, they have their own
backend location, and the credentials of existing targets are moved there."""

import importlib
import json

import pytest
from django.apps import apps as django_apps
from django.urls import reverse

from apps.accounts.models import Membership
from apps.deployments import runner
from apps.deployments import services as deployments
from apps.deployments.choices import DeploymentStatus
from apps.secrets import services as secrets
from apps.secrets.models import SecretRef
from apps.stacks import services as stacks
from apps.targets import services as targets
from apps.targets.connect import transport_for
from tests.base import PERSONAS, api_client, client_for, tls_client_material
from tests.deploying import add_revision
from windflow.errors import ServiceError

NAME = "TARGET_TLS_1_TLS"
migration = importlib.import_module("apps.secrets.migrations.0002_server_credentials")


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory):
    return tls_client_material(tmp_path_factory.mktemp("tls-material"))


def tls_target(membership, tls_material, name="tls-1"):
    return targets.create_target(
        membership, name=name, kind="tcp_tls", host="127.0.0.1", port=2376, **tls_material
    )


def test_it_keeps_a_servers_credential_out_of_the_stack_secrets(membership, tls_material):
    secrets.create_secret(membership, name="DB_PASSWORD", value="db-pass-1234")
    target = tls_target(membership, tls_material)
    credential = SecretRef.all_purposes.get(pk=target.credential_id)
    assert credential.name == NAME and credential.purpose == "server"
    assert credential.location == f"server/{NAME}"
    assert list(SecretRef.objects.values_list("name", flat=True)) == ["DB_PASSWORD"]
    assert list(SecretRef.server_credentials.values_list("name", flat=True)) == [NAME]
    assert stacks.available_secret_names() == ["DB_PASSWORD"]
    # The target still reads it to connect.
    with transport_for(target).endpoint() as endpoint:
        assert endpoint.key_pem == tls_material["key_pem"]
    targets.delete_target(membership, target)
    assert not SecretRef.all_purposes.filter(name=NAME).exists()


def test_it_refuses_a_stack_that_references_a_server_credential(
    membership, make_stack, tls_material
):
    tls_target(membership, tls_material)
    stack = make_stack()
    compose = (
        "services:\n  app:\n    image: busybox\n    environment:\n      K: ${TARGET_TLS_1_TLS}\n"
    )
    with pytest.raises(ServiceError) as refused:
        stacks.revise_stack(membership, stack, compose=compose, secrets=[NAME])
    assert refused.value.field == "secrets"
    assert NAME in refused.value.message
    # A revision written before this check (or behind its back) is refused by the runner.
    revision = add_revision(stack, compose, secrets=[NAME])
    deployment = deployments.request_deployment(membership, stack, revision)
    runner.run(deployment.pk)
    deployment.refresh_from_db()
    assert deployment.status == DeploymentStatus.FAILED
    assert deployment.diagnosis["code"] == "server_credential"
    assert "server credentials cannot be used by a stack" in deployment.reason
    with pytest.raises(ServiceError, match="server credentials"):
        secrets.resolve([NAME])
    assert tls_material["key_pem"].splitlines()[1] not in json.dumps(deployment.diagnosis)


@pytest.mark.parametrize("persona", [key for key, p in PERSONAS.items() if p[1] == "acme"])
def test_it_lets_no_role_list_or_read_a_server_credential(persona, tls_material, acme, in_acme):
    from apps.accounts.models import User

    owner = Membership.objects.get(user__email=PERSONAS["owner"][0], organization=acme)
    target = tls_target(owner, tls_material)
    user = User.objects.get(email=PERSONAS[persona][0])
    api = api_client(user, acme)
    listed = api.get("/api/v1/secrets/")
    assert listed.status_code == 200
    assert NAME not in listed.content.decode()
    assert api.get(f"/api/v1/secrets/{target.credential_id}/").status_code == 404
    assert api.get(f"/api/v1/secrets/{target.credential_id}/versions/").status_code == 404
    browser = client_for(user, acme)
    page = browser.get(reverse("secrets:secret_list"))
    assert page.status_code == 200 and NAME not in page.content.decode()
    detail = reverse("secrets:secret_detail", args=[target.credential_id])
    assert browser.get(detail).status_code == 404
    # Roles that may change secrets find no such secret; the others are refused first.
    expected = 404 if persona in ("owner", "admin") else 403
    assert browser.post(detail, {"value": "replaced-value"}).status_code == expected
    assert api.delete(f"/api/v1/secrets/{target.credential_id}/").status_code == expected
    assert SecretRef.all_purposes.filter(pk=target.credential_id).exists()


def test_it_keeps_server_credentials_in_their_own_vault_location(vault, membership, tls_material):
    target = tls_target(membership, tls_material)
    assert target.credential.backend == "vault"
    client = vault.client()
    stored = client.secrets.kv.v2.read_secret_version(
        path=f"windflow/acme/server/{NAME}", mount_point="secret", raise_on_deleted_version=True
    )
    assert json.loads(stored["data"]["data"]["value"])["key_pem"] == tls_material["key_pem"]
    import hvac.exceptions

    with pytest.raises(hvac.exceptions.InvalidPath):
        client.secrets.kv.v2.read_secret_version(
            path=f"windflow/acme/org/{NAME}", mount_point="secret", raise_on_deleted_version=True
        )
    with transport_for(target).endpoint() as endpoint:
        assert endpoint.cert_pem == tls_material["cert_pem"]


@pytest.mark.parametrize("backend", ["local", "vault"])
def test_it_moves_the_credentials_of_existing_targets_into_the_server_namespace(
    backend, request, membership, tls_material
):
    if backend == "vault":
        request.getfixturevalue("vault")
    target = tls_target(membership, tls_material)
    credential = SecretRef.all_purposes.get(pk=target.credential_id)
    value = secrets.read_value(credential)
    # As it was before: an ordinary organisation secret, at the stack secrets' location.
    migration.back_to_stack_secrets(django_apps, None)
    credential.refresh_from_db()
    assert credential.purpose == "stack" and credential.location == f"org/{NAME}"
    assert secrets.resolve([NAME]) == {NAME: value}
    stale = secrets.create_secret(membership, name="APP_KEY", value="app-key-1234")

    migration.to_server_namespace(django_apps, None)
    credential.refresh_from_db()
    assert credential.purpose == "server"
    assert secrets.read_value(credential) == value
    assert list(SecretRef.objects.all()) == [stale]
    target.refresh_from_db()
    with transport_for(target).endpoint() as endpoint:
        assert endpoint.key_pem == tls_material["key_pem"]
    if backend == "vault":
        from apps.secrets.backends import SecretBackendError, VaultBackend

        old = SecretRef(name=NAME, backend="vault")
        with pytest.raises(SecretBackendError):
            VaultBackend().read(old, 1)
    migration.to_server_namespace(django_apps, None)  # again: nothing left to move
    credential.refresh_from_db()
    assert secrets.read_value(credential) == value
