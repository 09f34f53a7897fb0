import logging

import dramatiq
from django.db import connection, transaction

from windflow.workers import TRACKED_OPTION

from . import spares

logger = logging.getLogger(__name__)


@dramatiq.actor(max_retries=0, time_limit=10 * 60_000)
def refill_spare_schemas() -> None:
    """Keep WINDFLOW_SPARE_SCHEMAS spare schemas at the template's state. Creating tables
    fills the backend's caches: the connection is closed afterwards, not pooled."""
    try:
        cloned = spares.refill()
        if cloned:
            logger.info("spare schemas: %d cloned", cloned)
    finally:
        connection.retire_on_close()
        connection.close()


def refill_spares_on_commit() -> None:
    """Send a refill once the surrounding transaction commits (housekeeping: not in the
    admin's task list). Redis away: the scheduler sends one again later."""

    def send():
        try:
            refill_spare_schemas.send_with_options(**{TRACKED_OPTION: False})
        except Exception:
            logger.warning("spare schema refill not queued now: sent again later", exc_info=True)

    transaction.on_commit(send)
