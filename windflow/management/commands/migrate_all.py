from django.core.management.base import BaseCommand

from apps.tenants.services import migrate_everything


class Command(BaseCommand):
    help = "Migrate the public schema, the template schema and every organisation's schema."

    def handle(self, *args, **options):
        migrate_everything(verbosity=options["verbosity"])
        self.stdout.write(self.style.SUCCESS("All schemas are up to date."))
