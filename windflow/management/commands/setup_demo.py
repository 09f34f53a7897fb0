import secrets

from django.core.management.base import BaseCommand
from django.db import transaction

from apps.accounts.models import User
from apps.tenants import services
from apps.tenants.models import Organization

DEMO_EMAIL = "admin@demo.localhost"


class Command(BaseCommand):
    help = "Create the demo organisation `demo` and its admin account (once)."

    def handle(self, *args, **options):
        if Organization.objects.filter(slug="demo").exists():
            self.stdout.write(f"Demo organisation exists; sign in as {DEMO_EMAIL}.")
            return
        password = secrets.token_urlsafe(12)
        with transaction.atomic():
            user = User.objects.filter(email=DEMO_EMAIL).first()
            if user is None:
                user = User.objects.create_superuser(DEMO_EMAIL, password, full_name="Demo Admin")
            else:
                user.set_password(password)
                user.save(update_fields=["password"])
            organization = services.create_organization(name="Demo", slug="demo", owner=user)
        self.stdout.write(
            self.style.SUCCESS(
                "\n  Demo organisation: "
                + organization.url("/")
                + f"\n  Admin account:     {DEMO_EMAIL}\n  Password:          {password}"
                + "\n  (shown once; reset it with `manage.py changepassword "
                + DEMO_EMAIL
                + "`)\n"
            )
        )
