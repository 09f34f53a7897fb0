import secrets

from django.core.management.base import BaseCommand
from django.db import transaction
from django_tenants.utils import tenant_context

from apps.accounts.models import Membership, User
from apps.tenants import services
from apps.tenants.models import Organization

DEMO_EMAIL = "admin@demo.localhost"
SAMPLE_STACK = """\
# A sample stack: deploy it to see progress, the health gate and the log live.
services:
  web:
    image: nginx:1.27-alpine
    ports: ["127.0.0.1:${WEB_PORT:-8081}:80"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O-", "http://127.0.0.1/"]
      interval: 2s
      retries: 10
    restart: unless-stopped
    deploy:
      resources:
        limits: {memory: 128M, cpus: "0.5"}
"""


def furnish_demo(owner: Membership) -> None:
    """Environments, the local Docker engine as a server when this machine has one, and a
    sample stack: something to click through on a fresh install."""
    import os

    from apps.environments.models import Environment
    from apps.stacks import services as stacks
    from apps.targets import services as targets
    from windflow.engine.dockerhost import DEFAULT_SOCKET

    staging = Environment.objects.create(name="staging", slug="staging", kind="staging")
    Environment.objects.create(name="production", slug="production", kind="prod", protected=True)
    if not os.path.exists(DEFAULT_SOCKET):
        return
    server = targets.create_target(owner, name="local", kind="local")
    stacks.create_stack(
        owner,
        name="hello",
        environment=staging,
        target=server,
        compose=SAMPLE_STACK,
        message="sample stack",
        description="nginx with a healthcheck, published on 127.0.0.1:8081",
    )


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
        with tenant_context(organization):
            furnish_demo(Membership.objects.get(user=user, organization=organization))
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
