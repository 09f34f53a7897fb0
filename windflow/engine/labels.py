"""The labels WindFlow reads and writes on containers, networks and volumes: one home for
them. The ``com.docker.compose.*`` ones are those of ``docker compose`` (so that ``docker
compose ls``, ``ps`` and ``down`` recognise a WindFlow project); the ``io.windflow.*`` ones
are WindFlow's own."""

# docker compose
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
NUMBER_LABEL = "com.docker.compose.container-number"
HASH_LABEL = "com.docker.compose.config-hash"
ONEOFF_LABEL = "com.docker.compose.oneoff"
IMAGE_LABEL = "com.docker.compose.image"
NETWORK_LABEL = "com.docker.compose.network"
VOLUME_LABEL = "com.docker.compose.volume"
WORKING_DIR_LABEL = "com.docker.compose.project.working_dir"
CONFIG_FILES_LABEL = "com.docker.compose.project.config_files"

# WindFlow
# On everything the engine creates.
MANAGED_LABEL = "io.windflow.managed"
# The stack's uid, on everything WindFlow creates for a stack: a compose project of the same
# name without it is not the stack's.
STACK_LABEL = "io.windflow.stack"


def owner_labels(stack_uid) -> dict[str, str]:
    """The labels that make a container, network or volume a stack's own."""
    return {STACK_LABEL: str(stack_uid)}


def carries(labels: dict | None, wanted: dict[str, str]) -> bool:
    """True when `labels` hold every one of `wanted` with its value."""
    labels = labels or {}
    return all(labels.get(key) == value for key, value in wanted.items())


def owned(labels: dict | None, project: str, owner: dict[str, str]) -> bool:
    """The one ownership rule of a compose project's containers: a container is the owner's
    when its `labels` put it in `project` and carry every `owner` label. `owner` must not be
    empty (nothing would be refused)."""
    if not owner:
        raise ValueError("an ownership check needs the owner's labels")
    return (labels or {}).get(PROJECT_LABEL) == project and carries(labels, owner)
