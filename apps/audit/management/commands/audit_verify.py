import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import schema_context

from apps.audit.services import verify
from apps.tenants.models import Organization


class Command(BaseCommand):
    help = "Walk the audit hash chains and name the first event that does not verify."

    def add_arguments(self, parser):
        parser.add_argument(
            "--org", help="only this organisation (slug); 'public' for the platform chain"
        )

    def handle(self, *args, **options):
        slug = options.get("org")
        if slug == "public":
            schemas = [("public", settings.PUBLIC_SCHEMA_NAME)]
        elif slug:
            organization = Organization.objects.filter(slug=slug).first()
            if organization is None:
                raise CommandError(f"No organisation with the slug {slug!r}.")
            schemas = [(slug, organization.schema_name)]
        else:
            schemas = [("public", settings.PUBLIC_SCHEMA_NAME)] + [
                (o.slug, o.schema_name)
                for o in Organization.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME)
            ]
        failures = 0
        for label, schema in schemas:
            started = time.perf_counter()
            with schema_context(schema):
                checked, broken = verify()
            seconds = time.perf_counter() - started
            if broken:
                failures += 1
                event, reason = broken
                self.stderr.write(
                    self.style.ERROR(
                        f"{label}: BROKEN at event {event['id']} ({event['action']}, "
                        f"{event['timestamp']}): {reason}."
                    )
                )
            else:
                self.stdout.write(f"{label}: {checked} events verified in {seconds:.2f}s")
        if failures:
            raise CommandError(f"{failures} audit chain(s) failed verification.")
        self.stdout.write(self.style.SUCCESS("All audit chains verify."))
