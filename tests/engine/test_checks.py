"""windflow.engine.checks and bootstrap against the real sshd on 127.0.0.1 and the real
Docker engine (fixtures in tests/conftest.py and tests/engine/conftest.py). No mocks, no
database. What needs no server runs as any user; the rest needs root (sshd, useradd)."""

import glob
import json
import os
import pwd
import signal
import stat
import subprocess
import time

import pytest

from devtools import ensure_system_user, free_port
from tests.base import NODOCKER_USER, require_root, write_compose_plugin
from windflow.engine import bootstrap, checks, ssh
from windflow.engine.checks import GiB, MiB

NOLOGIN_USER = "wfengine-nologin"
SSH_CHECKS = [
    "ssh reachable",
    "host key",
    "authenticated",
    "ssh sessions",
    "docker engine",
    "docker permission",
    "disk",
    "memory",
]


def _names(results):
    return [check.name for check in results]


def _docker_server_version(docker_socket):
    return subprocess.run(
        ["docker", "-H", f"unix://{docker_socket}", "version", "--format", "{{.Server.Version}}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=20,
    ).stdout.strip()


# ----------------------------------------------------------------------- SSH target


def test_it_checks_a_healthy_ssh_target(endpoint, docker_socket):
    started = time.monotonic()
    results, facts = checks.check_ssh_target(endpoint)
    elapsed = time.monotonic() - started
    assert _names(results) == SSH_CHECKS
    assert all(check.ok for check in results), results
    by_name = {check.name: check for check in results}
    assert endpoint.pinned_fingerprint in by_name["host key"].detail
    version = _docker_server_version(docker_socket)
    assert version in by_name["docker engine"].detail
    assert facts.docker_version == version
    assert facts.os and facts.architecture == os.uname().machine
    assert facts.cpus == os.cpu_count()
    assert facts.memory_bytes > 100 * MiB
    assert facts.disk_free_bytes > 0
    assert sum(check.duration_ms for check in results) <= elapsed * 1000 + 1
    assert json.dumps([check.to_dict() for check in results]) and json.dumps(facts.to_dict())


def test_it_hands_the_checked_session_to_a_pool(endpoint):
    pool = ssh.SessionPool()
    try:
        results, _ = checks.check_ssh_target(endpoint, pool=pool)
        assert all(check.ok for check in results)
        assert pool.idle_count(endpoint) == 1
        with pool.session(endpoint) as live:
            assert live.run("true").ok
        assert pool.connects == 0 and pool.reuses == 1
    finally:
        pool.close_all()


def test_it_tells_a_user_without_docker_access_how_to_get_it(nodocker_endpoint):
    results, facts = checks.check_ssh_target(nodocker_endpoint)
    assert _names(results) == SSH_CHECKS
    by_name = {check.name: check for check in results}
    failing = [check.name for check in results if not check.ok]
    assert failing == ["docker permission"]
    permission = by_name["docker permission"]
    assert permission.code == "PermissionDeniedDocker"
    assert not permission.warning
    assert f"sudo usermod -aG docker {NODOCKER_USER}" in permission.hint
    assert NODOCKER_USER in permission.detail
    assert facts is not None and facts.docker_version is None
    assert facts.memory_bytes and facts.disk_free_bytes


def test_it_stops_at_a_closed_port(root_key):
    port = free_port()
    closed = ssh.SSHEndpoint("127.0.0.1", port, "root", root_key[0], pinned_fingerprint="SHA256:x")
    results, facts = checks.check_ssh_target(closed)
    assert facts is None
    assert [(c.name, c.ok, c.code) for c in results] == [("ssh reachable", False, "Unreachable")]
    assert "connection refused" in results[0].detail
    assert str(port) in results[0].hint


def test_it_stops_when_the_server_never_answers(silent_port, root_key):
    silent = ssh.SSHEndpoint("127.0.0.1", silent_port, "root", root_key[0], pinned_fingerprint="x")
    results, facts = checks.check_ssh_target(silent, timeout=0.5)
    assert facts is None
    assert [(c.name, c.ok, c.code) for c in results] == [("ssh reachable", False, "ConnectTimeout")]


def test_it_stops_at_an_unknown_or_changed_host_key(sshd, root_key):
    unpinned = ssh.SSHEndpoint(sshd.host, sshd.port, "root", root_key[0])
    results, facts = checks.check_ssh_target(unpinned)
    assert facts is None
    assert [(c.name, c.ok) for c in results] == [("ssh reachable", True), ("host key", False)]
    assert results[1].code == "HostKeyUnknown"
    assert sshd.host_key_fingerprint in results[1].detail

    wrong = ssh.SSHEndpoint(
        sshd.host, sshd.port, "root", root_key[0], pinned_fingerprint="SHA256:" + "A" * 43
    )
    results, facts = checks.check_ssh_target(wrong)
    assert [(c.name, c.ok, c.code) for c in results][-1] == ("host key", False, "HostKeyMismatch")
    assert sshd.host_key_fingerprint in results[-1].detail
    assert "re-confirm" in results[-1].hint


def test_it_reports_a_rotated_host_key(sshd_of_its_own, root_key, docker_socket):
    server = sshd_of_its_own  # its host key changes: not the shared server's
    pinned = ssh.SSHEndpoint(
        server.host,
        server.port,
        "root",
        root_key[0],
        pinned_fingerprint=server.host_key_fingerprint,
    )
    assert all(check.ok for check in checks.check_ssh_target(pinned)[0])
    new = server.rotate_host_key()
    results, facts = checks.check_ssh_target(pinned)
    assert facts is None
    assert results[-1].name == "host key" and results[-1].code == "HostKeyMismatch"
    assert pinned.pinned_fingerprint in results[-1].detail and new in results[-1].detail


def test_it_stops_at_a_key_the_server_refuses(sshd):
    private_pem, public_line = ssh.generate_ed25519_keypair()
    stranger = ssh.SSHEndpoint(
        sshd.host, sshd.port, "deploy", private_pem, pinned_fingerprint=sshd.host_key_fingerprint
    )
    results, facts = checks.check_ssh_target(stranger)
    assert facts is None
    assert _names(results) == ["ssh reachable", "host key", "authenticated"]
    assert [c.ok for c in results] == [True, True, False]
    assert results[-1].code == "AuthenticationFailed"
    assert "Add this public key to ~/.ssh/authorized_keys of deploy" in results[-1].hint
    assert public_line.split()[1] in results[-1].hint
    assert private_pem.splitlines()[1] not in results[-1].detail + results[-1].hint


def test_it_says_when_the_user_has_no_login_shell(sshd, root_key):
    ensure_system_user(NOLOGIN_USER, docker_access=True)
    subprocess.run(["usermod", "-s", "/usr/sbin/nologin", NOLOGIN_USER], check=True, timeout=30)
    sshd.authorize(NOLOGIN_USER, root_key[1])
    nologin = ssh.SSHEndpoint(
        sshd.host,
        sshd.port,
        NOLOGIN_USER,
        root_key[0],
        pinned_fingerprint=sshd.host_key_fingerprint,
    )
    results, facts = checks.check_ssh_target(nologin)
    assert facts is None
    assert [(c.name, c.ok) for c in results][-1] == ("docker engine", False)
    assert "ran no command" in results[-1].detail
    assert f"sudo usermod -s /bin/bash {NOLOGIN_USER}" in results[-1].hint


def test_it_reports_an_unusable_key_before_connecting(silent_port):
    # Nothing is asked of the server: a port that never answers shows it.
    broken = ssh.SSHEndpoint("127.0.0.1", silent_port, "root", "not a key", pinned_fingerprint="x")
    results, facts = checks.check_ssh_target(broken)
    assert facts is None
    assert [(c.name, c.ok, c.code) for c in results] == [("authenticated", False, "KeyFormatError")]


def test_it_warns_on_low_disk_and_memory_without_failing_the_target():
    low_disk = checks._disk_check(2 * GiB, 20 * GiB, "/var/lib/docker", "web-1")
    assert (low_disk.ok, low_disk.warning) == (False, True)
    assert "2.0 GiB free on /var/lib/docker" in low_disk.detail
    assert "docker system prune" in low_disk.hint
    assert checks._disk_check(6 * GiB, None, "/", "web-1").ok
    low_memory = checks._memory_check(1 * GiB, 100 * MiB, "web-1")
    assert (low_memory.ok, low_memory.warning) == (False, True)
    assert checks._memory_check(1 * GiB, 600 * MiB, "web-1").ok


# ---------------------------------------------------------------------- local socket


def test_it_checks_the_local_socket(docker_socket):
    results, facts = checks.check_local_socket(docker_socket)
    assert _names(results) == ["docker engine", "docker permission", "disk", "memory"]
    assert all(check.ok for check in results), results
    assert facts.docker_version == _docker_server_version(docker_socket)
    assert facts.cpus >= 1 and facts.memory_bytes > 100 * MiB and facts.disk_free_bytes > 0


def test_it_reports_a_missing_local_socket(tmp_path):
    results, facts = checks.check_local_socket(str(tmp_path / "docker.sock"))
    assert facts is None
    assert [(c.name, c.ok, c.code) for c in results] == [
        ("docker engine", False, "DockerUnavailable")
    ]
    assert "no Docker socket" in results[0].detail
    (tmp_path / "plain-file").write_text("")
    results, _ = checks.check_local_socket(str(tmp_path / "plain-file"))
    assert "not a unix socket" in results[0].detail


def test_it_reports_a_local_socket_this_user_may_not_use(docker_socket, sshd):
    """Run the check in a child process that became the user without Docker access (made
    with the session sshd)."""
    require_root("becoming another user")
    account = pwd.getpwnam(NODOCKER_USER)
    assert stat.S_ISSOCK(os.stat(docker_socket).st_mode)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: no pytest machinery from here, only os._exit
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(account.pw_gid)
            os.setuid(account.pw_uid)
            results, facts = checks.check_local_socket(docker_socket)
            payload = json.dumps([[c.to_dict() for c in results], facts is None])
            os.write(write_end, payload.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    deadline = time.monotonic() + 20
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the check as another user did not finish")
        time.sleep(0.02)
    with os.fdopen(read_end) as pipe:
        results, no_facts = json.loads(pipe.read())
    assert no_facts
    assert [(c["name"], c["ok"]) for c in results] == [
        ("docker engine", True),
        ("docker permission", False),
    ]
    assert results[1]["code"] == "PermissionDeniedDocker"
    assert f"sudo usermod -aG docker {NODOCKER_USER}" in results[1]["hint"]


# --------------------------------------------------------------------- prepare server


def test_it_has_a_valid_strict_prepare_script(tmp_path):
    script = tmp_path / "prepare.sh"
    script.write_text(bootstrap.PREPARE_SCRIPT)
    subprocess.run(["bash", "-n", str(script)], check=True, timeout=10)
    assert "set -euo pipefail" in bootstrap.PREPARE_SCRIPT
    assert "docker-compose-plugin" in bootstrap.PREPARE_SCRIPT


def _compose_plugin_dir(tmp_path):
    """A DOCKER_CONFIG whose cli-plugins holds a docker compose plugin."""
    config = tmp_path / "docker-config"
    write_compose_plugin(config / "cli-plugins")
    return str(config)


def _prepare_leftovers():
    return set(glob.glob("/tmp/windflow-prepare-*.sh"))  # noqa: S108 - the remote is here


def test_it_prepares_a_server_that_already_has_docker_without_changing_it(session, tmp_path):
    env = {"DOCKER_CONFIG": _compose_plugin_dir(tmp_path)}
    before = _prepare_leftovers()
    lines: list[str] = []
    code = bootstrap.run_prepare(session, lines.append, env=env)
    assert code == 0, lines
    text = "\n".join(lines)
    assert "Docker is already installed" in text
    assert "Compose plugin is already installed: Docker Compose version v2.29.1" in text
    assert "Nothing to do" in text
    assert "apt-get" not in text and "Updating the package lists" not in text
    assert _prepare_leftovers() == before  # the uploaded script was removed
    # Again: same answer (idempotent).
    again: list[str] = []
    assert bootstrap.run_prepare(session, again.append, env=env) == 0
    assert again == lines


def test_it_refuses_to_prepare_other_systems(session, tmp_path):
    os_release = tmp_path / "os-release"
    os_release.write_text('NAME="Fedora Linux"\nID=fedora\nPRETTY_NAME="Fedora Linux 40"\n')
    lines: list[str] = []
    code = bootstrap.run_prepare(
        session, lines.append, env={"WINDFLOW_OS_RELEASE": str(os_release)}
    )
    assert code == bootstrap.EXIT_UNSUPPORTED_OS
    assert lines == [
        "ERROR: unsupported operating system: Fedora Linux 40. WindFlow can prepare Debian "
        "and Ubuntu servers only. Install Docker Engine and the compose plugin yourself "
        "(https://docs.docker.com/engine/install/), then test the connection again."
    ]
    lines.clear()
    missing = str(tmp_path / "no-such-file")
    code = bootstrap.run_prepare(session, lines.append, env={"WINDFLOW_OS_RELEASE": missing})
    assert code == bootstrap.EXIT_UNSUPPORTED_OS
    assert f"cannot read {missing}" in lines[0]
