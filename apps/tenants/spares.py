"""The pool of spare schemas: copies of the template made ahead of time, so that signing up
renames one (`ALTER SCHEMA ... RENAME TO`, instant at any organisation count) instead of
cloning while the person waits.

- `take_spare` runs inside the sign-up's transaction: it locks one spare row with
  SELECT ... FOR UPDATE SKIP LOCKED (two sign-ups at once never get the same one), renames
  its schema and deletes the row. A failure later in the sign-up rolls all of it back: the
  spare is a spare again.
- `refill` (the `refill_spare_schemas` actor, which the scheduler sends periodically and each
  sign-up sends once committed) drops the spares that are out of date and clones until
  WINDFLOW_SPARE_SCHEMAS spares are at the template's current state. 0 disables the pool.
- Out of date: a spare records the template's migration state (cloning.template_state) it
  was cloned at. After `migrate_all` has migrated the template, older spares are never
  handed out, and the next refill drops and re-clones them rather than migrating them: a
  fresh clone is the template exactly (data migrations included), costs a tenth of a
  second, and migrate_all need not know about spares.

Spare schemas are named `_spare_<hex>`: no organisation's schema starts with `_` (a slug
starts with a letter).
"""

import logging
import secrets

from django.conf import settings
from django.db import connection, transaction

from .cloning import clone_template, quote, template_state
from .models import SpareSchema

logger = logging.getLogger(__name__)

PREFIX = "_spare_"
# pg_try_advisory_lock key: one refill at a time across workers.
REFILL_LOCK = 0x57F1_0001


def pool_size() -> int:
    return max(0, settings.WINDFLOW_SPARE_SCHEMAS)


def take_spare(schema_name: str) -> str | None:
    """Rename an up-to-date spare schema to `schema_name`, in the caller's transaction, and
    return the spare's name. None when there is none (the caller clones)."""
    if not pool_size():
        return None
    spare = (
        SpareSchema.objects.select_for_update(skip_locked=True)
        .filter(template_state=template_state())
        .first()
    )
    if spare is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER SCHEMA {quote(spare.schema_name)} RENAME TO {quote(schema_name)}")
    spare.delete()
    return spare.schema_name


def refill(size: int | None = None) -> int:
    """Drop out-of-date and surplus spares, then clone until `size` (default
    WINDFLOW_SPARE_SCHEMAS) up-to-date ones exist. Returns how many were cloned; 0 at once
    when another refill is running."""
    size = pool_size() if size is None else size
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [REFILL_LOCK])
        if not cursor.fetchone()[0]:
            return 0
    try:
        state = template_state()
        for spare in SpareSchema.objects.exclude(template_state=state):
            discard(spare.pk)
        for spare in SpareSchema.objects.filter(template_state=state)[size:]:
            discard(spare.pk)
        cloned = 0
        while SpareSchema.objects.filter(template_state=state).count() < size:
            add_spare()
            cloned += 1
        return cloned
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [REFILL_LOCK])


def add_spare() -> SpareSchema:
    """One more spare, cloned from the template in one transaction (all or nothing)."""
    name = f"{PREFIX}{secrets.token_hex(6)}"
    with transaction.atomic():
        state = template_state()
        clone_template(name)
        return SpareSchema.objects.create(schema_name=name, template_state=state)


def discard(pk: int) -> None:
    """Drop one spare and its row, unless a sign-up is taking it right now."""
    with transaction.atomic():
        spare = SpareSchema.objects.select_for_update(skip_locked=True).filter(pk=pk).first()
        if spare is None:
            return
        with connection.cursor() as cursor:
            cursor.execute(f"DROP SCHEMA IF EXISTS {quote(spare.schema_name)} CASCADE")
        spare.delete()
        logger.info("spare schema %s dropped", spare.schema_name)
