"""Migrating every tenant schema at each release (`manage.py migrate_all`): the template
schema new organisations are cloned from, then every organisation in parallel.

- Which schemas are behind is read in one query across every schema's django_migrations
  (each schema's applied set against the migration graph's leaf nodes), not by opening a
  migration run per schema: a release with nothing to apply costs a few queries.
- Only the schemas behind are migrated, by a bounded pool of processes, each with its own
  connection. Each schema's plan runs in one transaction (PostgreSQL rolls DDL back), so an
  interrupted run (a deploy cancelled, a killed process) leaves every schema either migrated
  or as it was: a re-run does only the schemas still behind.
- A schema that fails does not stop the others: the report names it with its error, and
  says which schemas are still behind at the end.
- Spare schemas (apps.tenants.spares) are not migrated: each records the template's state
  it was cloned at, so once the template is migrated the older ones are never handed out,
  and the next refill drops and re-clones them.

Why our own pool rather than django-tenants' multiprocessing executor: that executor runs
`migrate` in every schema (no "behind" check), stops the whole run at the first schema that
fails, forks with the parent's pooled connections, and reports no rate or time left.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.apps import apps
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.management.sql import emit_pre_migrate_signal
from django.db import connection, connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.db.migrations.state import ModelState, ProjectState
from django.db.models.signals import post_migrate

# How many schemas one query of the "behind" check reads (a UNION ALL per chunk).
CHECK_CHUNK = 500
HISTORY_TABLE = "django_migrations"  # MigrationRecorder.Migration's table


@dataclass
class Outcome:
    """What migrating one schema did: how many migrations it applied, or its error."""

    schema: str
    applied: int = 0
    error: str = ""
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return bool(self.error)


@dataclass
class MigrationReport:
    """The tenant schemas of one run: how many there were, which were behind, what each
    migration did, and which are still behind at the end (none when all went well)."""

    total: int = 0
    behind: list[str] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    still_behind: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[Outcome]:
        return sorted((o for o in self.outcomes if o.failed), key=lambda o: o.schema)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.still_behind


# --- Which schemas -------------------------------------------------------------------------


def tenant_schemas() -> list[str]:
    """Every organisation's schema (not the template's, nor the spares': see above)."""
    from .models import Organization

    organizations = Organization.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME)
    return list(organizations.order_by("schema_name").values_list("schema_name", flat=True))


def expected_leaves() -> list[str]:
    """`app.name` of the leaf migrations of the apps that have tables in organisations'
    schemas (TENANT_APPS): a schema whose history holds them all is up to date (migrations
    are applied in dependency order, each committed with its record). A shared app's
    migration changes nothing there (it is only recorded, at the schema's next migration),
    so a release that migrates only public leaves the organisations alone."""
    tenant_labels = {
        config.label for config in apps.get_app_configs() if config.name in settings.TENANT_APPS
    }
    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    return sorted(f"{app}.{name}" for app, name in graph.leaf_nodes() if app in tenant_labels)


def existing_schemas(schemas: Iterable[str]) -> dict[str, bool]:
    """For each schema that exists: whether it has a migration history table."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname, bool_or(c.relname IS NOT NULL) FROM pg_namespace n"
            " LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = %s"
            " AND c.relkind IN ('r', 'p') WHERE n.nspname = ANY(%s) GROUP BY n.nspname",
            [HISTORY_TABLE, list(schemas)],
        )
        return dict(cursor.fetchall())


def schemas_behind(schemas: list[str]) -> tuple[list[str], list[str]]:
    """(behind, missing): the schemas whose history lacks a leaf migration (or has none),
    and those that do not exist. A few queries whatever the number of schemas."""
    existing = existing_schemas(schemas)
    missing = [schema for schema in schemas if schema not in existing]
    behind = [schema for schema in schemas if existing.get(schema) is False]
    with_history = [schema for schema in schemas if existing.get(schema)]
    leaves = expected_leaves()
    for start in range(0, len(with_history), CHECK_CHUNK):
        chunk = with_history[start : start + CHECK_CHUNK]
        counts = _leaf_counts(chunk, leaves)
        behind += [schema for index, schema in enumerate(chunk) if counts[index] < len(leaves)]
    order = {schema: index for index, schema in enumerate(schemas)}
    return sorted(behind, key=order.__getitem__), missing


def _leaf_counts(schemas: list[str], leaves: list[str]) -> dict[int, int]:
    """How many of `leaves` each schema's history holds, by the schema's index: one query."""
    quote = connection.ops.quote_name
    branches = [
        f"SELECT {index}, count(*) FROM {quote(schema)}.{quote(HISTORY_TABLE)} m"  # noqa: S608
        " JOIN leaves ON leaves.key = m.app || '.' || m.name"
        for index, schema in enumerate(schemas)
    ]
    sql = "WITH leaves(key) AS (SELECT unnest(%s::text[])) " + " UNION ALL ".join(branches)
    with connection.cursor() as cursor:
        cursor.execute(sql, [leaves])
        return dict(cursor.fetchall())


# --- Migrating one schema ------------------------------------------------------------------


def migrate_schema(schema: str) -> Outcome:
    """Apply what `schema` lacks, all in one transaction (unless a migration is declared
    non-atomic: then one transaction per migration, as Django does). Never raises: an error
    is returned with the migration it happened in."""
    started = time.perf_counter()
    applying: list[str] = []
    try:
        applied = _apply(schema, applying)
    except Exception as exc:
        error = f"{type(exc).__name__}: {str(exc).strip()}"
        if applying:
            error = f"{error} (applying {applying[-1]})"
        return Outcome(schema, error=error, seconds=time.perf_counter() - started)
    finally:
        connection.set_schema_to_public()
        _retire_if_worn_out()
    return Outcome(schema, applied=applied, seconds=time.perf_counter() - started)


def _apply(schema: str, applying: list[str]) -> int:
    """Django's `migrate` for one schema, less the post_migrate signal of the apps that had
    nothing to apply (their content types and permissions are there already): the signal
    of every app costs two queries per app per schema, half of a one-column migration."""

    def progress(action, migration=None, fake=False):
        if action == "apply_start":
            applying.append(f"{migration.app_label}.{migration.name}")

    ContentType.objects.clear_cache()  # another schema's content types, if any
    # The history table in this schema, never public's (django-tenants' run_migrations).
    connection.set_schema(schema, include_public=False)
    MigrationRecorder(connection).ensure_schema()
    connection.set_schema(schema)
    executor = MigrationExecutor(connection, progress_callback=progress)
    executor.loader.check_consistent_history(connection)
    targets = executor.loader.graph.leaf_nodes()
    plan = executor.migration_plan(targets)
    if not plan:
        return 0
    atomic = all(migration.atomic for migration, _backwards in plan)
    with transaction.atomic() if atomic else contextlib.nullcontext():
        _migrate(executor, targets, plan)
    return len(plan)


def _migrate(executor, targets, plan) -> None:
    """As django.core.management.commands.migrate does (signals, state re-rendered for
    post_migrate), with post_migrate sent to the apps in `plan` only."""
    output = io.StringIO()  # the signals' receivers write nothing at verbosity 0
    pre_state = _pre_state(executor)
    emit_pre_migrate_signal(
        0, False, connection.alias, stdout=output, apps=pre_state.apps, plan=plan
    )
    post_state = executor.migrate(targets, plan=plan, state=pre_state.clone())
    post_state.clear_delayed_apps_cache()
    post_apps = post_state.apps
    with post_apps.bulk_update():
        model_keys = []
        for model_state in post_apps.real_models:
            model_keys.append((model_state.app_label, model_state.name_lower))
            post_apps.unregister_model(*model_keys[-1])
    post_apps.render_multiple([ModelState.from_model(apps.get_model(*key)) for key in model_keys])
    labels = {migration.app_label for migration, _backwards in plan}
    for app_config in apps.get_app_configs():
        if app_config.models_module is None or app_config.label not in labels:
            continue
        post_migrate.send(
            sender=app_config,
            app_config=app_config,
            verbosity=0,
            interactive=False,
            using=connection.alias,
            stdout=output,
            apps=post_apps,
            plan=plan,
        )


# The rendered state of the models before migrating, by the set of migrations applied: the
# schemas behind are usually all at one state, and rendering it is a third of a schema's time.
_pre_states: dict[frozenset, ProjectState] = {}


def _pre_state(executor) -> ProjectState:
    """The models as `executor`'s schema has them (rendered), as a copy the migration may
    change."""
    applied = frozenset(executor.loader.applied_migrations)
    if applied not in _pre_states:
        state = executor._create_project_state(with_applied_migrations=True)
        state.apps  # noqa: B018 - rendered once, cloned for each schema
        _pre_states.clear()  # one state at a time: a release has one
        _pre_states[applied] = state
    return _pre_states[applied].clone()


def _retire_if_worn_out() -> None:
    """A connection that has visited many schemas grows (PostgreSQL's per-schema catalog
    caches): close it past WINDFLOW_DB_SCHEMAS_PER_CONNECTION; the next schema opens one."""
    worn_out = getattr(connection, "worn_out", None)
    if worn_out is not None and worn_out() and not connection.in_atomic_block:
        connection.close()


# --- Many schemas, in parallel -------------------------------------------------------------


def default_processes() -> int:
    configured = getattr(settings, "WINDFLOW_MIGRATE_PROCESSES", 0)
    return configured if configured > 0 else (os.cpu_count() or 1)


def migrate_schemas(
    schemas: list[str], processes: int, on_outcome: Callable[[Outcome], None]
) -> list[Outcome]:
    """Migrate `schemas` with at most `processes` at once (each process with its own
    connection), calling `on_outcome` as each ends. In this process when there is one
    schema or one process, or inside a transaction (other processes would not see it)."""
    if processes <= 1 or len(schemas) <= 1 or connection.in_atomic_block:
        outcomes = []
        for schema in schemas:
            outcomes.append(migrate_schema(schema))
            on_outcome(outcomes[-1])
        return outcomes
    _release_connections()
    # fork: the children start with Django set up and the same settings (no re-import).
    context = multiprocessing.get_context("fork")
    outcomes = []
    with context.Pool(min(processes, len(schemas)), initializer=_start_child) as pool:
        for outcome in pool.imap_unordered(migrate_schema, schemas):
            outcomes.append(outcome)
            on_outcome(outcome)
    return outcomes


class Interrupted(Exception):
    """The run was stopped (SIGTERM, Ctrl-C): the schemas migrated stay migrated, the ones
    in progress were rolled back (their transaction never committed)."""

    def __init__(self, done: int, total: int):
        self.done, self.total = done, total
        super().__init__(
            f"Interrupted after {done} of the {total} schema(s) behind: those stay migrated,"
            " the ones in progress were rolled back. Run migrate_all again to resume."
        )


@contextlib.contextmanager
def _terminate_as_interrupt():
    """SIGTERM (a release job cancelled or killed) ends the run as Ctrl-C does: the pool
    stops its processes on the way out, and PostgreSQL rolls back what each had begun."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _release_connections() -> None:
    """No connection or pool crosses the fork: a child would share its socket."""
    for conn in connections.all(initialized_only=True):
        conn.close()
        if getattr(conn, "pool", None) is not None:
            conn.close_pool()


def _start_child() -> None:
    """One plain connection per child process, kept for all its schemas (no pool). Stopped
    by the pool with SIGTERM: at once (its open transaction dies with its connection)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for conn in connections.all():
        conn.settings_dict.get("OPTIONS", {}).pop("pool", None)


class Progress:
    """`n/total`, rate and time left, written at most every `every` seconds and at the
    end."""

    def __init__(self, total: int, write: Callable[[str], None], every: float = 10.0):
        self.total = total
        self.write = write
        self.every = every
        self.done = 0
        self.failed = 0
        self.started = time.monotonic()
        self.written_at = self.started

    def add(self, outcome: Outcome) -> None:
        self.done += 1
        self.failed += outcome.failed
        now = time.monotonic()
        if outcome.failed:
            self.write(f"  {outcome.schema}: FAILED {outcome.error}")
        if now - self.written_at >= self.every or self.done == self.total:
            self.written_at = now
            self.write(self.line(now))

    def line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-6)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate else 0.0
        return (
            f"  {self.done}/{self.total} ({100 * self.done // max(self.total, 1)}%),"
            f" {rate:.1f} schemas/s, {_duration(elapsed)} elapsed, ETA {_duration(left)},"
            f" {self.failed} failed"
        )


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


# --- The whole run -------------------------------------------------------------------------


def migrate_template(write: Callable[[str], None]) -> Outcome | None:
    """The template schema (created when missing): first, since organisations (and spares)
    are cloned from it. None when it was up to date."""
    template = settings.TENANT_BASE_SCHEMA
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {connection.ops.quote_name(template)}")
    behind, _missing = schemas_behind([template])
    if not behind:
        return None
    outcome = migrate_schema(template)
    write(f"template {template}: {_outcome_text(outcome)}")
    return outcome


def migrate_tenants(
    *, processes: int | None = None, write: Callable[[str], None], every: float = 10.0
) -> MigrationReport:
    """Every organisation's schema that is behind, in parallel; then the check again, so
    that the report says which are still behind."""
    schemas = tenant_schemas()
    behind, missing = schemas_behind(schemas)
    report = MigrationReport(total=len(schemas), behind=behind)
    report.outcomes = [Outcome(schema, error="the schema does not exist") for schema in missing]
    write(f"tenant schemas: {len(schemas)}, {len(behind)} behind")
    if behind:
        progress = Progress(len(behind), write, every)
        try:
            with _terminate_as_interrupt():
                outcomes = migrate_schemas(behind, processes or default_processes(), progress.add)
        except KeyboardInterrupt:
            raise Interrupted(progress.done, len(behind)) from None
        report.outcomes += outcomes
    if behind or missing:
        still, _missing = schemas_behind(schemas)
        report.still_behind = still + missing
    return report


def _outcome_text(outcome: Outcome) -> str:
    if outcome.failed:
        return f"FAILED {outcome.error}"
    return f"{outcome.applied} migration(s) applied in {outcome.seconds:.1f}s"
