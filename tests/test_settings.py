import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_manage(*args, **env):
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "windflow.settings.prod", **env}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True,
        text=True, timeout=120, check=False,
    )


def test_it_passes_the_deployment_checklist_with_prod_settings():
    result = run_manage(
        "check", "--deploy", "--fail-level", "WARNING",
        SECRET_KEY=secrets.token_urlsafe(64),
        WINDFLOW_MASTER_KEY=base64.b64encode(os.urandom(32)).decode(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_it_refuses_prod_without_a_strong_secret_key():
    result = run_manage("check", SECRET_KEY="short")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_it_refuses_prod_without_a_master_key():
    result = run_manage("check", SECRET_KEY=secrets.token_urlsafe(64), WINDFLOW_MASTER_KEY="")
    assert result.returncode != 0
    assert "WINDFLOW_MASTER_KEY must be set" in result.stderr
