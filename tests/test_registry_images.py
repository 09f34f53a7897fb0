"""devtools gives deployment tests a private image registry on 127.0.0.1
(Debian's docker-registry) and small busybox images built locally, without Docker Hub.

Root only (on the test run's private Docker engine). No Django database here.
"""

import os
import subprocess
import time
import urllib.request
import uuid

import pytest

from devtools.images import BASE_IMAGE, TEST_IMAGES, build_test_images
from devtools.registry import registry_get, start_registry

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="starting dockerd needs root")

RUN_LABEL = f"windflow.test-run={uuid.uuid4().hex}"


def docker(*args, check=True, timeout=60):
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {result.stderr}")
    return result


@pytest.fixture(scope="module")
def registry(tmp_path_factory, docker_socket):
    server = start_registry(tmp_path_factory.mktemp("registry"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def images(registry):
    refs = build_test_images(registry)
    yield refs
    for container in docker("ps", "-aq", "--filter", f"label={RUN_LABEL}").stdout.split():
        docker("rm", "-f", container, check=False)
    # Only what this module made: this registry's tags and the local base they build on
    # (`rmi -f` of a base that another worker's images still use only untags it).
    docker("rmi", "-f", *refs.values(), BASE_IMAGE, check=False)


def run_detached(ref, *args):
    return docker("run", "-d", "--label", RUN_LABEL, *args, ref).stdout.strip()


def wait_health(container, wanted, timeout=20):
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = docker("inspect", "-f", "{{.State.Health.Status}}", container).stdout.strip()
        if state == wanted:
            return state
        time.sleep(0.2)
    return state


def test_it_registry_answers_v2_on_loopback(registry):
    assert registry.url == f"127.0.0.1:{registry.port}"
    assert registry_get(registry.port, "/v2/") == 200


def test_it_builds_and_pushes_every_image(registry, images):
    assert (
        set(images) == set(TEST_IMAGES) >= {"busybox:1", "web:1", "web:2", "unhealthy:1", "crash:1"}
    )
    for name, ref in images.items():
        assert ref == f"{registry.url}/windflow-test/{name}"
        repo, tag = name.split(":")
        assert registry_get(registry.port, f"/v2/windflow-test/{repo}/manifests/{tag}") == 200
    web1, web2 = (docker("inspect", "-f", "{{.Id}}", images[n]).stdout for n in ("web:1", "web:2"))
    assert web1 != web2

    started = time.monotonic()
    assert build_test_images(registry) == images
    assert time.monotonic() - started < 1, "a second call must skip what the registry holds"


def test_it_pulls_web_from_the_registry_after_rmi(images):
    ref = images["web:1"]
    docker("rmi", ref)
    assert docker("image", "inspect", ref, check=False).returncode != 0
    docker("pull", ref)
    assert docker("image", "inspect", "-f", "{{.Id}}", ref).stdout.startswith("sha256:")


def test_it_web_serves_its_page_on_a_loopback_port_and_becomes_healthy(images):
    container = run_detached(images["web:1"], "-p", "127.0.0.1:0:8080")
    host, port = docker("port", container, "8080/tcp").stdout.split()[0].rsplit(":", 1)
    assert host == "127.0.0.1"
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                page = response.read().decode()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert page == "windflow test web 1\n"
    assert wait_health(container, "healthy") == "healthy"


def test_it_unhealthy_becomes_unhealthy(images):
    container = run_detached(images["unhealthy:1"])
    assert wait_health(container, "unhealthy") == "unhealthy"


def test_it_crash_exits_1_and_busybox_keeps_running(images):
    crashed = docker("run", "--label", RUN_LABEL, images["crash:1"], check=False)
    assert crashed.returncode == 1
    assert "windflow test crash" in crashed.stderr
    container = run_detached(images["busybox:1"])
    assert docker("inspect", "-f", "{{.State.Running}}", container).stdout.strip() == "true"
    started = time.monotonic()
    docker("stop", container)
    assert time.monotonic() - started < 5, "the images stop on SIGKILL, not after 10 s"
