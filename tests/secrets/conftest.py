import shutil
import tempfile
from pathlib import Path

import pytest

from apps.secrets.backends import VaultBackend


@pytest.fixture(scope="session")
def vault_server():
    """A real OpenBao (Vault API) dev server for this test session."""
    from devtools.openbao import start_vault_dev

    root = Path(tempfile.mkdtemp(prefix="windflow-vault-"))
    server = start_vault_dev(root)
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def vault(vault_server, settings):
    """WindFlow configured to keep new secrets in Vault (token auth)."""
    if vault_server.is_sealed():
        vault_server.unseal()
    settings.VAULT_ADDR = vault_server.url
    settings.VAULT_TOKEN = vault_server.root_token
    settings.VAULT_ROLE_ID = None
    settings.VAULT_SECRET_ID = None
    settings.WINDFLOW_SECRETS_BACKEND = "vault"
    VaultBackend.forget_client()
    yield vault_server
    if vault_server.is_sealed():
        vault_server.unseal()
    VaultBackend.forget_client()
