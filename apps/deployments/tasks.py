import dramatiq

from . import runner

# Long enough for a slow pull and the longest health gate; the runner's own timeouts end
# a deployment well before this.
DEPLOYMENT_TIME_LIMIT_MS = 3 * 60 * 60 * 1000


@dramatiq.actor(queue_name="deployments", max_retries=0, time_limit=DEPLOYMENT_TIME_LIMIT_MS)
def run_deployment(deployment_id: int) -> None:
    """Idempotent: a redelivered message finds the deployment taken or finished."""
    runner.run(deployment_id)


@dramatiq.actor(max_retries=0)
def reap_stale_deployments() -> None:
    """Running deployments whose worker died become failed and resumable (the scheduler
    does this itself every few seconds; this actor is for a manual sweep)."""
    runner.reap_stale()


@dramatiq.actor(max_retries=0)
def requeue_forgotten_deployments() -> None:
    """Queued deployments whose message was lost (Redis restarted) get it again."""
    runner.requeue_forgotten()
