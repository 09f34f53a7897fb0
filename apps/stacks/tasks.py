import dramatiq

from . import runtime

# Stop / restart wait up to the stop timeout per container (containers in parallel); a
# remove also deletes networks. Far above what the driver's own timeouts allow.
CONTROL_TIME_LIMIT_MS = 15 * 60 * 1000


@dramatiq.actor(queue_name="deployments", max_retries=0, time_limit=CONTROL_TIME_LIMIT_MS)
def control_stack(action_id: int) -> None:
    """Stop / start / restart / remove a stack on its server (the StackAction asked by
    control.request_control). No retry: the outcome is recorded and published, and the
    person asks again."""
    runtime.run_control(action_id)
