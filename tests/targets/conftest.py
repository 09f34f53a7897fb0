"""A real sshd on loopback in front of the real Docker engine, for target tests."""

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.base import write_compose_plugin
from windflow.engine import ssh


@pytest.fixture(scope="session")
def docker_socket():
    from windflow.localservices import ensure_docker_engine

    return ensure_docker_engine()


@pytest.fixture(scope="session")
def root_key():
    """An ed25519 key authorised for root on the test sshd."""
    return ssh.generate_ed25519_keypair()


@pytest.fixture(scope="session")
def sshd(docker_socket, root_key):
    from windflow.localservices import ensure_system_user, start_sshd

    root = Path(tempfile.mkdtemp(prefix="windflow-sshd-"))
    server = start_sshd(root)
    server.authorize("root", root_key[1])
    ensure_system_user("wf-nodocker", docker_access=False)
    server.authorize("wf-nodocker", root_key[1])
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def compose_plugin_for_root():
    """Debian 12 ships no compose v2: give root's docker CLI a compose plugin (it follows the
    CLI plugin protocol) so that the server counts as prepared; removed afterwards."""
    import subprocess

    if (
        subprocess.run(
            ["docker", "compose", "version"], capture_output=True, check=False
        ).returncode
        == 0
    ):
        yield
        return
    plugins = Path.home() / ".docker" / "cli-plugins"
    write_compose_plugin(plugins)
    plugin = plugins / "docker-compose"
    yield
    plugin.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def tls_proxy(docker_socket):
    """Mutual TLS in front of the real Docker engine, as a remote `dockerd --tlsverify`."""
    from windflow.localservices import start_tls_docker_proxy

    root = Path(tempfile.mkdtemp(prefix="windflow-tls-"))
    proxy = start_tls_docker_proxy(root)
    yield proxy
    proxy.stop()
    shutil.rmtree(root, ignore_errors=True)
