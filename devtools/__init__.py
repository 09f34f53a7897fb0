"""Developer and test tooling: what only `make run`, `make test`, the tests and the
benchmarks use. Never imported by ``windflow/`` or ``apps/``, not shipped in the wheel.

One module per private server, all built on ``devtools.base.Service`` (start, reuse,
stop) and raising ``devtools.base.DevServiceError``:

    postgres       PostgreSQL              redis_server   Redis
    dockerd        Docker engines          sshd           OpenSSH and system users
    registry       image registry          images         busybox test images, compose
    tlsproxy       Docker over TCP + TLS   openbao        OpenBao (Vault API) dev server

and around them: ``bootstrap`` (installs what is missing; run by `make run`, `make test`
and `.ci/run` with the system python3), ``runlocal`` (`make run`), ``supervisor`` (keeps
the Procfile processes running) and ``pytest_plugin`` (the test run's private servers).
The names used elsewhere are re-exported here: ``from devtools import start_postgres``.
"""

from .base import (
    HOST,
    DevServiceError,
    Service,
    ServiceStack,
    free_port,
    pid_alive,
    port_is_free,
    read_int,
)
from .dockerd import (
    SYSTEM_SOCKET,
    Dockerd,
    docker_ping,
    ensure_docker_engine,
    start_dockerd,
    tests_engine_socket,
)
from .images import (
    BASE_IMAGE,
    DEMO_IMAGE,
    TEST_IMAGE_LABEL,
    TEST_IMAGE_NAMESPACE,
    TEST_IMAGES,
    build_demo_image,
    build_test_images,
    ensure_compose_plugin,
    registry_image_ref,
    remove_compose_project,
)
from .postgres import Postgres, find_pg_bindir, start_postgres
from .redis_server import Redis, find_redis_server, redis_ping, start_redis
from .registry import Registry, registry_get, start_registry
from .sshd import Sshd, ensure_system_user, openssh_fingerprint, ssh_banner, start_sshd
from .tlsproxy import TlsProxy, start_tls_docker_proxy, tls_pem_pair

__all__ = [
    "BASE_IMAGE",
    "DEMO_IMAGE",
    "HOST",
    "SYSTEM_SOCKET",
    "TEST_IMAGES",
    "TEST_IMAGE_LABEL",
    "TEST_IMAGE_NAMESPACE",
    "DevServiceError",
    "Dockerd",
    "Postgres",
    "Redis",
    "Registry",
    "Service",
    "ServiceStack",
    "Sshd",
    "TlsProxy",
    "build_demo_image",
    "build_test_images",
    "docker_ping",
    "ensure_compose_plugin",
    "ensure_docker_engine",
    "ensure_system_user",
    "find_pg_bindir",
    "find_redis_server",
    "free_port",
    "openssh_fingerprint",
    "pid_alive",
    "port_is_free",
    "read_int",
    "redis_ping",
    "registry_get",
    "registry_image_ref",
    "remove_compose_project",
    "ssh_banner",
    "start_dockerd",
    "start_postgres",
    "start_redis",
    "start_registry",
    "start_sshd",
    "start_tls_docker_proxy",
    "tests_engine_socket",
    "tls_pem_pair",
]
