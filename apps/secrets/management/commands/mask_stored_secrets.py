from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import schema_context, tenant_context

from apps.audit import services as audit
from apps.secrets.backends import SecretBackendError
from apps.secrets.crypto import CryptoError
from apps.secrets.services import mask_stored_text
from apps.tenants.models import Organization
from windflow.errors import ServiceError


class Command(BaseCommand):
    help = (
        "Mask the secret values that were stored in clear before every text went through "
        "redaction: deployment log lines, reasons, diagnoses, service messages, notifications, "
        "server checks and preparations, and audit events. The audit chain is hashed again from "
        "the first changed event and an audit.reanchor event records the old and the new head. "
        "Safe to run again: what is already masked is left as it is."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", help="only this organisation (slug); default: all of them")
        parser.add_argument(
            "--dry-run", action="store_true", help="count what would change, change nothing"
        )

    def handle(self, *args, **options):
        dry_run = options["dry_run"]
        organizations = Organization.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME)
        if options["org"]:
            organizations = organizations.filter(slug=options["org"])
            if not organizations.exists():
                raise CommandError(f"No organisation with the slug {options['org']!r}.")
        verb = "would mask" if dry_run else "masked"
        failures = 0
        for organization in organizations.order_by("slug"):
            try:
                with tenant_context(organization):
                    counts = mask_stored_text(dry_run=dry_run)
            except (SecretBackendError, CryptoError, ServiceError) as exc:
                failures += 1
                message = getattr(exc, "message", str(exc))
                self.stderr.write(self.style.ERROR(f"{organization.slug}: {message}"))
                continue
            chain = counts.pop("audit")
            rows = sum(counts.values())
            details = ", ".join(f"{key} {n}" for key, n in sorted(counts.items()))
            self.stdout.write(
                f"{organization.slug}: {verb} {rows} value(s) in stored text"
                + (f" ({details})" if details else "")
                + f"; audit: {chain['changed']} of {chain['checked']} event(s) {verb}"
            )
            if chain["changed"]:
                self.stdout.write(
                    f"  chain re-hashed from event {chain['first_changed_id']} "
                    f"({chain['rehashed']} event(s)): old head {chain['old_head']}, "
                    f"new head {chain['new_head']}"
                    + ("" if dry_run else "; recorded as an audit.reanchor event")
                )
            if not dry_run:
                with schema_context(organization.schema_name):
                    _checked, broken = audit.verify()
                if broken:
                    failures += 1
                    self.stderr.write(
                        self.style.ERROR(
                            f"{organization.slug}: the chain does not verify at event "
                            f"{broken[0]['id']} after masking."
                        )
                    )
        if failures:
            raise CommandError(f"{failures} organisation(s) could not be masked.")
        self.stdout.write(
            self.style.SUCCESS("Done." if not dry_run else "Dry run: nothing changed.")
        )
