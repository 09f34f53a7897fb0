"""Test tooling: two organisations with personas on a real PostgreSQL and Redis (started by
devtools.pytest_plugin for this run), and per-test clean state."""

import os
import shutil
import tempfile
from pathlib import Path

# devtools.pytest_plugin (pyproject addopts) has started PostgreSQL and Redis already.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "windflow.settings.test")

import pytest

from tests.base import PERSONAS, build_world, flush_redis, require_root


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database with the public and template schemas, and two organisations (acme,
    globex) whose members are the personas. Tests run in a transaction rolled back after."""
    from apps.tenants.services import migrate_everything

    with django_db_blocker.unblock():
        migrate_everything(verbosity=0)
        build_world()
    yield
    # Threads of websocket consumers and workers may still hold a connection (idle): end
    # them so that the test database can be dropped.
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(autouse=True)
def _clean_state():
    """Each test starts on the public schema with empty Redis (cache, sessions, lockout
    counters, queues, channel groups), in the site's language (a request leaves its
    language active in the thread: a French one must not make the next test French)."""
    from django.conf import settings
    from django.utils import translation

    flush_redis()
    translation.activate(settings.LANGUAGE_CODE)
    yield
    from django.db import connection

    connection.set_schema_to_public()
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture
def acme(db):
    from apps.tenants.models import Organization

    return Organization.objects.get(slug="acme")


@pytest.fixture
def globex(db):
    from apps.tenants.models import Organization

    return Organization.objects.get(slug="globex")


def _persona_fixture(key):
    @pytest.fixture(name=key)
    def _fixture(db):
        from apps.accounts.models import User

        return User.objects.get(email=PERSONAS[key][0])

    return _fixture


for _key in PERSONAS:
    globals()[_key] = _persona_fixture(_key)


@pytest.fixture
def in_acme(acme):
    """Run the test body with acme's schema active (for tenant models)."""
    from django.db import connection

    connection.set_tenant(acme)
    yield acme
    connection.set_schema_to_public()


@pytest.fixture
def live_db(django_db_setup, django_db_blocker):
    """Database access without the rolled-back transaction, from any thread (workers,
    websocket consumers, a live server): the test's writes are committed. It yields a
    tests.live.LiveData: what a test registers there (organisations, users) is deleted after
    it, even when it fails; tests.live.live_organization cleans up after itself."""
    from tests.live import LiveData, close_connections

    data = LiveData()
    with django_db_blocker.unblock():
        try:
            yield data
        finally:
            try:
                data.cleanup()
            finally:
                close_connections()


@pytest.fixture
def operator_of_platform(db):
    """A platform operator: a superuser, signed in on the public host's admin."""
    from apps.accounts.models import User
    from tests.base import PASSWORD

    return User.objects.create_superuser("ops@windflow.test", PASSWORD)


@pytest.fixture
def membership(owner, acme, in_acme):
    """The owner's membership of acme, with acme's schema active."""
    from tests.base import member

    return member(owner, acme)


@pytest.fixture
def failed_deployment(membership, make_stack):
    """acme's stack `shop`, whose deployment failed with a diagnosis (public schema active)."""
    from django.db import connection

    from apps.deployments import journal
    from apps.deployments.choices import DeploymentStatus
    from apps.deployments.services import request_deployment

    stack = make_stack()
    deployment = request_deployment(membership, stack)
    journal.finish(
        deployment,
        DeploymentStatus.FAILED,
        "web exited with code 3",
        {
            "code": "container_exited",
            "summary": "web exited with code 3",
            "service": "web",
            "hint": "Read the container's log: it stopped by itself.",
            "detail": "line one\nline two",
            "containers": ["shop-web-1"],
        },
    )
    connection.set_schema_to_public()
    return deployment


@pytest.fixture
def staging(in_acme):
    from apps.environments.models import Environment

    return Environment.objects.create(
        name="staging", slug="staging", variables={"GREETING": "hello"}
    )


@pytest.fixture
def local_target(membership):
    """acme's `local` server on the test Docker engine (nothing connects until a test
    deploys or checks)."""
    from apps.targets import services as targets

    return targets.create_target(membership, name="web-1", kind="local")


@pytest.fixture
def make_stack(membership, staging, local_target):
    """make_stack(compose=COMPOSE, *, name="shop", actor=membership, environment=staging,
    target=local_target, **settings) -> a Stack with revision 1, made by the service (every
    check applies). When the run's Docker engine is up, the compose projects of the stacks it
    made are removed from it after the test; nothing else is touched."""
    from apps.stacks import services
    from tests.base import COMPOSE

    made = []

    def make(compose: str = COMPOSE, *, name: str = "shop", actor=None, **fields):
        fields.setdefault("environment", staging)
        fields.setdefault("target", local_target)
        stack = services.create_stack(actor or membership, name=name, compose=compose, **fields)
        made.append(stack)
        return stack

    yield make
    engine = os.environ.get("DOCKER_HOST", "")  # the run's own engine (devtools.pytest_plugin)
    if made and engine.startswith("unix://") and os.path.exists(engine.removeprefix("unix://")):
        from devtools import remove_compose_project

        for stack in made:
            remove_compose_project(stack.project)


@pytest.fixture(scope="session")
def image_registry(tmp_path_factory, docker_socket):
    """A private registry on 127.0.0.1 holding the busybox test images (pushed to from the
    run's own Docker engine)."""
    from devtools import start_registry

    server = start_registry(tmp_path_factory.mktemp("registry"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def test_images(image_registry):
    """name -> reference in the private registry: busybox:1, web:1, web:2, unhealthy:1,
    crash:1 (see devtools.images.TEST_IMAGES)."""
    from devtools import build_test_images

    return build_test_images(image_registry)


@pytest.fixture(scope="session")
def docker_socket():
    """The socket of this run's own Docker engine: a private dockerd started on first use, its
    socket, data root and containers under the run's temporary directory (devtools.pytest_plugin
    points DOCKER_HOST at it). Never the machine's /var/run/docker.sock, so no test sees or
    removes a developer's containers. Starting it needs root, unless
    WINDFLOW_TEST_DOCKER_SOCKET names an engine given to the tests."""
    from devtools import ensure_docker_engine
    from devtools.dockerd import TEST_DOCKER_SOCKET

    if not os.environ.get(TEST_DOCKER_SOCKET):
        require_root("starting the test run's private Docker engine")
    return ensure_docker_engine()


@pytest.fixture(scope="session")
def root_key():
    """An ed25519 key authorised for root on the test sshd."""
    from windflow.engine import ssh

    return ssh.generate_ed25519_keypair()


@pytest.fixture(scope="session")
def sshd(docker_socket, root_key):
    """A real sshd on loopback in front of the real Docker engine (root and a user without
    Docker access, both with `root_key`). Tests must leave it as they found it: one that
    changes the server (its host key...) takes `sshd_of_its_own`."""
    from devtools import ensure_system_user, start_sshd

    require_root("a private sshd that logs users in, and useradd,")
    root = Path(tempfile.mkdtemp(prefix="windflow-sshd-"))
    server = start_sshd(root, docker_host=f"unix://{docker_socket}")
    server.authorize("root", root_key[1])
    ensure_system_user("wf-nodocker", docker_access=False)
    server.authorize("wf-nodocker", root_key[1])
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def sshd_of_its_own(docker_socket, root_key):
    """A private sshd for one test that changes its server (rotates the host key...), root
    authorised with `root_key`; stopped and removed after the test."""
    from devtools import start_sshd

    require_root("a private sshd that logs root in")
    root = Path(tempfile.mkdtemp(prefix="windflow-sshd-"))
    server = start_sshd(root, docker_host=f"unix://{docker_socket}")
    server.authorize("root", root_key[1])
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def tls_proxy(docker_socket):
    """Mutual TLS in front of the real Docker engine, as a remote `dockerd --tlsverify`."""
    from devtools import start_tls_docker_proxy

    root = Path(tempfile.mkdtemp(prefix="windflow-tls-"))
    proxy = start_tls_docker_proxy(root, socket_path=docker_socket)
    yield proxy
    proxy.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def git_server(tmp_path_factory):
    """Real Git servers on 127.0.0.1 for this run (devtools.gitserver): `git daemon` (git://)
    and `git http-backend` behind a token check (http://). ``git_server.repo(token=...)``
    makes a new repository (unique name) under the run's temporary directory."""
    from devtools.gitserver import start_git_server

    server = start_git_server(tmp_path_factory.mktemp("git"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def git_sshd():
    """A private sshd (no Docker engine behind it) serving the git_server repositories as
    ssh://root@127.0.0.1:<port>/<path> to the keys a test authorises for root."""
    from devtools import start_sshd

    require_root("a private sshd that logs root in")
    root = Path(tempfile.mkdtemp(prefix="windflow-git-sshd-"))
    server = start_sshd(root)
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


# --- CI: a skipped test is a failed test ---------------------------------------------------

FAIL_ON_SKIP = "WINDFLOW_FAIL_ON_SKIP"


def _fail_skip(report) -> None:
    """With WINDFLOW_FAIL_ON_SKIP=1 (CI), a skip is a failure that says what was skipped and
    why: a run that skipped something did not test it."""
    if os.environ.get(FAIL_ON_SKIP) != "1" or not report.skipped or hasattr(report, "wasxfail"):
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    report.outcome = "failed"
    report.longrepr = f"skipped, and {FAIL_ON_SKIP}=1 makes every skip a failure: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_skip(outcome.get_result())
