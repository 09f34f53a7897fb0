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
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_it_passes_the_deployment_checklist_with_prod_settings():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
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


def test_it_keeps_local_docker_engines_off_in_prod_unless_the_operator_says_so():
    keys = {
        "SECRET_KEY": secrets.token_urlsafe(64),
        "WINDFLOW_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
        "WINDFLOW_LOCAL_TARGETS": "",
    }
    show = "from django.conf import settings; print(settings.WINDFLOW_LOCAL_TARGETS)"
    result = run_manage("shell", "-c", show, **keys)
    assert result.stdout.split()[-1:] == ["off"], result.stderr
    result = run_manage("shell", "-c", show, **{**keys, "WINDFLOW_LOCAL_TARGETS": "staff"})
    assert result.stdout.split()[-1:] == ["staff"], result.stderr
    result = run_manage("check", **{**keys, "WINDFLOW_LOCAL_TARGETS": "everyone"})
    assert result.returncode != 0
    assert "WINDFLOW_LOCAL_TARGETS must be off, staff or all" in result.stderr
    result = run_manage("check", **{**keys, "WINDFLOW_LOCAL_SOCKETS": "docker.sock"})
    assert result.returncode != 0 and "absolute paths" in result.stderr
