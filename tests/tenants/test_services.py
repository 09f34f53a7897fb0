import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection
from django_tenants.utils import schema_exists

from apps.accounts.models import Membership
from apps.tenants import services
from apps.tenants.models import Domain, Organization
from tests.base import has_column


def test_it_provisions_schema_domain_and_owner(owner):
    organization = services.create_organization(name="Initech", slug="initech", owner=owner)
    assert schema_exists("initech")
    assert Domain.objects.get(tenant=organization).domain == "initech.localhost"
    assert Membership.objects.get(organization=organization).role == "owner"
    # The cloned schema has the tenant tables and a migration history.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'initech' "
            "AND table_name = 'environments_environment'"
        )
        assert cursor.fetchone()[0] == 1


def test_it_maps_hyphens_to_an_underscored_schema(owner):
    organization = services.create_organization(name="Acme Labs", slug="acme-labs", owner=owner)
    assert organization.schema_name == "acme_labs"


@pytest.mark.parametrize(
    "slug",
    [
        "www",
        "api",
        "admin",
        "public",
        "static",
        "media",
        "Acme",
        "ab",
        "a" * 41,
        "1acme",
        "acme_corp",
        "acme--x",
        "-acme",
        "pg-catalog",
        "information-schema",
        "acme.com",
    ],
)
def test_it_refuses_reserved_or_malformed_slugs(owner, slug):
    before = Organization.objects.count()
    with pytest.raises(ValidationError):
        services.create_organization(name="X", slug=slug, owner=owner)
    assert Organization.objects.count() == before


def test_it_refuses_a_taken_slug(owner):
    with pytest.raises(services.SlugTaken):
        services.create_organization(name="Acme again", slug="acme", owner=owner)


def test_it_builds_organisation_urls_with_the_public_port(acme, settings):
    settings.WINDFLOW_PUBLIC_URL = "https://windflow.example:8443"
    settings.WINDFLOW_BASE_DOMAIN = "windflow.example"
    assert acme.url("/environments/") == "https://acme.windflow.example:8443/environments/"


def test_it_migrates_every_schema_with_migrate_all(acme, globex, capsys):
    """`manage.py migrate_all` (the release step) brings an organisation whose schema is
    behind up to date, and leaves the others as they are."""
    from django.core.management import call_command

    call_command(
        "migrate_schemas",
        "stacks",
        "0001",
        schema_name=acme.schema_name,
        interactive=False,
        verbosity=0,
    )
    assert not has_column(acme.schema_name, "stacks_stack", "registry_credentials")
    assert has_column(globex.schema_name, "stacks_stack", "registry_credentials")

    call_command("migrate_all", verbosity=0)
    assert capsys.readouterr().out.strip().endswith("All schemas are up to date.")
    for organization in (acme, globex):
        assert has_column(organization.schema_name, "stacks_stack", "registry_credentials")
    assert has_column(settings.TENANT_BASE_SCHEMA, "stacks_stack", "registry_credentials")
    assert connection.schema_name == "public"
