"""Organisation lifecycle: provisioning a schema and its domain, URLs, the template schema."""

import logging
import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection, transaction
from django_tenants.utils import schema_exists

from apps.accounts.choices import Role
from apps.accounts.models import Membership, User
from apps.audit.services import record_in
from windflow import hotcache

from . import migrating, spares
from .cloning import clone_template
from .models import Domain, Organization
from .tasks import refill_spares_on_commit
from .validators import schema_name_for, validate_slug

logger = logging.getLogger(__name__)


class SlugTaken(Exception):
    pass


def public_url(path: str = "/") -> str:
    return settings.WINDFLOW_PUBLIC_URL.rstrip("/") + path


def slug_is_available(slug: str) -> bool:
    return not Organization.objects.filter(slug=slug).exists()


def create_organization(*, name: str, slug: str, owner: User) -> Organization:
    """Create the organisation, its schema (a spare schema renamed, or else a clone of the
    template) and domain, and make `owner` its first owner. All or nothing: a failure leaves
    no schema and no row behind (a spare taken is a spare again)."""
    validate_slug(slug)
    started = time.perf_counter()
    with transaction.atomic():
        if not slug_is_available(slug):
            raise SlugTaken(slug)
        organization = Organization.objects.create(
            name=name.strip(), slug=slug, schema_name=schema_name_for(slug)
        )
        provision_schema(organization.schema_name)
        Domain.objects.create(
            domain=organization.primary_domain, tenant=organization, is_primary=True
        )
        Membership.objects.create(user=owner, organization=organization, role=Role.OWNER)
        details = {"name": organization.name, "slug": slug, "owner": owner.email}
        record_in(
            organization, "organization.create", obj=organization, actor=owner, changes=details
        )
        record_in(None, "organization.create", obj=organization, actor=owner, changes=details)
    logger.info("organisation %s provisioned in %.2fs", slug, time.perf_counter() - started)
    return organization


def provision_schema(schema_name: str) -> None:
    """The new organisation's schema, in the caller's transaction: a spare renamed when the
    pool has one, else a clone of the template made now (and said in the logs, with the
    setting that sizes the pool). The pool is refilled once the transaction commits."""
    if schema_exists(schema_name):
        raise ValidationError(f"A schema named {schema_name} exists already.")
    spare = spares.take_spare(schema_name)
    if spare:
        logger.info("schema %s is spare schema %s renamed", schema_name, spare)
        refill_spares_on_commit()
        return
    if spares.pool_size():
        logger.warning(
            "no spare schema at the template's state: cloning %s while the sign-up waits "
            "(WINDFLOW_SPARE_SCHEMAS=%d; the scheduler's refill_spare_schemas refills the pool)",
            schema_name,
            spares.pool_size(),
        )
        refill_spares_on_commit()
    clone_template(schema_name)


def delete_organization(organization: Organization) -> None:
    """Drop the schema and every public row of the organisation."""
    hosts = [hotcache.host_key(d) for d in organization.domains.values_list("domain", flat=True)]
    with transaction.atomic():
        schema = organization.schema_name
        organization.delete(force_drop=False)
        hotcache.forget_on_commit(*hosts)
        with connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def ensure_public_tenant() -> Organization:
    organization, _ = Organization.objects.get_or_create(
        schema_name=settings.PUBLIC_SCHEMA_NAME,
        defaults={"name": "WindFlow", "slug": "public"},
    )
    Domain.objects.get_or_create(
        domain=settings.WINDFLOW_BASE_DOMAIN, defaults={"tenant": organization, "is_primary": True}
    )
    return organization


def migrate_everything(
    verbosity: int = 1, *, processes: int | None = None, write=None, every: float = 10.0
) -> migrating.MigrationReport:
    """Public schema, then the template schema new organisations are cloned from, then every
    organisation that is behind, `processes` at a time (default: one per core).
    Run at each release (Procfile `release`). Progress goes to `write` (a line at a time).
    The report names the schemas that failed and those still behind; a failure of the
    template stops the run before the organisations (they would be cloned from it)."""
    write = write or (lambda line: None)
    call_command("migrate_schemas", shared=True, interactive=False, verbosity=verbosity)
    ensure_public_tenant()
    template = migrating.migrate_template(write)
    if template is not None and template.failed:
        return migrating.MigrationReport(outcomes=[template], still_behind=[template.schema])
    report = migrating.migrate_tenants(processes=processes, write=write, every=every)
    connection.set_schema_to_public()
    return report


def set_local_engine_organizations(engine, organizations, *, actor=None) -> None:
    """Assign the platform's local Docker `engine` to exactly `organizations` (platform staff,
    in the admin). Each organisation that gains or loses it has the change in its own audit
    trail, and the platform's chain has the whole of it. An organisation that loses the
    engine keeps its servers, which stop connecting (they say why)."""
    with transaction.atomic():
        before = set(engine.organizations.values_list("pk", flat=True))
        after = {organization.pk for organization in organizations}
        engine.organizations.set(after)
        changed = Organization.objects.filter(pk__in=before ^ after).order_by("pk")
        for organization in changed:
            action = "local_engine.assign" if organization.pk in after else "local_engine.unassign"
            record_in(
                organization,
                action,
                object_type="local_engine",
                object_id=engine.pk,
                object_label=engine.name,
                changes={"socket": engine.socket_path},
                actor=actor,
            )
        if changed:
            names = dict(Organization.objects.values_list("pk", "slug"))
            record_in(
                None,
                "local_engine.organizations",
                object_type="local_engine",
                object_id=engine.pk,
                object_label=engine.name,
                changes={
                    "organizations": [
                        sorted(names[pk] for pk in before if pk in names),
                        sorted(names[pk] for pk in after if pk in names),
                    ]
                },
                actor=actor,
            )
