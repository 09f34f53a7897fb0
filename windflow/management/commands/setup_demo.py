import secrets

from django.core.management.base import BaseCommand
from django.db import transaction
from django_tenants.utils import tenant_context

from apps.accounts.models import Membership, User
from apps.tenants import services
from apps.tenants.models import Organization

DEMO_EMAIL = "admin@demo.localhost"
# Built on the demo's engine by `make run` (devtools.images.DEMO_IMAGE, the same name): busybox's
# httpd on 8080. Never pulled, so the first deploy works offline.
DEMO_IMAGE = "windflow-demo/hello:1"
SAMPLE_STACK = f"""\
# A sample stack: deploy it to see progress, the health gate and the log live.
# Its image is built on this machine by `make run`: no registry, no internet needed.
services:
  web:
    image: {DEMO_IMAGE}
    pull_policy: never
    ports: ["127.0.0.1:${{WEB_PORT:-8081}}:8080"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/"]
      interval: 2s
      retries: 10
    restart: unless-stopped
    deploy:
      resources:
        limits: {{memory: 64M, cpus: "0.5"}}
"""
# The same from Docker Hub, beside it and not deployed: it needs the server to reach the internet.
HUB_STACK = """\
# The sample stack with an image from Docker Hub: the server must reach the internet to pull it.
services:
  web:
    image: nginx:1.27-alpine
    ports: ["127.0.0.1:${HUB_WEB_PORT:-8082}:80"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O-", "http://127.0.0.1/"]
      interval: 2s
      retries: 10
    restart: unless-stopped
    deploy:
      resources:
        limits: {memory: 128M, cpus: "0.5"}
"""


def demo_socket() -> str | None:
    """The first socket of the operator's allow-list (WINDFLOW_LOCAL_SOCKETS) that exists:
    `make run` lists only the engine it found or started (devtools.runlocal)."""
    import os

    from django.conf import settings

    for path in settings.WINDFLOW_LOCAL_SOCKETS:
        if os.path.exists(path):
            return os.path.normpath(path)
    return None


def demo_engine(organization: Organization):
    """This machine's Docker engine as a local engine that platform staff assigned to the demo
    organisation (WINDFLOW_LOCAL_TARGETS=staff, the default of `make run`), when the machine
    has one on an allowed socket; None otherwise."""

    from django.conf import settings

    from apps.tenants.models import LocalEngine

    if settings.WINDFLOW_LOCAL_TARGETS != "staff":
        return None
    socket_path = demo_socket()
    if socket_path is None:
        return None
    # One engine per socket: reuse the one platform staff may have made already.
    engine = LocalEngine.objects.filter(socket_path=socket_path).first()
    if engine is None:
        name = "this-machine"
        if LocalEngine.objects.filter(name=name).exists():  # an engine of an earlier run
            name = f"this-machine-{LocalEngine.objects.count() + 1}"
        engine = LocalEngine.objects.create(
            name=name,
            socket_path=socket_path,
            description="The Docker engine of the machine WindFlow runs on (make run).",
        )
    services.set_local_engine_organizations(
        engine, [*engine.organizations.all(), organization], actor=None
    )
    return engine


def adopt_local_servers(organization: Organization, engine) -> None:
    """A demo made before local engines existed: its local servers on the engine's socket
    now use the engine (else they would be refused at connect time)."""
    from apps.targets.models import Target

    with tenant_context(organization):
        Target.objects.filter(
            kind="local", engine__isnull=True, socket_path=engine.socket_path
        ).update(engine=engine)


def furnish_demo(owner: Membership, engine=None) -> None:
    """Environments, the local Docker engine as a server when the platform gave the demo one
    (`engine`, or an allowed socket when WINDFLOW_LOCAL_TARGETS=all), and a sample stack:
    something to click through on a fresh install."""

    from django.conf import settings

    from apps.environments.models import Environment
    from apps.stacks import services as stacks
    from apps.targets import services as targets

    staging = Environment.objects.create(name="staging", slug="staging", kind="staging")
    Environment.objects.create(name="production", slug="production", kind="prod", protected=True)
    if engine is not None:
        server = targets.create_target(owner, name="local", kind="local", engine=engine)
    elif settings.WINDFLOW_LOCAL_TARGETS == "all" and demo_socket() is not None:
        server = targets.create_target(owner, name="local", kind="local", socket_path=demo_socket())
    else:
        return
    stacks.create_stack(
        owner,
        name="hello",
        environment=staging,
        target=server,
        compose=SAMPLE_STACK,
        message="sample stack",
        description=(
            "A web page with a healthcheck, published on 127.0.0.1:8081; its image is built "
            "on this machine by make run (no registry needed)."
        ),
    )
    stacks.create_stack(
        owner,
        name="hello-hub",
        environment=staging,
        target=server,
        compose=HUB_STACK,
        message="sample stack from Docker Hub",
        description=(
            "nginx from Docker Hub with a healthcheck, published on 127.0.0.1:8082: deploy it "
            "when the server can reach the internet."
        ),
    )


class Command(BaseCommand):
    help = "Create the demo organisation `demo` and its admin account (once)."

    def handle(self, *args, **options):
        organization = Organization.objects.filter(slug="demo").first()
        if organization is not None:
            engine = demo_engine(organization)
            if engine is not None:
                adopt_local_servers(organization, engine)
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
            engine = demo_engine(organization)
        with tenant_context(organization):
            furnish_demo(Membership.objects.get(user=user, organization=organization), engine)
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
