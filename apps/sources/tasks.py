import dramatiq

from . import sync

# A fetch of a large repository over a slow link: far above the engine's own git timeouts.
SYNC_TIME_LIMIT_MS = 15 * 60 * 1000


@dramatiq.actor(max_retries=0, time_limit=SYNC_TIME_LIMIT_MS)
def sync_source(source_id: int) -> None:
    """Fetch a stack's Git ref and make a revision when the project changed; the outcome
    (status, error code and hint) is recorded on the GitSource. No retry: "Fetch now", a
    push or the next polling round asks again."""
    sync.sync_source(source_id)


# Push to deploy (package D): its actors live in push_tasks; importing them here is what
# makes workers know them (Dramatiq discovers the `tasks` module of each app).
from .push_tasks import check_source, handle_push, poll_sources  # noqa: E402, F401
