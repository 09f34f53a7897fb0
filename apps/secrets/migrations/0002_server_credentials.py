"""Server credentials apart (issue 9): a `purpose` on SecretRef, and the SSH keys and TLS
client material of existing targets (`TARGET_<SLUG>_SSH_KEY` / `_TLS`) moved out of the
stack secrets into the server namespace. Local values need no re-encryption (their
encryption context is the row and version); Vault values move from `<org>/org/<NAME>` to
`<org>/server/<NAME>`, so Vault must be reachable while this runs (the migration stops,
changing nothing, when it is not)."""

import django.db.models.manager
from django.conf import settings
from django.db import connection, migrations, models


def _move_in_vault(ref, source: str, destination: str) -> None:
    from apps.secrets.backends import VaultBackend

    vault = VaultBackend()
    prefix = f"{settings.VAULT_PATH_PREFIX}/{connection.schema_name}"
    mount = settings.VAULT_KV_MOUNT
    value = vault._call(
        lambda c: c.secrets.kv.v2.read_secret_version(
            path=f"{prefix}/{source}",
            version=ref.version,
            mount_point=mount,
            raise_on_deleted_version=True,
        )
    )["data"]["data"]["value"]
    written = vault._call(
        lambda c: c.secrets.kv.v2.create_or_update_secret(
            path=f"{prefix}/{destination}", secret={"value": value}, mount_point=mount
        )
    )
    version = int(written["data"]["version"])
    ref.versions.all().delete()
    ref.versions.create(version=version, created_by_id=ref.created_by_id)
    ref.version = version
    ref.save(update_fields=["version"])
    vault._call(
        lambda c: c.secrets.kv.v2.delete_metadata_and_all_versions(
            path=f"{prefix}/{source}", mount_point=mount
        )
    )


def _move(apps, purpose: str) -> None:
    Target = apps.get_model("targets", "Target")
    SecretRef = apps.get_model("secrets", "SecretRef")
    ids = Target.objects.exclude(credential=None).values_list("credential_id", flat=True)
    other = "server" if purpose == "stack" else "stack"
    for ref in SecretRef._base_manager.filter(pk__in=list(ids), purpose=other, environment=None):
        if ref.backend == "vault":
            source = f"org/{ref.name}" if other == "stack" else f"server/{ref.name}"
            destination = f"server/{ref.name}" if other == "stack" else f"org/{ref.name}"
            _move_in_vault(ref, source, destination)
        ref.purpose = purpose
        ref.save(update_fields=["purpose"])


def to_server_namespace(apps, schema_editor):
    _move(apps, "server")


def back_to_stack_secrets(apps, schema_editor):
    _move(apps, "stack")


class Migration(migrations.Migration):
    dependencies = [
        ("environments", "0001_initial"),
        ("secrets", "0001_initial"),
        ("targets", "0002_tcp_tls"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="secretref",
            options={
                "base_manager_name": "all_purposes",
                "ordering": ["name", "environment__name"],
            },
        ),
        migrations.AlterModelManagers(
            name="secretref",
            managers=[
                ("objects", django.db.models.manager.Manager()),
                ("all_purposes", django.db.models.manager.Manager()),
            ],
        ),
        migrations.RemoveConstraint(
            model_name="secretref",
            name="unique_organization_secret",
        ),
        migrations.AddField(
            model_name="secretref",
            name="purpose",
            field=models.CharField(
                choices=[("stack", "Stack secret"), ("server", "Server credential")],
                db_index=True,
                default="stack",
                editable=False,
                max_length=8,
            ),
        ),
        migrations.AddConstraint(
            model_name="secretref",
            constraint=models.UniqueConstraint(
                condition=models.Q(("environment__isnull", True)),
                fields=("name", "purpose"),
                name="unique_organization_secret",
            ),
        ),
        migrations.RunPython(to_server_namespace, back_to_stack_secrets),
    ]
