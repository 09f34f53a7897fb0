import base64
import os

import pytest
from django.core.management import call_command
from django.db import connection

from apps.accounts.models import Membership
from apps.audit.models import AuditEvent
from apps.environments.models import Environment
from apps.secrets import services
from apps.secrets.models import DataKey, SecretRef, SecretVersion
from windflow.errors import Conflict, Forbidden, ServiceError


@pytest.fixture
def manager(owner, acme, in_acme):
    return Membership.objects.get(user=owner, organization=acme)


@pytest.fixture
def staging(in_acme):
    return Environment.objects.create(name="staging", slug="staging")


def test_it_stores_encrypted_and_resolves_the_value(manager):
    services.create_secret(manager, name="DB_PASSWORD", value="correct-horse")
    stored = bytes(SecretVersion.objects.get().ciphertext)
    assert b"correct-horse" not in stored
    assert services.resolve(["DB_PASSWORD"]) == {"DB_PASSWORD": "correct-horse"}


def test_it_lets_an_environment_secret_override_the_organisation_one(manager, staging):
    services.create_secret(manager, name="API_KEY", value="org-wide-key")
    services.create_secret(manager, name="API_KEY", value="staging-key", environment=staging)
    assert services.resolve(["API_KEY"], environment=staging) == {"API_KEY": "staging-key"}
    assert services.resolve(["API_KEY"]) == {"API_KEY": "org-wide-key"}


def test_it_rotates_and_keeps_the_history_without_values(manager):
    secret = services.create_secret(manager, name="TOKEN", value="first-value")
    services.rotate_secret(manager, secret, "second-value")
    secret.refresh_from_db()
    assert secret.version == 2 and secret.rotated_at
    assert [v.version for v in services.versions(secret)] == [2, 1]
    assert services.resolve(["TOKEN"]) == {"TOKEN": "second-value"}
    events = AuditEvent.objects.filter(action__startswith="secret.").order_by("id")
    assert [e.action for e in events] == ["secret.create", "secret.rotate"]
    assert "second-value" not in str(list(events.values()))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("db_password", "upper-case"),
        ("1PASSWORD", "upper-case"),
        ("A B", "upper-case"),
        ("", "upper-case"),
    ],
)
def test_it_refuses_invalid_names(manager, name, message):
    with pytest.raises(ServiceError, match=message):
        services.create_secret(manager, name=name, value="some-value")
    assert not SecretRef.objects.exists()


def test_it_refuses_duplicates_and_oversized_or_tiny_values(manager):
    services.create_secret(manager, name="DUP", value="value-one")
    with pytest.raises(Conflict, match="already exists"):
        services.create_secret(manager, name="DUP", value="value-two")
    with pytest.raises(ServiceError, match="64 KiB"):
        services.create_secret(manager, name="BIG", value="x" * (64 * 1024 + 1))
    with pytest.raises(ServiceError, match="at least 4"):
        services.create_secret(manager, name="TINY", value="abc")
    assert list(SecretRef.objects.values_list("name", flat=True)) == ["DUP"]


def test_it_accepts_a_value_of_exactly_64_kib(manager):
    services.create_secret(manager, name="BLOB", value="y" * 64 * 1024)
    assert len(services.resolve(["BLOB"])["BLOB"]) == 64 * 1024


def test_it_lists_every_missing_secret(manager):
    services.create_secret(manager, name="PRESENT", value="here-it-is")
    with pytest.raises(ServiceError, match="Missing secrets: ABSENT, GONE"):
        services.resolve(["PRESENT", "GONE", "ABSENT"])


def test_it_lets_only_owners_and_admins_manage(operator, viewer, acme, in_acme):
    for user in (operator, viewer):
        membership = Membership.objects.get(user=user, organization=acme)
        with pytest.raises(Forbidden):
            services.create_secret(membership, name="X_KEY", value="some-value")


def test_it_lets_operators_but_not_developers_use_secrets(manager, operator, developer, acme):
    services.create_secret(manager, name="DEPLOY_KEY", value="deploy-value")
    operator_membership = Membership.objects.get(user=operator, organization=acme)
    assert services.resolve(["DEPLOY_KEY"], membership=operator_membership)
    with pytest.raises(Forbidden):
        services.resolve(
            ["DEPLOY_KEY"], membership=Membership.objects.get(user=developer, organization=acme)
        )


def test_it_keeps_resolved_values_out_of_logs(manager, caplog):
    import logging

    from windflow.redaction import RedactingFilter

    services.create_secret(manager, name="DB_PASSWORD", value="hunter2-hunter2")
    caplog.handler.addFilter(RedactingFilter())
    with services.resolved(["DB_PASSWORD"]) as values:
        logging.getLogger("windflow.deploy").warning("env: %s", values)
    assert "hunter2-hunter2" not in caplog.text and "[REDACTED]" in caplog.text


def test_it_binds_a_ciphertext_to_its_secret(manager):
    """Copying one secret's ciphertext onto another does not decrypt (associated data)."""
    a = services.create_secret(manager, name="SECRET_A", value="value-of-a")
    b = services.create_secret(manager, name="SECRET_B", value="value-of-b")
    SecretVersion.objects.filter(secret=b).update(
        ciphertext=SecretVersion.objects.get(secret=a).ciphertext
    )
    with pytest.raises(ServiceError, match=r"SECRET_B could not be decrypted"):
        services.resolve(["SECRET_B"])


def test_it_rotates_the_master_key_without_losing_a_value(manager, settings, acme, capsys):
    services.create_secret(manager, name="KEEP_ME", value="precious-value")
    old_key = settings.WINDFLOW_MASTER_KEY
    new_key = base64.b64encode(os.urandom(32)).decode()
    settings.WINDFLOW_MASTER_KEY = new_key
    settings.WINDFLOW_MASTER_KEY_PREVIOUS = old_key
    connection.set_schema_to_public()
    call_command("rotate_master_key")
    assert "re-wrapped" in capsys.readouterr().out
    settings.WINDFLOW_MASTER_KEY_PREVIOUS = None  # the old key is gone for good
    connection.set_tenant(acme)
    assert services.resolve(["KEEP_ME"]) == {"KEEP_ME": "precious-value"}
    from apps.secrets.crypto import key_id, parse_master_key

    assert DataKey.objects.get().master_key_id == key_id(parse_master_key(new_key))


def test_it_says_which_master_key_is_missing(manager, settings):
    services.create_secret(manager, name="LOCKED", value="locked-value")
    settings.WINDFLOW_MASTER_KEY = base64.b64encode(os.urandom(32)).decode()
    with pytest.raises(ServiceError, match=r"master key .* is not configured"):
        services.resolve(["LOCKED"])
