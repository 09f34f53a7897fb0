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
