"""Organisation lifecycle: provisioning a schema and its domain, suspending, reactivating and
deleting an organisation (each audited in its trail and the platform's), URLs, the template
schema."""

import logging
import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_tenants.utils import schema_exists, tenant_context

from apps.accounts import revocation
from apps.accounts.choices import Role
from apps.accounts.models import ApiToken, Membership, TokenFamily, User
from apps.audit.models import AuditEvent
from apps.audit.services import record_in
from apps.deployments.choices import ACTIVE_STATUSES, DeploymentStatus
from apps.deployments.models import Deployment
from windflow import hotcache
from windflow.errors import Conflict, ServiceError

from . import migrating, spares
from .cloning import clone_template
from .models import Domain, Organization, OrganizationStatus
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


def _locked(organization: Organization) -> Organization:
    """The organisation's row, locked until the transaction ends (one lifecycle change at a
    time), never the platform's own."""
    if organization.is_public:
        raise ServiceError(_("The public schema is the platform's own, not an organisation."))
    return Organization.objects.select_for_update().get(pk=organization.pk)


def _record_both(organization: Organization, action: str, *, actor, changes: dict) -> None:
    for chain in (organization, None):
        record_in(chain, action, obj=organization, actor=actor, changes=changes)


def _credential_keys(organization: Organization) -> list[str]:
    """Every hot-cache entry that lets a request into `organization`: its hosts, its members'
    memberships, its tokens and its JWT sign-in families."""
    hosts = organization.domains.values_list("domain", flat=True)
    members = Membership.objects.filter(organization=organization)
    tokens = ApiToken.objects.filter(organization=organization).values_list("token_hash", flat=True)
    families = TokenFamily.objects.filter(membership__in=members).values_list("pk", flat=True)
    return [
        *[hotcache.host_key(host) for host in hosts],
        *[hotcache.membership_key(m.user_id, organization.pk) for m in members],
        *[hotcache.token_key(token_hash) for token_hash in tokens],
        *[hotcache.family_key(family) for family in families],
    ]


def _tell_members_sockets(organization: Organization) -> None:
    """Each member's open websockets check their access again once this commits (a suspended
    or deleted organisation's sockets close: apps.accounts.revocation.still_allowed)."""
    for user_id in Membership.objects.filter(organization=organization).values_list(
        "user_id", flat=True
    ):
        revocation.notify_on_commit(user_id)


def suspend_organization(organization: Organization, *, reason: str, actor: User) -> Organization:
    """Suspend `organization` for `reason` (required), by platform staff `actor`. Its members
    still read its pages and API; nothing changes there and its jobs and sweeps do not run
    (apps.tenants.suspension). What runs on its servers keeps running. Every process sees it
    at once: the host entries of the hot cache are forgotten."""
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(
            _("Say why the organisation is suspended: its members read it."),
            field="reason",
            code="reason_required",
        )
    with transaction.atomic():
        organization = _locked(organization)
        if organization.is_suspended:
            raise Conflict(
                _("%(name)s is already suspended (%(reason)s): nothing was changed.")
                % {"name": organization.name, "reason": organization.suspended_reason},
                code="already_suspended",
            )
        organization.status = OrganizationStatus.SUSPENDED
        organization.suspended_reason = reason[:2000]
        organization.suspended_at = timezone.now()
        organization.suspended_by = actor
        organization.save(
            update_fields=["status", "suspended_reason", "suspended_at", "suspended_by"]
        )
        hotcache.forget_on_commit(*_credential_keys(organization))
        _record_both(organization, "organization.suspend", actor=actor, changes={"reason": reason})
        _tell_members_sockets(organization)
    logger.info("organisation %s suspended", organization.slug)
    return organization


def reactivate_organization(organization: Organization, *, actor: User) -> Organization:
    """Lift the suspension of `organization`: its members change things again, and its jobs
    that waited run (windflow.workers.wait_while_suspended)."""
    with transaction.atomic():
        organization = _locked(organization)
        if not organization.is_suspended:
            raise Conflict(
                _("%(name)s is active, not suspended: nothing was changed.")
                % {"name": organization.name},
                code="not_suspended",
            )
        changes = {"suspended_reason": organization.suspended_reason}
        organization.status = OrganizationStatus.ACTIVE
        organization.suspended_reason = ""
        organization.suspended_at = None
        organization.suspended_by = None
        organization.save(
            update_fields=["status", "suspended_reason", "suspended_at", "suspended_by"]
        )
        hotcache.forget_on_commit(*_credential_keys(organization))
        _record_both(organization, "organization.reactivate", actor=actor, changes=changes)
    logger.info("organisation %s reactivated", organization.slug)
    return organization


def _schema_has(organization: Organization, model) -> bool:
    """Whether `model`'s table exists in the organisation's own schema (not found through
    the search path in public)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT to_regclass(%s)", [f'"{organization.schema_name}".{model._meta.db_table}']
        )
        return cursor.fetchone()[0] is not None


def _refuse_while_deploying(organization: Organization) -> int:
    """Lock the organisation's unfinished deployments. A running one refuses the deletion (a
    worker is changing a server: cutting it off would leave containers half made); queued
    ones, which changed nothing yet, go with the schema. Returns how many were queued. A
    schema that is missing or was never migrated has none."""
    if not _schema_has(organization, Deployment):
        return 0
    with tenant_context(organization):
        active = list(
            Deployment.objects.select_for_update()
            .filter(status__in=ACTIVE_STATUSES)
            .values_list("pk", "status")
        )
    running = [pk for pk, status in active if status == DeploymentStatus.RUNNING]
    if running:
        raise Conflict(
            _(
                "%(name)s has %(count)d deployment(s) running (%(ids)s): wait until they end "
                "(suspend it first so that no new one starts), then delete it. Nothing was "
                "deleted."
            )
            % {
                "name": organization.name,
                "count": len(running),
                "ids": ", ".join(f"#{pk}" for pk in sorted(running)),
            },
            code="deployments_running",
        )
    return len(active)


def delete_organization(organization: Organization, *, actor: User | None = None) -> None:
    """The one removal flow: drop the schema (everything the organisation owns), its domains,
    memberships, tokens and JWT sign-ins, all at once or not at all. Every credential and host
    entry of the hot cache is forgotten and its members' websockets close, so the host stops
    serving at the commit. Refused while one of its deployments runs. Audited in its trail
    (dropped with it) and in the platform's, which keeps the record."""
    with transaction.atomic():
        organization = _locked(organization)
        queued = _refuse_while_deploying(organization)
        details = {
            "name": organization.name,
            "slug": organization.slug,
            "schema": organization.schema_name,
            "members": Membership.objects.filter(organization=organization).count(),
            "queued_deployments_dropped": queued,
        }
        # Its own trail goes with its schema (when there is one); the platform's keeps it.
        chains = [organization] if _schema_has(organization, AuditEvent) else []
        for chain in (*chains, None):
            record_in(chain, "organization.delete", obj=organization, actor=actor, changes=details)
        keys = _credential_keys(organization)
        _tell_members_sockets(organization)
        schema = organization.schema_name
        organization.delete(force_drop=False)  # cascades: domains, memberships, tokens...
        with connection.cursor() as cursor:
            # Deferred foreign-key checks of this transaction's writes run now: PostgreSQL
            # drops no table with pending trigger events.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        hotcache.forget_on_commit(*keys)
    logger.info("organisation %s deleted (schema %s dropped)", details["slug"], schema)


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
