"""`windflow deploy` of a project folder against a live WindFlow (web process, real worker,
the test Docker engine and registry): packed, uploaded, deployed and followed to the exit
code of its end; the server's refusals exit 4 with its message."""

from django.db import connection

from devtools import free_port, remove_compose_project
from tests.deploying import FAILING_HEALTHCHECK, page, project_containers, web_stack
from tests.live import worker_process


def folder_with(tmp_path, compose: str, name="site"):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "compose.yaml").write_text(compose)
    (folder / "notes.md").write_text("not needed by the compose file\n")
    (folder / "build.log").write_text("left out by .gitignore\n")
    (folder / ".gitignore").write_text("*.log\n")
    return folder


def _revision(org, stack_name: str, number: int):
    from apps.stacks.models import Stack

    connection.set_tenant(org.organization)
    try:
        return Stack.objects.get(name=stack_name).revisions.get(number=number)
    finally:
        connection.set_schema_to_public()


def test_it_deploys_a_folder_and_follows_it_to_its_end(windflow, org, test_images, tmp_path):
    port = free_port()
    folder = folder_with(tmp_path, web_stack(test_images["web:1"], port))
    try:
        with worker_process(threads=2):
            run = windflow(
                "deploy", str(folder), "--stack", "site", "--env", "staging", "--server", "web-1",
                "-m", "first", env=org.env,
            )  # fmt: skip
            assert run.code == 0, run.stdout + run.stderr
            assert "succeeded" in run.stdout
            assert "web" in run.stdout and "100%" in run.stdout
            assert [c.status for c in project_containers("site")] == ["running"]
            assert page(port) == "windflow test web 1\n"
            revision = _revision(org, "site", 1)
            assert revision.source_kind == "archive"
            assert sorted(revision.manifest) == [".gitignore", "compose.yaml", "notes.md"]

            (folder / "compose.yaml").write_text(
                web_stack(test_images["web:2"], port, extra=FAILING_HEALTHCHECK)
            )
            failed = windflow("deploy", str(folder), "--stack", "site", env=org.env)
            assert failed.code == 2, failed.stdout + failed.stderr
            assert "rolled_back" in failed.stderr
            assert page(port) == "windflow test web 1\n"
    finally:
        remove_compose_project("site")


def test_it_exits_4_with_the_servers_message_when_the_upload_is_refused(windflow, org, tmp_path):
    folder = folder_with(tmp_path, "services:\n  web:\n    image: busybox:1\n")
    run = windflow(
        "deploy", str(folder), "--stack", "site", "--env", "nowhere", "--server", "web-1",
        env=org.env,
    )  # fmt: skip
    assert run.code == 4
    assert run.stderr.startswith("windflow: ")
    assert "environment" in run.stderr.lower()
    connection.set_tenant(org.organization)
    try:
        from apps.stacks.models import Stack

        assert not Stack.objects.filter(name="site").exists()
    finally:
        connection.set_schema_to_public()


def test_it_queues_without_following(windflow, org, tmp_path):
    folder = folder_with(tmp_path, "services:\n  web:\n    image: busybox:1\n")
    run = windflow(
        "-o", "json", "deploy", str(folder), "--stack", "site", "--env", "staging",
        "--server", "web-1", "--no-follow", env=org.env,
    )  # fmt: skip
    assert run.code == 0, run.stderr
    deployment = run.json()
    assert (deployment["stack"], deployment["revision"], deployment["status"]) == (
        "site",
        1,
        "queued",
    )
