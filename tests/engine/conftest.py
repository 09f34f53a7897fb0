"""Engine tests: SSH endpoints on the one session sshd of tests/conftest.py (root and the
user without Docker access, both authorised with `root_key`), a port that never talks, and
the run's real Docker engine (`client`, one per test module) with its `driver`."""

import socket

import pytest

from devtools import ensure_docker_engine
from tests.base import NODOCKER_USER
from windflow.engine import ssh
from windflow.engine.dockerhost import docker_client_local
from windflow.engine.drivers.docker import DockerDriver


@pytest.fixture
def endpoint(sshd, root_key):
    return ssh.SSHEndpoint(
        sshd.host, sshd.port, "root", root_key[0], pinned_fingerprint=sshd.host_key_fingerprint
    )


@pytest.fixture
def nodocker_endpoint(sshd, root_key):
    return ssh.SSHEndpoint(
        sshd.host,
        sshd.port,
        NODOCKER_USER,
        root_key[0],
        pinned_fingerprint=sshd.host_key_fingerprint,
    )


@pytest.fixture
def session(endpoint):
    with ssh.connect(endpoint) as live:
        yield live


@pytest.fixture
def silent_port():
    """A port on 127.0.0.1 that accepts TCP connections (kernel backlog) but never says
    a word: a stand-in for a host that drops the SSH traffic after the handshake."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield listener.getsockname()[1]
    listener.close()


@pytest.fixture(scope="module")
def client():
    client = docker_client_local(ensure_docker_engine(), timeout=60)
    yield client
    client.close()


@pytest.fixture
def driver(client):
    return DockerDriver(client, stop_timeout=1)
