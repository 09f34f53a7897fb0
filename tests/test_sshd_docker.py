"""devtools gives SSH and engine tests a real Docker engine of the test run's own (never the
machine's /var/run/docker.sock) and a real, private sshd on 127.0.0.1 whose sessions talk to
that engine (root only: sshd logs users in, and users are created).

No Django database here.
"""

import base64
import grp
import io
import os
import subprocess
from pathlib import Path

import docker
import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devtools import (
    SYSTEM_SOCKET,
    ensure_docker_engine,
    ensure_system_user,
    ssh_banner,
    start_sshd,
)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="a private sshd logging users in and useradd need root"
)

DOCKER_VERSION = "docker version --format '{{.Server.Version}}'"


class ClientKey:
    """An ed25519 key pair made with `cryptography`, in OpenSSH formats."""

    def __init__(self):
        key = Ed25519PrivateKey.generate()
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        ).decode()
        self.public_line = (
            key.public_key()
            .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
            .decode()
        )
        self.pkey = paramiko.Ed25519Key.from_private_key(io.StringIO(private))


def connect(sshd, user, key, pinned_public_key=None):
    """A paramiko client that accepts only the pinned host key (the server's by default)."""
    kind, blob = (pinned_public_key or sshd.host_public_key).split()[:2]
    client = paramiko.SSHClient()
    client.get_host_keys().add(
        f"[{sshd.host}]:{sshd.port}", kind, paramiko.Ed25519Key(data=base64.b64decode(blob))
    )
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        sshd.host,
        sshd.port,
        username=user,
        pkey=key.pkey,
        look_for_keys=False,
        allow_agent=False,
        timeout=5,
        banner_timeout=5,
        auth_timeout=5,
    )
    return client


def run(client, command):
    _, stdout, stderr = client.exec_command(command, timeout=15)
    code = stdout.channel.recv_exit_status()
    return code, stdout.read().decode().strip(), stderr.read().decode().strip()


@pytest.fixture(scope="module")
def client_key():
    return ClientKey()


@pytest.fixture(scope="module")
def sshd(tmp_path_factory, client_key, docker_socket):
    with start_sshd(
        tmp_path_factory.mktemp("sshd"), docker_host=f"unix://{docker_socket}"
    ) as server:
        server.authorize("root", client_key.public_line)
        yield server


def test_it_answers_docker_pings_on_the_engine_socket(docker_socket):
    assert ensure_docker_engine() == docker_socket  # running: reused

    client = docker.DockerClient(base_url=f"unix://{docker_socket}", timeout=10)
    try:
        assert client.ping() is True
        assert client.version()["ApiVersion"]
    finally:
        client.close()


def machine_engine_containers() -> set[str]:
    """Ids on the machine's own engine; none when it has no engine, or a stale socket
    file that nothing answers (as on CI)."""
    if not os.path.exists(SYSTEM_SOCKET):
        return set()
    try:
        machine = docker.DockerClient(base_url=f"unix://{SYSTEM_SOCKET}", timeout=10)
    except docker.errors.DockerException:
        return set()
    try:
        return {c.id for c in machine.containers.list(all=True)}
    finally:
        machine.close()


def test_it_runs_the_tests_on_a_private_engine_never_the_machines(docker_socket, tmp_path):
    """The run's engine has its own socket and data root under the run's temporary directory:
    a container on the machine's engine is not there to be seen, or removed."""
    run_root = Path(os.environ["WINDFLOW_TEST_DOCKER_DIR"]).parent
    assert docker_socket != SYSTEM_SOCKET
    assert Path(docker_socket).is_relative_to(run_root)
    assert os.environ["DOCKER_HOST"] == f"unix://{docker_socket}"

    client = docker.DockerClient(base_url=f"unix://{docker_socket}", timeout=10)
    try:
        assert Path(client.info()["DockerRootDir"]).is_relative_to(run_root)
        own = {c.id for c in client.containers.list(all=True)}
    finally:
        client.close()
    theirs = machine_engine_containers()
    assert not own & theirs


def test_it_gives_sshd_sessions_the_private_engine(sshd, client_key, docker_socket):
    client = connect(sshd, "root", client_key)
    try:
        code, out, err = run(client, "docker info --format '{{.DockerRootDir}}'")
    finally:
        client.close()

    engine = docker.DockerClient(base_url=f"unix://{docker_socket}", timeout=10)
    try:
        assert (code, out) == (0, engine.info()["DockerRootDir"]), err
    finally:
        engine.close()


def test_it_starts_sshd_on_loopback_with_its_own_host_key(sshd):
    assert sshd.is_running()
    assert sshd.host == "127.0.0.1"
    assert ssh_banner(sshd.port).startswith("SSH-2.0-OpenSSH")
    assert sshd.host_public_key.startswith("ssh-ed25519 AAAA")
    assert len(sshd.host_public_key.split()) == 2
    assert "ListenAddress 127.0.0.1" in sshd.config_file.read_text()


def test_it_reuses_a_running_sshd_on_the_same_data_dir(sshd):
    again = start_sshd(sshd.data_dir)

    assert (again.started, again.port) == (False, sshd.port)
    assert again.host_key_fingerprint == sshd.host_key_fingerprint


def test_it_logs_root_in_by_key_and_reaches_docker(sshd, client_key, docker_socket):
    engine = docker.DockerClient(base_url=f"unix://{docker_socket}", timeout=10)
    try:
        expected = engine.version()["Version"]
    finally:
        engine.close()

    client = connect(sshd, "root", client_key)
    try:
        assert run(client, "id -un") == (0, "root", "")
        code, out, err = run(client, DOCKER_VERSION)
    finally:
        client.close()

    assert (code, out) == (0, expected), err


def test_it_reports_the_host_key_fingerprint_that_clients_see(sshd, client_key):
    client = connect(sshd, "root", client_key)
    try:
        seen = client.get_transport().get_remote_server_key()
    finally:
        client.close()

    assert sshd.host_key_fingerprint == seen.fingerprint
    assert sshd.host_key_fingerprint.startswith("SHA256:")
    assert not sshd.host_key_fingerprint.endswith("=")
    keygen = subprocess.run(
        ["ssh-keygen", "-lf", f"{sshd.host_key_file}.pub"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert keygen.stdout.split()[1] == sshd.host_key_fingerprint


def test_it_refuses_a_key_that_was_not_authorized(sshd):
    with pytest.raises(paramiko.AuthenticationException):
        connect(sshd, "root", ClientKey()).close()


def test_it_rotates_the_host_key_on_the_same_port(tmp_path, client_key):
    with start_sshd(tmp_path / "sshd") as server:
        server.authorize("root", client_key.public_line)
        old_key, old_fingerprint, port = (
            server.host_public_key,
            server.host_key_fingerprint,
            server.port,
        )
        connect(server, "root", client_key).close()

        new_fingerprint = server.rotate_host_key()

        assert server.is_running()
        assert server.port == port
        assert new_fingerprint == server.host_key_fingerprint != old_fingerprint
        with pytest.raises(paramiko.BadHostKeyException):
            connect(server, "root", client_key, pinned_public_key=old_key)
        connect(server, "root", client_key).close()  # the new key, pinned, is accepted
    assert not server.is_running()


def test_it_denies_docker_to_a_user_outside_the_docker_group(sshd, client_key, docker_socket):
    user = ensure_system_user("wf-nodocker", docker_access=False)
    sshd.authorize(user, client_key.public_line)

    client = connect(sshd, user, client_key)
    try:
        assert run(client, "id -un")[:2] == (0, user)
        code, _, err = run(client, DOCKER_VERSION)
    finally:
        client.close()

    assert code != 0
    assert "permission denied" in err.lower()


def test_it_lets_a_docker_group_member_use_docker(sshd, client_key, docker_socket):
    user = ensure_system_user("wf-docker", docker_access=True)
    sshd.authorize(user, client_key.public_line)

    client = connect(sshd, user, client_key)
    try:
        code, out, err = run(client, DOCKER_VERSION)
    finally:
        client.close()

    assert code == 0, err
    assert out


def test_it_keeps_system_users_idempotent_and_unlocked():
    name = "wf-toggle"
    assert ensure_system_user(name, docker_access=True) == name
    assert name in grp.getgrnam("docker").gr_mem

    assert ensure_system_user(name, docker_access=False) == name
    assert ensure_system_user(name, docker_access=False) == name
    assert name not in grp.getgrnam("docker").gr_mem

    shadow = dict(line.split(":")[:2] for line in Path("/etc/shadow").read_text().splitlines())
    assert shadow[name] == "*"  # not "!" (locked): sshd would refuse key logins


def assert_sessions_per_connection(server, client_key, limit: int) -> None:
    """`limit` sessions open side by side on one connection, and the next is refused."""
    client = connect(server, "root", client_key)
    try:
        transport = client.get_transport()
        channels = [transport.open_session(timeout=5) for _ in range(limit)]
        with pytest.raises(paramiko.ChannelException):
            transport.open_session(timeout=5)
        for channel in channels:
            channel.close()
    finally:
        client.close()


def test_it_runs_a_stock_sshd_that_allows_ten_sessions_per_connection(sshd, client_key):
    """The test server keeps OpenSSH's defaults (MaxSessions 10): what SSH servers as
    installed allow is what the tests meet."""
    assert "MaxSessions" not in sshd.config_file.read_text()
    assert_sessions_per_connection(sshd, client_key, 10)


def test_it_adds_the_options_a_test_asks_for(tmp_path, client_key):
    with start_sshd(tmp_path / "sshd", options={"MaxSessions": "3"}) as server:
        server.authorize("root", client_key.public_line)
        assert "MaxSessions 3" in server.config_file.read_text()
        assert_sessions_per_connection(server, client_key, 3)
