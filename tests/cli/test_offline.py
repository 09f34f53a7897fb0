"""What the command does without a server: help, offline validate and lint with file and
line, the refusals that never reach the network."""

import subprocess
import sys

from tests.cli.conftest import ROOT

GOOD = """services:
  web:
    image: busybox:1
    healthcheck: {test: ["CMD", "true"]}
"""
BAD = """services:
  web:
    image: busybox:1
    bogus: 1
"""


def project(tmp_path, text, name="compose.yaml"):
    folder = tmp_path / "project"
    folder.mkdir(parents=True)
    (folder / name).write_text(text)
    return folder


def test_it_answers_help_with_every_command(windflow):
    run = windflow("--help")
    assert run.code == 0, run.stderr
    for command in ("login", "org", "deploy", "stack", "logs", "status", "rollback"):
        assert command in run.stdout
    assert "--output" in run.stdout


def test_it_imports_no_django_and_neither_rich_nor_the_engine_for_help():
    code = (
        "import sys; sys.argv = ['windflow', '--help']\n"
        "from windflow.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "import windflow.cli.api, windflow.cli.config, windflow.cli.follow, "
        "windflow.cli.output, windflow.cli.project\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('django', 'rich', 'apps') or m.startswith('windflow.engine.compose')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_it_validates_a_folder_offline_with_file_and_line(windflow, tmp_path):
    folder = project(tmp_path, BAD)
    run = windflow("stack", "validate", str(folder))
    assert run.code == 4
    assert "compose.yaml:4: error [compose-schema]" in run.stdout
    assert run.stderr.startswith("windflow: The project is refused (2 error(s)): compose.yaml:4:")

    ok = windflow("stack", "validate", str(project(tmp_path / "ok", GOOD)))
    assert ok.code == 0, ok.stdout + ok.stderr


def test_it_lints_offline_and_prints_json(windflow, tmp_path):
    folder = project(tmp_path / "a", "services:\n  web:\n    image: busybox\n")
    run = windflow("--output", "json", "stack", "lint", str(folder))
    assert run.code == 0, run.stderr
    result = run.json()
    assert result["ok"] is True
    found = {(p["rule"], p["file"], p["line"]) for p in result["problems"]}
    assert ("image-not-pinned", "compose.yaml", 3) in found
    assert ("no-healthcheck", "compose.yaml", 3) in found


def test_it_refuses_a_folder_without_compose_file(windflow, tmp_path):
    (tmp_path / "empty").mkdir()
    run = windflow("stack", "validate", str(tmp_path / "empty"))
    assert run.code == 4
    assert "project-no-compose-file" in run.stderr


def test_it_refuses_an_invalid_project_before_uploading_it(windflow, tmp_path):
    """No server is configured: the refusal comes from the local check, with file and line."""
    folder = project(tmp_path, BAD)
    run = windflow("deploy", str(folder), "--stack", "shop", "--env", "staging")
    assert run.code == 4
    last = run.stderr.splitlines()[-1]
    assert last.startswith("windflow: The project is refused: compose.yaml:4: error")


def test_it_says_when_it_is_not_logged_in(windflow):
    run = windflow("stack", "list")
    assert run.code == 4
    assert "windflow login" in run.stderr


def test_it_says_when_the_server_cannot_be_reached(windflow):
    from devtools import free_port

    env = {"WINDFLOW_URL": f"http://127.0.0.1:{free_port()}", "WINDFLOW_TOKEN": "wf_x"}
    run = windflow("stack", "list", env=env)
    assert run.code == 1
    assert run.stderr.startswith("windflow: Cannot reach http://127.0.0.1:")


def test_it_packs_the_folder_without_what_the_ignore_files_name(tmp_path):
    import io
    import tarfile

    from windflow.cli.project import pack

    folder = tmp_path / "p"
    (folder / "node_modules" / "x").mkdir(parents=True)
    (folder / "node_modules" / "x" / "index.js").write_text("x")
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref")
    (folder / "app").mkdir()
    (folder / "app" / "main.py").write_text("print()")
    (folder / "app" / "debug.log").write_text("log")
    (folder / "app" / "keep.log").write_text("log")
    (folder / "secret.env").write_text("A=1")
    (folder / "compose.yaml").write_text(GOOD + "    env_file: dev.env\n")
    (folder / ".dockerignore").write_text("secret.env\n")
    (folder / "dev.env").write_text("B=2")  # ignored, but the compose file uses it
    (folder / ".gitignore").write_text("node_modules/\n*.log\n!keep.log\ndev.env\n")
    with tarfile.open(fileobj=io.BytesIO(pack(folder))) as archive:
        names = sorted(member.name for member in archive.getmembers() if member.isfile())
    assert names == [
        ".dockerignore",
        ".gitignore",
        "app/keep.log",
        "app/main.py",
        "compose.yaml",
        "dev.env",
    ]


def test_it_reports_findings_in_the_file_that_holds_them(windflow, tmp_path):
    folder = project(
        tmp_path, "include:\n  - sub/db.yaml\nservices:\n  web:\n    image: busybox:1\n"
    )
    (folder / "sub").mkdir()
    (folder / "sub" / "db.yaml").write_text(
        "services:\n  db:\n    image: busybox\n    volumes: ['./missing.conf:/etc/x']\n"
    )
    run = windflow("-o", "json", "stack", "lint", str(folder))
    assert run.code == 4
    found = {(p["rule"], p["file"], p["line"]) for p in run.json()["problems"]}
    assert ("project-file-missing", "sub/db.yaml", 4) in found

    (folder / "sub" / "missing.conf").write_text("x")
    run = windflow("-o", "json", "stack", "lint", str(folder))
    assert run.code == 0, run.stderr
    found = {(p["rule"], p["file"], p["line"]) for p in run.json()["problems"]}
    assert ("image-not-pinned", "sub/db.yaml", 3) in found
