from datetime import timedelta
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.audit.services import archive_before, retention_directory
from apps.tenants.models import Organization
from windflow.errors import ServiceError


class Command(BaseCommand):
    help = (
        "Move audit events older than --days to a JSON Lines file (with the chain's anchor) and "
        "remove them from the database; what remains still verifies."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, required=True, help="keep this many days")
        parser.add_argument("--org", help="only this organisation (slug), or 'public'")
        parser.add_argument("--out", help="directory for archive files", default=None)

    def handle(self, *args, **options):
        if options["days"] < 1:
            raise CommandError("--days must be at least 1.")
        cutoff = timezone.now() - timedelta(days=options["days"])
        directory = Path(options["out"]) if options["out"] else retention_directory()
        organizations = Organization.objects.all()
        if options["org"]:
            organizations = organizations.filter(slug=options["org"])
            if not organizations.exists():
                raise CommandError(f"No organisation with the slug {options['org']!r}.")
        for organization in organizations:
            with schema_context(organization.schema_name):
                try:
                    anchor = archive_before(cutoff, directory)
                except ServiceError as exc:
                    raise CommandError(f"{organization.slug}: {exc.message}") from exc
            if anchor:
                self.stdout.write(
                    f"{organization.slug}: {anchor.archived_count} events → {anchor.archive_file}"
                )
            else:
                self.stdout.write(f"{organization.slug}: nothing older than {cutoff:%Y-%m-%d}")
