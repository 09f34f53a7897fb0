from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_tenants.utils import tenant_context

from apps.secrets.backends import SecretBackendError, rewrap_data_key
from apps.secrets.crypto import CryptoError
from apps.tenants.models import Organization


class Command(BaseCommand):
    help = (
        "Re-wrap every organisation's data key with the current master key. Rotate by setting "
        "WINDFLOW_MASTER_KEY to the new key and WINDFLOW_MASTER_KEY_PREVIOUS to the old one, "
        "run this command, then remove WINDFLOW_MASTER_KEY_PREVIOUS. Values are not re-encrypted "
        "(they are under the data keys), so nothing is lost if the command is interrupted: run "
        "it again."
    )

    def handle(self, *args, **options):
        changed = unchanged = 0
        for organization in Organization.objects.exclude(schema_name="public"):
            with tenant_context(organization), transaction.atomic():
                try:
                    if rewrap_data_key():
                        changed += 1
                    else:
                        unchanged += 1
                except (SecretBackendError, CryptoError) as exc:
                    raise CommandError(f"{organization.slug}: {exc}") from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"{changed} data keys re-wrapped, {unchanged} already under the current master key."
            )
        )
