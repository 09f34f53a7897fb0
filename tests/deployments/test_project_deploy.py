"""Deploying a project (issue 13) through the runner: an uploaded folder with a Dockerfile,
a relative bind mount, a compose config and a compose secret backed by a WindFlow secret,
on the local test engine and over SSH (the test sshd, SFTP). The revisions' folders are
under the test settings' WINDFLOW_STACK_FILES_ROOT / _SECRETS_ROOT. No mocks."""

import os
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from apps.deployments import journal, runner
from apps.deployments.choices import DeploymentStatus
from apps.deployments.models import Deployment, DeploymentLogLine
from apps.deployments.services import rollback_to
from apps.secrets import services as secrets
from apps.sources import services as sources
from apps.targets import services as targets
from devtools import remove_compose_project
from tests.base import add_ssh_target, client_for
from tests.deploying import deploy, log_text, project_containers
from windflow.engine.sources.archive import pack

SECRET = "s3cr3t-value-of-the-db"

COMPOSE = """\
services:
  web:
    build:
      context: .
      args: {{REGISTRY: "{registry}"}}
    ports: ["127.0.0.1::8080"]
    volumes: ["./site/index.html:/www/index.html:ro"]
    configs:
      - source: app
      - source: app
        target: /www/config.txt
    secrets: [db_password]
configs:
  app:
    file: ./config/app.txt
secrets:
  db_password:
    environment: DB_PASSWORD
"""

DOCKERFILE = """\
ARG REGISTRY
FROM ${REGISTRY}/windflow-test/web:1
RUN echo built > /www/built.txt
"""


@pytest.fixture
def registry(test_images):
    return test_images["web:1"].split("/", 1)[0]


@pytest.fixture
def db_secret(membership, staging):
    return secrets.create_secret(membership, name="DB_PASSWORD", value=SECRET, environment=staging)


@pytest.fixture
def uploads(membership, staging, local_target, registry, tmp_path):
    """upload(page, *, target=local_target, dockerfile=DOCKERFILE) -> revision: the project
    folder packed and uploaded as a new revision of stack `site`; the stack's containers
    are removed after the test."""
    made = []

    def upload(page, *, target=local_target, dockerfile=DOCKERFILE, name="site"):
        folder = tmp_path / f"project-{len(made)}"
        files = {
            "compose.yaml": COMPOSE.format(registry=registry),
            "Dockerfile": dockerfile,
            "site/index.html": page,
            "config/app.txt": "feature=on\n",
        }
        for path, text in files.items():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_text(text)
        stack, revision, _ = sources.upload_archive(
            membership,
            stack_name=name,
            data=pack(folder),
            filename="site.tar.gz",
            environment=staging,
            target=target,
        )
        made.append(stack)
        return revision

    yield upload
    for stack in {stack.project for stack in made}:
        remove_compose_project(stack)


def files_dir(stack, number) -> Path:
    return Path(settings.WINDFLOW_STACK_FILES_ROOT) / str(stack.uid) / str(number)


def secrets_dir(stack, number) -> Path:
    return Path(settings.WINDFLOW_STACK_SECRETS_ROOT) / str(stack.uid) / str(number)


def served(stack, path="/") -> str:
    (container,) = project_containers(stack.project)
    container.reload()
    port = container.ports["8080/tcp"][0]["HostPort"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return response.read().decode()


def bind_sources(stack) -> list[str]:
    (container,) = project_containers(stack.project)
    return sorted(mount["Source"] for mount in container.attrs["Mounts"])


def assert_secret_kept_out(deployment, container):
    assert SECRET not in log_text(deployment)
    assert SECRET not in str(Deployment.objects.get(pk=deployment.pk).diagnosis)
    assert not DeploymentLogLine.objects.filter(message__contains=SECRET).exists()
    assert not any(SECRET in variable for variable in container.attrs["Config"]["Env"])


def test_it_builds_copies_the_files_and_mounts_config_and_secret_on_a_local_server(
    membership, uploads, db_secret
):
    revision = uploads("<h1>one</h1>\n")
    stack = revision.stack
    deployment = deploy(membership, stack, revision)
    assert deployment.status == DeploymentStatus.SUCCEEDED, (
        deployment.reason,
        log_text(deployment),
    )
    # Built on the server, from the project, with the build's lines in the log.
    assert " : FROM ${REGISTRY}/windflow-test/web:1" in log_text(deployment)
    assert " : RUN echo built > /www/built.txt" in log_text(deployment)
    assert served(stack, "/built.txt") == "built\n"
    # The relative bind mount and the config are served from the revision's folder.
    assert served(stack) == "<h1>one</h1>\n"
    assert served(stack, "/config.txt") == "feature=on\n"
    assert (files_dir(stack, 1) / "site" / "index.html").read_text() == "<h1>one</h1>\n"
    # The secret is a file, mode 0400, in the secrets folder, and nowhere else.
    secret_file = secrets_dir(stack, 1) / "db_password"
    assert secret_file.read_text() == SECRET
    assert secret_file.stat().st_mode & 0o777 == 0o400
    (container,) = project_containers(stack.project)
    assert container.exec_run(["cat", "/run/secrets/db_password"]).output.decode() == SECRET
    assert container.exec_run(["cat", "/app"]).output.decode() == "feature=on\n"
    assert_secret_kept_out(deployment, container)


def test_the_deployment_page_names_the_build_phase(owner, acme, membership, uploads, db_secret):
    revision = uploads("<h1>one</h1>\n")
    deployment = deploy(membership, revision.stack, revision)
    journal.set_service(deployment, "web", phase="build", progress=20, message="Step 2/5")
    body = client_for(owner, acme).get(f"/deployments/{deployment.pk}/").content.decode()
    assert '"build": "Building"' in body
    assert 'data-phase="build">Building</span>' in body


def test_a_rollback_points_at_the_older_revisions_folder_and_old_ones_are_pruned(
    membership, uploads, db_secret, settings
):
    settings.WINDFLOW_STACK_FILES_KEEP = 1
    first = uploads("<h1>one</h1>\n")
    stack = first.stack
    assert deploy(membership, stack, first).status == DeploymentStatus.SUCCEEDED
    second = uploads("<h1>two</h1>\n")
    assert deploy(membership, stack, second).status == DeploymentStatus.SUCCEEDED
    assert served(stack) == "<h1>two</h1>\n"
    assert str(files_dir(stack, 2) / "site" / "index.html") in bind_sources(stack)
    # Back to revision 1: its own folder, still there (the previous good one is kept).
    rollback = rollback_to(membership, stack, first)
    runner.run(rollback.pk)
    rollback.refresh_from_db()
    assert rollback.status == DeploymentStatus.SUCCEEDED, rollback.reason
    assert served(stack) == "<h1>one</h1>\n"
    assert str(files_dir(stack, 1) / "site" / "index.html") in bind_sources(stack)
    # A third revision: keep 1, and never the running one nor the previous good one.
    third = uploads("<h1>three</h1>\n")
    assert deploy(membership, stack, third).status == DeploymentStatus.SUCCEEDED
    assert served(stack) == "<h1>three</h1>\n"
    assert files_dir(stack, 3).is_dir() and files_dir(stack, 1).is_dir()
    assert not files_dir(stack, 2).exists() and not secrets_dir(stack, 2).exists()


def test_a_failed_build_leaves_the_running_revision_and_no_folder_for_the_new_one(
    membership, uploads, db_secret
):
    first = uploads("<h1>one</h1>\n")
    stack = first.stack
    assert deploy(membership, stack, first).status == DeploymentStatus.SUCCEEDED
    (before,) = project_containers(stack.project)
    broken = uploads("<h1>two</h1>\n", dockerfile=DOCKERFILE + "RUN echo half way && exit 7\n")
    deployment = deploy(membership, stack, broken)
    assert deployment.status == DeploymentStatus.ROLLED_BACK, deployment.reason
    assert deployment.diagnosis["code"] == "build_failed"
    assert "RUN echo half way" in deployment.diagnosis["summary"]
    assert "half way" in deployment.diagnosis["detail"]
    (after,) = project_containers(stack.project)
    assert after.id == before.id and served(stack) == "<h1>one</h1>\n"
    assert not files_dir(stack, 2).exists() and not secrets_dir(stack, 2).exists()
    assert files_dir(stack, 1).is_dir()
    leftovers = os.listdir(files_dir(stack, 1).parent) + os.listdir(secrets_dir(stack, 1).parent)
    assert sorted(leftovers) == ["1", "1"]  # no temporary folder either


def test_a_pasted_compose_with_a_relative_mount_is_refused_with_a_clear_message(
    membership, make_stack, test_images
):
    stack = make_stack(
        f"services:\n  web:\n    image: {test_images['web:1']}\n    volumes:\n"
        "      - ./nginx.conf:/etc/nginx/nginx.conf\n",
        name="pasted",
    )
    deployment = deploy(membership, stack)
    assert deployment.status == DeploymentStatus.FAILED
    assert deployment.diagnosis["code"] == "project_files_missing"
    assert "nginx.conf is a file of the project" in deployment.reason
    assert not project_containers(stack.project)


def test_it_copies_the_files_over_sftp_to_an_ssh_server(
    membership, uploads, db_secret, sshd, root_key
):
    target = add_ssh_target(membership, sshd, root_key, name="files-ssh")
    revision = uploads("<h1>over ssh</h1>\n", target=target, name="remote")
    stack = revision.stack
    deployment = deploy(membership, stack, revision)
    assert deployment.status == DeploymentStatus.SUCCEEDED, (
        deployment.reason,
        log_text(deployment),
    )
    assert served(stack) == "<h1>over ssh</h1>\n"
    assert served(stack, "/config.txt") == "feature=on\n"
    secret_file = secrets_dir(stack, 1) / "db_password"
    assert secret_file.stat().st_mode & 0o777 == 0o400
    (container,) = project_containers(stack.project)
    assert container.exec_run(["cat", "/run/secrets/db_password"]).output.decode() == SECRET
    assert_secret_kept_out(deployment, container)


def test_a_tcp_tls_server_refuses_a_project_with_files_and_nothing_runs(
    membership, uploads, db_secret, tls_proxy
):
    target = targets.create_target(
        membership,
        name="tls-files",
        kind="tcp_tls",
        host=tls_proxy.host,
        port=tls_proxy.port,
        ca_pem=tls_proxy.ca_pem,
        cert_pem=tls_proxy.client_cert_pem,
        key_pem=tls_proxy.client_key_pem,
    )
    revision = uploads("<h1>tls</h1>\n", target=target, name="overtls")
    deployment = deploy(membership, revision.stack, revision)
    assert deployment.status == DeploymentStatus.FAILED
    assert deployment.diagnosis["code"] == "files_need_ssh"
    assert "deploy it to a server reached over SSH" in deployment.reason
    assert not project_containers(revision.stack.project)
