"""Run as a program (``python -m tests.faults.world``) with DATABASE_URL and REDIS_URL of a
fault instance: migrates its database and creates the world the fault tests deploy in (an
organisation, its owner, a write API token, the test Docker engine, a `local` server and one
stack per scenario). Prints the world as one JSON line."""

import json
import os
import sys


def build(prefix: str, stacks: dict[str, str], socket_path: str) -> dict:
    from django.db import connection

    from apps.accounts.models import Membership, User
    from apps.accounts.services import create_api_token
    from apps.environments.models import Environment
    from apps.stacks.models import Stack, StackRevision
    from apps.targets import services as targets
    from apps.tenants.models import LocalEngine
    from apps.tenants.services import create_organization, migrate_everything

    migrate_everything(verbosity=0)
    owner = User.objects.create_user(f"owner@{prefix}.test", "pw-faults-123456")
    organization = create_organization(name=prefix, slug=prefix, owner=owner)
    engine = LocalEngine.objects.create(name=f"{prefix}-engine", socket_path=socket_path)
    engine.organizations.add(organization)
    membership = Membership.objects.get(user=owner, organization=organization)
    connection.set_tenant(organization)
    _token, secret = create_api_token(membership, name="faults", scope="write")
    environment = Environment.objects.create(name="faults", slug="faults")
    target = targets.create_target(membership, name="local", kind="local")
    for name, compose in stacks.items():
        stack = Stack.objects.create(name=name, environment=environment, target=target)
        StackRevision.objects.create(stack=stack, number=1, compose=compose)
    return {
        "schema": organization.schema_name,
        "host": organization.primary_domain,
        "token": secret,
    }


def main() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "windflow.settings.test")
    django.setup()
    spec = json.loads(sys.stdin.read())
    world = build(spec["prefix"], spec["stacks"], spec["socket"])
    print(json.dumps(world))


if __name__ == "__main__":
    main()
