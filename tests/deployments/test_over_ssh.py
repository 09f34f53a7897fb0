"""Deployments to a server over SSH, on the stock sshd of the test run (OpenSSH's defaults:
10 sessions per connection) in front of the run's Docker engine: they stay within the
server's limits, and a server that refuses them says why, with a code and a fix."""

import contextlib
import os
import signal
import threading
from pathlib import Path

import docker
import pytest
from django.utils import translation

from apps.deployments.choices import DeploymentStatus
from apps.targets import connect
from tests.base import NODOCKER_USER, add_ssh_target
from tests.deploying import NEVER_HEALTHY, deploy, log_text, project_containers, wait_for
from windflow.engine import ssh


@pytest.fixture(autouse=True)
def _english():
    """The texts checked here are the English ones, whatever a test before left active."""
    with translation.override("en"):
        yield


def _compose(images: dict, count: int) -> str:
    services = "".join(
        f"  svc{number}:\n    image: {images['web:1']}\n" for number in range(1, count + 1)
    )
    return f"services:\n{services}"


def test_it_deploys_four_services_over_a_stock_sshd(
    membership, make_stack, sshd, root_key, test_images
):
    target = add_ssh_target(membership, sshd, root_key, name="stock-ssh")
    stack = make_stack(_compose(test_images, 4), name="four", target=target, grace_period=0)
    deployment = deploy(membership, stack)
    assert deployment.status == DeploymentStatus.SUCCEEDED, deployment.reason
    services = {c.labels["com.docker.compose.service"] for c in project_containers(stack.project)}
    assert services == {"svc1", "svc2", "svc3", "svc4"}
    # The same stack again: every container is inspected, kept, and gated once more.
    again = deploy(membership, stack)
    assert again.status == DeploymentStatus.SUCCEEDED, again.reason


def test_it_names_a_changed_host_key_with_its_fix(
    membership, make_stack, sshd_of_its_own, root_key, test_images
):
    target = add_ssh_target(membership, sshd_of_its_own, root_key, name="rotated")
    sshd_of_its_own.rotate_host_key()
    stack = make_stack(_compose(test_images, 1), name="rotated", target=target)
    deployment = deploy(membership, stack)
    assert deployment.status == DeploymentStatus.FAILED
    assert deployment.diagnosis["code"] == "host_key_changed"
    assert "re-confirm the host key" in deployment.diagnosis["hint"]
    assert sshd_of_its_own.host_key_fingerprint in deployment.reason


def test_it_names_a_refused_key_with_its_fix(membership, make_stack, sshd, test_images):
    stranger = ssh.generate_ed25519_keypair()  # never authorised on the server
    target = add_ssh_target(membership, sshd, stranger, name="stranger")
    stack = make_stack(_compose(test_images, 1), name="refused", target=target)
    deployment = deploy(membership, stack)
    assert deployment.status == DeploymentStatus.FAILED
    assert deployment.diagnosis["code"] == "ssh_auth_failed"
    assert "authorized_keys" in deployment.diagnosis["hint"]
    assert target.public_key.split()[1] in deployment.diagnosis["hint"]


def test_it_names_a_user_without_docker_access_with_its_fix(
    membership, make_stack, sshd, root_key, test_images
):
    target = add_ssh_target(membership, sshd, root_key, name="nodocker", user=NODOCKER_USER)
    stack = make_stack(_compose(test_images, 1), name="nodocker", target=target)
    deployment = deploy(membership, stack)
    assert deployment.status == DeploymentStatus.FAILED
    assert deployment.diagnosis["code"] == "docker_permission_denied"
    assert f"sudo usermod -aG docker {NODOCKER_USER}" in deployment.diagnosis["hint"]


def _process_tree(root: int) -> list[int]:
    """`root` and every process below it (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def test_it_fails_once_when_the_server_freezes_and_cleans_up_at_the_next_contact(
    membership, make_stack, sshd_of_its_own, root_key, test_images, settings
):
    """A server that freezes in the middle of a first deploy: the deployment fails after one
    Docker call times out, with a hint about the server (not the health timeout); nothing is
    rolled back or removed (each try would wait again); the log says what was left, and the
    next connection test that reaches the server removes it."""
    settings.WINDFLOW_DEPLOY_STEP_TIMEOUT = 5
    server = sshd_of_its_own
    target = add_ssh_target(membership, server, root_key, name="freezes")
    stack = make_stack(
        f"services:\n  web:\n    image: {test_images['busybox:1']}\n"
        "    command: sleep 3600\n" + NEVER_HEALTHY,
        name="frozen",
        target=target,
        health_timeout=600,
    )
    frozen: list[int] = []

    def freeze_once_started() -> None:
        if wait_for(lambda: any(c.status == "running" for c in project_containers(stack.project))):
            frozen.extend(_process_tree(server.pid()))
            _signal_all(frozen, signal.SIGSTOP)

    freezer = threading.Thread(target=freeze_once_started, daemon=True)
    freezer.start()
    try:
        deployment = deploy(membership, stack)
    finally:
        freezer.join(timeout=60)
        _signal_all(frozen, signal.SIGCONT)
    assert frozen, "the deployment never started its container"
    assert deployment.status == DeploymentStatus.FAILED
    assert deployment.diagnosis["code"] == "server_lost"
    assert "health" not in deployment.diagnosis["hint"]
    assert "freezes is up and reachable" in deployment.diagnosis["hint"]
    log = log_text(deployment)
    assert "freezes stopped answering: nothing was rolled back or removed." in log
    assert "removing what this deployment started" not in log
    left = deployment.diagnosis["left"]
    assert left["pending"] is True
    assert [c["name"] for c in left["containers"]] == [f"{stack.project}-web-1"]
    assert left["networks"] == [f"{stack.project}_default"]
    assert f"containers {stack.project}-web-1; networks {stack.project}_default" in log
    assert [c.name for c in project_containers(stack.project)] == [f"{stack.project}-web-1"]

    # The next contact: a connection test that reaches the server removes what was left.
    assert connect.check_target(target).status == "online"
    assert project_containers(stack.project) == []
    deployment.refresh_from_db()
    assert deployment.diagnosis["left"]["pending"] is False
    assert "freezes answers again: removed what this deployment left there" in log_text(deployment)
    engine = docker.from_env()
    try:
        assert engine.networks.list(names=[f"{stack.project}_default"]) == []
    finally:
        engine.close()
