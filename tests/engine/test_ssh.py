"""windflow.engine.ssh and dockerhost against a real OpenSSH server on 127.0.0.1 (the session
sshd of tests/conftest.py) in front of the real Docker engine. No mocks, no database.

Key handling and the failures that need no server run as any user; the tests that log in
need the sshd, which needs root (they skip, saying so, otherwise)."""

import concurrent.futures
import json
import os
import subprocess
import sys
import threading
import time
import uuid

import docker
import paramiko
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from devtools import free_port, start_sshd
from tests.base import NODOCKER_USER
from windflow.engine import dockerhost, ssh
from windflow.engine.errors import (
    AuthenticationFailed,
    ChannelLimit,
    CommandFailed,
    CommandTimeout,
    ConnectTimeout,
    EngineError,
    HostKeyMismatch,
    HostKeyUnknown,
    KeyFormatError,
    PermissionDeniedDocker,
    Unreachable,
)


def _openssh_private(key, encryption=None) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        encryption or serialization.NoEncryption(),
    ).decode()


def _secret_body(private_pem: str) -> list[str]:
    """The base64 lines of a private key: none of them may appear in a message."""
    return [line for line in private_pem.splitlines() if line and not line.startswith("-----")]


def _assert_no_key_material(text: str, private_pem: str) -> None:
    for line in _secret_body(private_pem):
        assert line not in text


# ----------------------------------------------------------------------------- keys


def test_it_generates_an_ed25519_keypair_that_loads_back():
    private_pem, public_line = ssh.generate_ed25519_keypair()
    assert private_pem.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert public_line.startswith("ssh-ed25519 AAAA")
    assert ssh.public_line_of(private_pem) == public_line
    key = ssh.load_private_key(private_pem)
    assert isinstance(key, paramiko.Ed25519Key)
    assert ssh.fingerprint(key) == ssh.fingerprint(public_line)
    assert ssh.generate_ed25519_keypair()[0] != private_pem


def test_it_loads_rsa_and_ecdsa_keys_in_openssh_and_pem_formats():
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    traditional = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    assert traditional.startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert isinstance(ssh.load_private_key(traditional), paramiko.RSAKey)
    assert isinstance(ssh.load_private_key(_openssh_private(rsa_key)), paramiko.RSAKey)

    ec_key = ec.generate_private_key(ec.SECP256R1())
    pkcs8 = ec_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    assert isinstance(ssh.load_private_key(pkcs8), paramiko.ECDSAKey)
    loaded = ssh.load_private_key(_openssh_private(ec_key))
    assert isinstance(loaded, paramiko.ECDSAKey)
    assert ssh.public_line_of(pkcs8).split()[:2] == [loaded.get_name(), loaded.get_base64()]


def test_it_accepts_a_key_mangled_by_copy_and_paste():
    private_pem, public_line = ssh.generate_ed25519_keypair()
    crlf = "  \r\n" + private_pem.replace("\n", "\r\n") + "\r\n\r\n"
    one_line = " ".join(private_pem.split("\n"))
    escaped = private_pem.replace("\n", "\\n")
    for pasted in (crlf, one_line, escaped):
        assert ssh.public_line_of(pasted) == public_line


def test_it_refuses_malformed_keys_with_clear_messages():
    private_pem, public_line = ssh.generate_ed25519_keypair()
    lines = private_pem.splitlines()
    corrupt = "\n".join([lines[0], lines[1][:10] + "!!!!" + lines[1][14:], *lines[2:]])
    cases = {
        "": "No private key",
        "hello world": "malformed",
        public_line: "public key",
        "\n".join(lines[:-1]): "END",  # the END line was lost
        corrupt: "malformed",
        "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n": "malformed",
        "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\n": "PuTTY",
    }
    for pasted, expected in cases.items():
        with pytest.raises(KeyFormatError) as caught:
            ssh.load_private_key(pasted)
        assert expected in str(caught.value), pasted
        assert caught.value.hint
        _assert_no_key_material(str(caught.value) + caught.value.hint, private_pem)


def test_it_asks_for_the_passphrase_and_refuses_a_wrong_one():
    key = ed25519.Ed25519PrivateKey.generate()
    fast_bcrypt = (
        serialization.PrivateFormat.OpenSSH.encryption_builder().kdf_rounds(2).build(b"s3cret")
    )
    openssh = _openssh_private(key, fast_bcrypt)
    pkcs8 = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret"),
    ).decode()
    for protected in (openssh, pkcs8):
        with pytest.raises(KeyFormatError) as missing:
            ssh.load_private_key(protected)
        assert "protected by a passphrase" in str(missing.value)
        with pytest.raises(KeyFormatError) as wrong:
            ssh.load_private_key(protected, "not-it")
        assert "passphrase is wrong" in str(wrong.value)
        assert str(missing.value) != str(wrong.value)
        for error in (missing.value, wrong.value):
            assert "s3cret" not in str(error) + error.hint
            _assert_no_key_material(str(error), protected)
        assert isinstance(ssh.load_private_key(protected, "s3cret"), paramiko.Ed25519Key)
        assert (
            ssh.public_line_of(protected, "s3cret").split()[:2]
            == ssh.public_line_of(_openssh_private(key)).split()[:2]
        )
    # A passphrase given with a key that has none is ignored.
    assert isinstance(ssh.load_private_key(_openssh_private(key), "extra"), paramiko.Ed25519Key)


def test_it_fingerprints_like_openssh(sshd):
    expected = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", f"{sshd.host_key_file}.pub"],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout.split()[1]
    assert ssh.fingerprint(sshd.host_public_key) == expected == sshd.host_key_fingerprint
    blob = paramiko.PublicBlob.from_string(sshd.host_public_key).key_blob
    assert ssh.fingerprint(blob) == expected
    assert ssh.fingerprint(sshd.host_public_key.split()[1]) == expected


def test_it_scans_the_host_key_without_logging_in(sshd):
    host_key = ssh.scan_host_key(sshd.host, sshd.port)
    assert host_key.fingerprint == sshd.host_key_fingerprint
    assert host_key.key_type == "ssh-ed25519"
    assert host_key.public_line == sshd.host_public_key


# -------------------------------------------------------------------------- connect


def test_it_connects_and_runs_commands(session, endpoint):
    assert session.alive
    assert session.host_key.fingerprint == endpoint.pinned_fingerprint
    result = session.run("echo out; echo err >&2; exit 3")
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert not result.ok
    assert result.duration > 0
    assert session.run("id -un").stdout.strip() == "root"
    big = session.run("head -c 3000000 /dev/zero | tr '\\0' x; echo; seq 1 20000 >&2")
    assert len(big.stdout) == 3000001
    assert big.stderr.splitlines()[-1] == "20000"


def test_it_streams_merged_output_line_by_line_as_it_comes(session):
    seen: list[tuple[float, str]] = []
    started = time.monotonic()
    code = session.stream(
        "echo one; echo two >&2; sleep 0.4; echo three; printf 'no newline'; exit 4",
        lambda line: seen.append((time.monotonic() - started, line)),
    )
    assert code == 4
    assert [line for _, line in seen] == ["one", "two", "three", "no newline"]
    assert seen[2][0] - seen[0][0] >= 0.3  # the first lines came before the sleep ended
    # (a lower bound: a busy machine only makes the gap longer)


def test_it_uploads_files_atomically_with_their_mode(session, tmp_path):
    target = tmp_path / "uploaded.sh"
    session.put("#!/bin/sh\necho héllo\n", str(target), mode=0o750)
    assert target.read_text() == "#!/bin/sh\necho héllo\n"
    assert oct(target.stat().st_mode & 0o777) == "0o750"
    session.put(b"\x00\x01binary", str(target))
    assert target.read_bytes() == b"\x00\x01binary"
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in tmp_path.iterdir()] == ["uploaded.sh"]  # no temporary left
    with pytest.raises(CommandFailed, match="cannot write"):
        session.put(b"x", str(tmp_path / "missing-dir" / "file"))


def test_it_stops_a_command_at_its_timeout_and_stays_usable(session):
    with pytest.raises(CommandTimeout, match=r"did not finish within 0\.5 s"):
        session.run("sleep 30", timeout=0.5)
    lines: list[str] = []
    with pytest.raises(CommandTimeout):
        session.stream("echo started; sleep 30; echo finished", lines.append, timeout=0.5)
    assert lines == ["started"]  # stopped during the sleep, not after it
    assert session.run("echo still here").stdout == "still here\n"


def test_it_hands_fabric_the_same_pinned_connection(session, tmp_path):
    connection = session.fabric()
    assert connection.is_connected
    assert connection.run("echo via fabric", hide=True).stdout == "via fabric\n"
    source = tmp_path / "local.txt"
    source.write_text("sent by fabric\n")
    connection.put(str(source), str(tmp_path / "remote.txt"))
    assert (tmp_path / "remote.txt").read_text() == "sent by fabric\n"
    assert session.transport is connection.transport


def test_it_refuses_a_key_the_server_does_not_know(sshd, endpoint):
    private_pem, public_line = ssh.generate_ed25519_keypair()
    stranger = ssh.SSHEndpoint(
        sshd.host, sshd.port, "root", private_pem, pinned_fingerprint=sshd.host_key_fingerprint
    )
    with pytest.raises(AuthenticationFailed) as caught:
        ssh.connect(stranger)
    assert "refused the key" in str(caught.value)
    assert "~/.ssh/authorized_keys of root" in caught.value.hint
    assert public_line.split()[1] in caught.value.hint  # the public key to add
    _assert_no_key_material(str(caught.value) + caught.value.hint, private_pem)


def test_it_refuses_a_host_key_that_is_not_pinned(sshd, endpoint):
    unpinned = ssh.SSHEndpoint(sshd.host, sshd.port, "root", endpoint.private_key)
    with pytest.raises(HostKeyUnknown) as caught:
        ssh.connect(unpinned)
    assert caught.value.fingerprint == sshd.host_key_fingerprint
    assert caught.value.public_line == sshd.host_public_key
    assert sshd.host_key_fingerprint in str(caught.value)


def test_it_refuses_a_changed_host_key(sshd_of_its_own, root_key):
    server = sshd_of_its_own  # its host key changes: not the shared server's
    old = server.host_key_fingerprint
    pinned = ssh.SSHEndpoint(server.host, server.port, "root", root_key[0], pinned_fingerprint=old)
    ssh.connect(pinned).close()
    new = server.rotate_host_key()
    assert new != old
    with pytest.raises(HostKeyMismatch) as caught:
        ssh.connect(pinned)
    message = str(caught.value)
    assert old in message and new in message
    assert (caught.value.expected, caught.value.actual) == (old, new)
    assert "re-confirm" in caught.value.hint
    with pytest.raises(HostKeyMismatch):
        dockerhost.docker_client_ssh(pinned)
    # Once an admin confirms the new key, it connects again.
    repinned = ssh.SSHEndpoint(
        server.host, server.port, "root", root_key[0], pinned_fingerprint=new
    )
    ssh.connect(repinned).close()


def test_it_fails_fast_on_a_closed_port(root_key):
    port = free_port()
    closed = ssh.SSHEndpoint("127.0.0.1", port, "root", root_key[0], pinned_fingerprint="SHA256:x")
    with pytest.raises(Unreachable) as caught:
        ssh.connect(closed)
    assert type(caught.value) is Unreachable  # not a ConnectTimeout: it did not wait
    assert "connection refused" in str(caught.value)
    assert str(port) in caught.value.hint
    with pytest.raises(Unreachable):
        ssh.scan_host_key("127.0.0.1", port)


def test_it_gives_up_within_5_s_on_a_server_that_never_answers(silent_port, root_key):
    silent = ssh.SSHEndpoint(
        "127.0.0.1", silent_port, "root", root_key[0], pinned_fingerprint="SHA256:x"
    )
    started = time.monotonic()
    with pytest.raises(ConnectTimeout) as caught:
        ssh.connect(silent, timeout=60)  # asking for more than 5 s gets 5 s
    elapsed = time.monotonic() - started
    # It waited the 5 s cap, not the 60 s asked (a scaled bound: a busy machine adds seconds,
    # never the 55 that would mean the cap was ignored).
    assert 4.5 <= elapsed < 30, elapsed
    assert "no SSH handshake within 5 s" in str(caught.value)
    assert caught.value.hint
    with pytest.raises(ConnectTimeout) as scanned:
        ssh.scan_host_key("127.0.0.1", silent_port, timeout=0.5)
    assert "0.5 s" in str(scanned.value) or "within" in str(scanned.value)


def test_it_keeps_the_private_key_out_of_reprs_and_errors(endpoint, root_key, sshd):
    assert root_key[0] not in repr(endpoint)
    assert "private_key" not in repr(endpoint)
    with_passphrase = ssh.SSHEndpoint("h", 22, "u", "k", passphrase="hunter2")
    assert "hunter2" not in repr(with_passphrase)
    wrong_pin = ssh.SSHEndpoint(
        sshd.host, sshd.port, "root", root_key[0], pinned_fingerprint="SHA256:AAAA"
    )
    for failing in (wrong_pin, ssh.SSHEndpoint("127.0.0.1", free_port(), "root", root_key[0])):
        with pytest.raises(EngineError) as caught:
            ssh.connect(failing)
        _assert_no_key_material(str(caught.value) + caught.value.hint, root_key[0])


def test_it_reads_no_ssh_config_and_no_known_hosts(tmp_path, monkeypatch, endpoint):
    """A hostile ~/.ssh (a config sending 127.0.0.1 elsewhere, a known_hosts with another
    key) changes nothing: only the pin counts."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text("Host 127.0.0.1\n  Port 1\n  User nobody\n")
    other = ssh.generate_ed25519_keypair()[1]
    (home / ".ssh" / "known_hosts").write_text(f"[127.0.0.1]:{endpoint.port} {other}\n")
    monkeypatch.setenv("HOME", str(home))
    with ssh.connect(endpoint) as live:
        assert live.run("true").ok
    client = dockerhost.docker_client_ssh(endpoint)
    try:
        assert client.ping()
    finally:
        client.close()


# ------------------------------------------------------------------------------ pool


def test_it_reuses_live_sessions_from_the_pool(endpoint):
    pool = ssh.SessionPool(max_idle=30)
    try:
        with pool.session(endpoint) as first:
            assert first.run("true").ok
        with pool.session(endpoint) as second:
            assert second.run("true").ok
        assert second is first
        assert (pool.connects, pool.reuses) == (1, 1)

        # Two holders at once get two sessions; both go back to the pool.
        barrier = threading.Barrier(2, timeout=10)
        used: list[ssh.SSHSession] = []

        def worker():
            with pool.session(endpoint) as live:
                used.append(live)
                barrier.wait()
                live.run("true")

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert len({id(s) for s in used}) == 2
        assert pool.idle_count(endpoint) == 2

        # A session that died is not handed out again.
        for live in used:
            live.close()
        with pool.session(endpoint) as third:
            assert third.alive and third not in used
        assert pool.discard(endpoint) == 1
        assert pool.idle_count() == 0
    finally:
        pool.close_all()


def test_it_closes_sessions_idle_for_too_long(endpoint):
    pool = ssh.SessionPool(max_idle=0.2)
    try:
        with pool.session(endpoint) as first:
            pass
        time.sleep(0.3)
        with pool.session(endpoint) as second:
            assert second is not first
        assert not first.alive
        assert pool.connects == 2
    finally:
        pool.close_all()
    assert not second.alive


def test_it_has_a_module_pool(endpoint):
    with ssh.pool.session(endpoint) as live:
        assert live.run("true").ok
    assert ssh.pool.idle_count(endpoint) >= 1
    ssh.pool.discard(endpoint)


# ------------------------------------------------------------------- docker over SSH


def test_it_talks_to_docker_over_the_pinned_ssh_session(endpoint, docker_socket):
    client = dockerhost.docker_client_ssh(endpoint)
    try:
        assert client.ping() is True
        version = client.version()
        assert version["ApiVersion"] == client.api._version
        # the engine behind the SSH session is the run's own (sshd hands it out)
        local = dockerhost.docker_client_local(docker_socket)
        try:
            assert client.info()["DockerRootDir"] == local.info()["DockerRootDir"]
        finally:
            local.close()
        assert isinstance(client.containers.list(all=True), list)
        assert client.info()["ServerVersion"] == version["Version"]
    finally:
        client.close()


def test_it_reuses_a_session_for_docker_and_commands(session):
    client = dockerhost.docker_client_over_session(session)
    try:
        assert client.ping()
        assert session.run("echo ok").stdout == "ok\n"
    finally:
        client.close()
    assert session.alive  # not owned by the client: still open


def test_it_reconnects_docker_when_its_ssh_connection_drops(endpoint):
    client = dockerhost.docker_client_ssh(endpoint)
    try:
        assert client.ping()
        holder = client.api._custom_adapter.holder
        first = holder.session
        first.transport.close()
        assert client.ping()
        assert holder.session is not first and holder.session.alive
    finally:
        client.close()
    assert not holder.session.alive  # the client owned it


def test_it_times_out_docker_calls_over_ssh(session):
    """A call the engine never answers must time out, not hang. /events filtered on a label no
    container has stays silent however busy the engine is (unfiltered, the events of other
    work kept the read alive for minutes)."""
    client = dockerhost.docker_client_over_session(session, timeout=1)
    silent = {"filters": json.dumps({"label": [f"windflow.test.never={uuid.uuid4()}"]})}
    try:
        # The headers came; the body never does: requests reports the read timeout while
        # streaming it as a ConnectionError.
        with pytest.raises(requests.exceptions.ConnectionError, match="Read timed out"):
            client.api._get(client.api._url("/events"), params=silent)
        assert client.ping()
    finally:
        client.close()


def test_it_stays_within_sshds_default_sessions_per_connection(endpoint):
    """The stock sshd allows 10 sessions on one connection. The Docker SDK keeps a pool of
    connections per URL (each container's, each image's): over SSH each idle one held a
    channel, and the 11th was refused. Many URLs from many threads now share a bounded pool."""
    client = dockerhost.docker_client_ssh(endpoint)
    session = client.api._custom_adapter.holder.session
    peak = [0]

    def call(number: int) -> None:
        with pytest.raises(docker.errors.NotFound):
            client.api.inspect_container(f"wf-no-such-container-{number}")
        peak[0] = max(peak[0], session.open_channels)
        assert session.run("true").ok  # commands find a channel beside the API's

    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=12) as threads:
            for future in [threads.submit(call, number) for number in range(40)]:
                future.result()
        assert client.ping()
    finally:
        client.close()
    assert 0 < peak[0] <= ssh.MAX_CHANNELS


def test_it_waits_for_a_free_channel_on_a_server_with_a_lower_session_limit(tmp_path, root_key):
    """A server with MaxSessions below WindFlow's 8: the channels it refuses are asked for
    again as others close, so commands wait instead of failing."""
    with start_sshd(tmp_path / "sshd", options={"MaxSessions": "3"}) as server:
        server.authorize("root", root_key[1])
        endpoint = ssh.SSHEndpoint(
            server.host,
            server.port,
            "root",
            root_key[0],
            pinned_fingerprint=server.host_key_fingerprint,
        )
        with ssh.connect(endpoint) as session:
            assert session.probe_channels() == 3
            with concurrent.futures.ThreadPoolExecutor(max_workers=6) as threads:
                results = list(threads.map(lambda n: session.run(f"sleep 0.3; echo {n}"), range(6)))
            assert [r.stdout.strip() for r in results] == [str(n) for n in range(6)]


def test_it_says_when_the_server_allows_no_session(tmp_path, root_key):
    with start_sshd(tmp_path / "sshd", options={"MaxSessions": "0"}) as server:
        server.authorize("root", root_key[1])
        endpoint = ssh.SSHEndpoint(
            server.host,
            server.port,
            "root",
            root_key[0],
            pinned_fingerprint=server.host_key_fingerprint,
        )
        with ssh.connect(endpoint) as session, pytest.raises(ChannelLimit) as caught:
            session.run("true")
    assert caught.value.error_code == "ssh_session_limit"
    assert "MaxSessions" in caught.value.hint


def test_it_says_when_the_ssh_user_may_not_use_docker(nodocker_endpoint):
    with pytest.raises(PermissionDeniedDocker) as caught:
        dockerhost.docker_client_ssh(nodocker_endpoint)
    assert NODOCKER_USER in str(caught.value)
    assert f"sudo usermod -aG docker {NODOCKER_USER}" in caught.value.hint


def test_it_gives_a_local_docker_client(docker_socket):
    client = dockerhost.docker_client_local(docker_socket, timeout=5)
    try:
        assert client.ping()
    finally:
        client.close()


def test_it_keeps_the_engine_free_of_django():
    code = (
        "import sys\n"
        "import windflow.engine.ssh, windflow.engine.dockerhost, windflow.engine.checks\n"
        "import windflow.engine.bootstrap, windflow.engine.errors\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'apps'))\n"
        "assert not bad, bad\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, env=env)
