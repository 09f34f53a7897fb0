"""Target tests: a compose plugin for root's docker CLI. The sshd and the TLS proxy in front
of the real Docker engine are shared fixtures (tests/conftest.py)."""

from pathlib import Path

import pytest

from tests.base import write_compose_plugin


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
