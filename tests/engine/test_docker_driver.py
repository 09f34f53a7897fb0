"""windflow.engine.drivers.docker against the real Docker engine (started by
devtools), with images from a private registry on 127.0.0.1. No mocks.

Every test uses its own project (wft-<hex8>) and removes what carries its label."""

import http.client
import http.server
import json
import os
import socket
import subprocess
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import docker
import pytest

from devtools import (
    BASE_IMAGE,
    ensure_compose_plugin,
    remove_compose_project,
)
from windflow.engine import ssh
from windflow.engine.compose.load import load_compose
from windflow.engine.compose.plan import build_plan
from windflow.engine.diagnose import Exit
from windflow.engine.dockerhost import docker_client_ssh
from windflow.engine.drivers import (
    Cancelled,
    CancelToken,
    DeployFailed,
    DeployOptions,
    Driver,
    Event,
)
from windflow.engine.drivers.docker import DockerDriver
from windflow.engine.errors import ContainerNotFound, DockerUnavailable, EngineError

PROJECT_LABEL = "com.docker.compose.project"
FAST = DeployOptions(health_timeout=60, grace_period=1, step_timeout=30)


@pytest.fixture
def project(client):
    name = f"wft-{uuid.uuid4().hex[:8]}"
    yield name
    remove_compose_project(name)


def plan_of(text, project):
    return build_plan(load_compose(text), project)


def run(driver, plan, options=FAST, cancel=None):
    """Deploy; return (events, error or None)."""
    events = []
    try:
        for event in driver.deploy(plan, options, cancel or CancelToken()):
            assert isinstance(event, Event)
            events.append(event)
    except (DeployFailed, Cancelled) as exc:
        return events, exc
    return events, None


def labelled(client, project):
    label = {"label": f"{PROJECT_LABEL}={project}"}
    return (
        client.api.containers(all=True, filters=label),
        client.api.networks(filters=label),
        client.api.volumes(filters=label).get("Volumes") or [],
    )


def first(events, service, phase):
    for index, event in enumerate(events):
        if event.service == service and event.phase == phase:
            return index
    raise AssertionError(f"no {phase} event for {service}: {[e.message for e in events]}")


def get(port):
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


STACK = """
services:
  db:
    image: {db}
    volumes: [data:/data]
  app:
    image: {app}
    ports: ["127.0.0.1::8080"]
    environment: {{GREETING: hello}}
    depends_on:
      db: {{condition: service_healthy}}
  worker:
    image: {worker}
    depends_on: [app]
volumes:
  data: {{}}
"""


def test_it_deploys_a_stack_redeploys_only_the_changed_service_and_removes_it(
    driver, client, test_images, project
):
    assert isinstance(driver, Driver)
    text = STACK.format(
        db=test_images["web:1"], app=test_images["web:1"], worker=test_images["busybox:1"]
    )
    events, error = run(driver, plan_of(text, project))
    assert error is None, error
    # app waits for db to be healthy; worker for app to be started
    assert first(events, "db", "healthy") < first(events, "app", "create")
    assert first(events, "app", "start") < first(events, "worker", "create")
    assert {e.phase for e in events} >= {"pull", "create", "start", "healthy", "running"}
    assert all(0 <= e.progress <= 100 for e in events if e.progress is not None)

    status = driver.status(project)
    assert [(s.service, s.number) for s in status] == [("app", 1), ("db", 1), ("worker", 1)]
    assert all(s.state == "running" for s in status)
    assert [s.health for s in status] == ["healthy", "healthy", None]
    app = status[0]
    assert app.name == f"{project}-app-1"
    assert app.ports[0]["host_ip"] == "127.0.0.1" and app.ports[0]["target"] == 8080
    assert get(app.ports[0]["published"]) == "windflow test web 1\n"
    attrs = client.api.inspect_container(app.id)
    labels = attrs["Config"]["Labels"]
    assert labels[PROJECT_LABEL] == project
    assert labels["com.docker.compose.service"] == "app"
    assert labels["com.docker.compose.container-number"] == "1"
    assert labels["com.docker.compose.config-hash"] == app.config_hash != ""
    assert "GREETING=hello" in attrs["Config"]["Env"]
    assert driver.project_labels(project)[PROJECT_LABEL] == project
    assert driver.project_labels("wft-nothing-here") is None

    assert ensure_compose_plugin(), "docker compose v2 should be installable here"
    listed = subprocess.run(
        ["docker", "compose", "ls", "--all", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert project in [entry["Name"] for entry in json.loads(listed.stdout)]

    # The same plan again: nothing recreated.
    events, error = run(driver, plan_of(text, project))
    assert error is None, error
    assert {e.service for e in events if e.phase == "unchanged"} == {"db", "app", "worker"}
    assert not [e for e in events if e.phase == "create"]

    # One service changed: only it is recreated.
    before = {s.service: s.id for s in status}
    changed = STACK.format(
        db=test_images["web:1"], app=test_images["web:2"], worker=test_images["busybox:1"]
    )
    events, error = run(driver, plan_of(changed, project))
    assert error is None, error
    after = {s.service: s.id for s in driver.status(project)}
    assert after["db"] == before["db"] and after["worker"] == before["worker"]
    assert after["app"] != before["app"]
    assert {e.service for e in events if e.phase == "create"} == {"app"}
    port = driver.status(project)[0].ports[0]["published"]
    assert get(port) == "windflow test web 2\n"

    # An orphan (worker left out of the plan) is removed after the gate.
    without_worker = changed.replace("  worker:\n", "  xworker:\n").replace(
        "depends_on: [app]", "depends_on: [app]\n    scale: 0"
    )
    events, error = run(driver, plan_of(without_worker, project))
    assert error is None, error
    assert [s.service for s in driver.status(project)] == ["app", "db"]

    events = list(driver.remove(project, volumes=True))
    assert {e.phase for e in events} >= {"remove"}
    assert labelled(client, project) == ([], [], [])


def test_it_diagnoses_a_failing_healthcheck(driver, test_images, project):
    text = f"services:\n  web:\n    image: {test_images['unhealthy:1']}\n"
    events, error = run(driver, plan_of(text, project))
    assert isinstance(error, DeployFailed)
    diagnosis = error.diagnosis
    assert (diagnosis.code, diagnosis.service) == ("healthcheck_failing", "web")
    assert diagnosis.summary.startswith("healthcheck failing: last output: ")
    assert any(e.phase == "failed" and e.level == "error" for e in events)


def test_it_diagnoses_a_port_already_allocated(driver, test_images, project):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        text = (
            f"services:\n  web:\n    image: {test_images['web:1']}\n"
            f"    ports: ['127.0.0.1:{port}:8080']\n"
        )
        _, error = run(driver, plan_of(text, project))
    finally:
        holder.close()
    assert isinstance(error, DeployFailed)
    assert error.diagnosis.code == "port_allocated"
    assert error.diagnosis.summary == f"port {port} already allocated"


def test_it_diagnoses_a_missing_image(driver, image_registry, test_images, project):
    missing = f"{image_registry.url}/windflow-test/nope:1"
    text = (
        f"services:\n  web:\n    image: {missing}\n  db:\n    image: {test_images['busybox:1']}\n"
    )
    _events, error = run(driver, plan_of(text, project))
    assert isinstance(error, DeployFailed)
    assert error.diagnosis.code == "image_not_found"
    assert error.diagnosis.summary == f"image not found: {missing}"
    assert error.diagnosis.service == "web"


def test_it_diagnoses_a_crash_with_its_last_log_line(driver, test_images, project):
    text = (
        f"services:\n  job:\n    image: {test_images['crash:1']}\n"
        f"  after:\n    image: {test_images['busybox:1']}\n"
        "    depends_on: {job: {condition: service_healthy}}\n"
    )
    events, error = run(driver, plan_of(text, project))
    assert isinstance(error, DeployFailed)
    assert error.diagnosis.code == "exited"
    assert error.diagnosis.summary == "exited with code 1: windflow test crash"
    failed = [e for e in events if e.phase == "failed"]
    assert "after" in {e.service for e in failed}  # its dependent fails with it
    assert any(e.data.get("code") == "dependency_failed" for e in failed)
    job = driver.status(project)[0]
    assert (job.state, job.exit_code) == ("exited", 1)
    assert "windflow test crash" in list(driver.logs(job.id, timestamps=False))


def wait_for_state(client, cid, ready):
    """Inspect container `cid` until `ready(state, attrs)` holds (at most 60 s)."""
    deadline = time.monotonic() + 60
    while True:
        attrs = client.api.inspect_container(cid)
        if ready(attrs["State"], attrs):
            return attrs
        assert time.monotonic() < deadline, attrs["State"]
        time.sleep(0.05)


def test_it_reads_the_exit_code_of_a_crash_loop_from_the_engines_events(
    driver, client, test_images, project
):
    text = (
        f"services:\n  job:\n    image: {test_images['busybox:1']}\n    restart: always\n"
        "    command: [sh, -c, 'echo crashing >&2; sleep 1; exit 3']\n"
    )
    patient = DeployOptions(health_timeout=60, grace_period=30, step_timeout=30)
    _, error = run(driver, plan_of(text, project), patient)
    assert isinstance(error, DeployFailed)
    assert error.diagnosis.code == "exited"
    assert "exited with code 3: crashing" in error.diagnosis.summary
    # Once Docker has started it again, its state says 0: the code is the last die event's.
    job = driver.status(project)[0]
    attrs = wait_for_state(
        client,
        job.id,
        lambda state, attrs: state["Status"] == "running" and attrs["RestartCount"] >= 1,
    )
    assert attrs["State"]["ExitCode"] == 0
    assert driver.last_exit(job.id) == Exit(3)


def test_it_diagnoses_a_command_missing_from_the_image(driver, test_images, project):
    text = (
        f"services:\n  app:\n    image: {test_images['busybox:1']}\n"
        "    command: [windflow-no-such-program, --serve]\n"
    )
    _, error = run(driver, plan_of(text, project))
    assert isinstance(error, DeployFailed)
    diagnosis = error.diagnosis
    assert (diagnosis.code, diagnosis.service) == ("command_not_found", "app")
    assert diagnosis.summary == "command not found in the image: windflow-no-such-program"
    assert "command:" in diagnosis.hint and "executable file not found" in diagnosis.detail


def test_cancel_stops_a_long_health_wait_and_leaves_nothing(driver, client, test_images, project):
    text = (
        f"services:\n  slow:\n    image: {test_images['busybox:1']}\n"
        "    healthcheck: {test: [CMD, 'false'], interval: 60s}\n"
    )
    error, took = cancel_after(
        1.0, lambda cancel: run(driver, plan_of(text, project), cancel=cancel)
    )
    assert isinstance(error, Cancelled)
    assert labelled(client, project)[0] == []
    # Uncancelled, it would wait a minute for the first health check: it ended long before
    # (a scaled bound, not a measure of speed).
    assert took < 30, f"deploy ended {took:.1f} s after the cancel"


def test_it_creates_and_starts_nothing_once_the_probe_says_a_cancel_was_asked(
    driver, client, test_images, project
):
    """The news has not reached cancel() yet (a worker hears of it a moment later), but it is
    on record: the driver reads it before each step that changes the server."""
    asked = threading.Event()
    asked.set()  # on record before the deploy reaches the server
    cancel = CancelToken(probe=asked.is_set)
    text = f"services:\n  web:\n    image: {test_images['busybox:1']}\n"
    client.images.pull(test_images["busybox:1"])  # present: nothing slows the create down
    since = int(time.time()) - 1
    events, error = run(driver, plan_of(text, project), cancel=cancel)
    assert isinstance(error, Cancelled)
    assert cancel.cancelled
    assert not [e for e in events if e.phase in ("create", "start", "network")], events
    seen = client.api.events(
        since=since,
        until=int(time.time()) + 1,
        filters={"label": f"{PROJECT_LABEL}={project}"},
        decode=True,
    )
    assert list(seen) == []  # not even created and removed again


def test_it_says_a_registry_that_never_answers_is_unreachable(driver, client, project):
    """A registry (or proxy) that takes the connection and says nothing: the engine gives up
    by itself after a while, and the diagnosis names the registry, with the hint."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # connections complete in the kernel; nothing ever answers
    host = f"127.0.0.1:{silent.getsockname()[1]}"
    try:
        text = f"services:\n  web:\n    image: {host}/windflow-test/silent:1\n"
        _events, error = run(driver, plan_of(text, project))
    finally:
        silent.close()
    assert isinstance(error, DeployFailed)
    diagnosis = error.diagnosis
    assert diagnosis.code == "registry_unreachable", diagnosis
    assert host in diagnosis.summary and "no answer" in diagnosis.summary
    assert "cannot reach the image registry" in diagnosis.hint


def cancel_after(seconds, deploy):
    """Run deploy(cancel) and cancel it after `seconds`; (its error, how long it went on
    after the cancel)."""
    cancel = CancelToken()
    cancelled_at = []

    def fire():
        cancelled_at.append(time.monotonic())
        cancel.cancel()

    timer = threading.Timer(seconds, fire)
    timer.start()
    try:
        _events, error = deploy(cancel)
    finally:
        timer.cancel()
    assert cancelled_at, "the deploy ended before the cancel"
    return error, time.monotonic() - cancelled_at[0]


class SlowRegistry(http.server.ThreadingHTTPServer):
    """A proxy in front of a registry that sends image layers slowly (16 KiB every 0.2 s):
    a pull through it takes long enough to be cancelled in the middle."""

    daemon_threads = True

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        super().__init__(("127.0.0.1", 0), _SlowHandler)

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_HEAD(self):
        self.forward()

    def do_GET(self):
        self.forward()

    def forward(self):
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
        upstream.request(self.command, self.path, headers=headers)
        response = upstream.getresponse()
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in {"transfer-encoding", "connection"}:
                self.send_header(key, value)
        self.end_headers()
        slow = "/blobs/" in self.path and self.command == "GET"
        try:
            while chunk := response.read(16 * 1024):
                self.wfile.write(chunk)
                self.wfile.flush()
                if slow:
                    time.sleep(0.2)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the pull was cancelled
        finally:
            upstream.close()

    def log_message(self, *args):
        pass


@pytest.fixture
def big_image(image_registry, client):
    """An image whose last layer (2 MiB of random bytes) is in the registry but nowhere on
    the engine: pulling it must download that layer."""
    import tempfile

    ref = f"{image_registry.url}/windflow-test/big:{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as context:
        Path(context, "blob").write_bytes(os.urandom(2 * 1024 * 1024))
        Path(context, "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nCOPY blob /blob\n")
        client.images.build(path=context, tag=ref, rm=True)
    client.images.push(ref)
    client.images.remove(ref, force=True)
    return ref


def test_cancel_stops_a_slow_pull_and_leaves_nothing(driver, client, big_image, project):
    upstream_port = int(big_image.split("/")[0].split(":")[1])
    proxy = SlowRegistry(upstream_port)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    image = big_image.replace(big_image.split("/")[0], proxy.url)
    try:
        text = f"services:\n  app:\n    image: {image}\n"
        error, _took = cancel_after(
            2.0, lambda cancel: run(driver, plan_of(text, project), cancel=cancel)
        )
    finally:
        proxy.shutdown()
    assert isinstance(error, Cancelled)
    assert labelled(client, project)[0] == []
    # Stopped in the middle of the pull (about 25 s at the proxy's pace), not after it: the
    # image never arrived.
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get(image)


def test_it_deploys_over_ssh(sshd, root_key, test_images, project, client):
    endpoint = ssh.SSHEndpoint(
        sshd.host, sshd.port, "root", root_key[0], pinned_fingerprint=sshd.host_key_fingerprint
    )
    remote = docker_client_ssh(endpoint, timeout=30)
    try:
        remote_driver = DockerDriver(remote, stop_timeout=1)
        text = (
            f"services:\n  web:\n    image: {test_images['web:1']}\n"
            "    ports: ['127.0.0.1::8080']\n"
            f"  sleeper:\n    image: {test_images['busybox:1']}\n"
        )
        _events, error = run(remote_driver, plan_of(text, project))
        assert error is None, error
        status = remote_driver.status(project)
        assert [(s.service, s.state) for s in status] == [
            ("sleeper", "running"),
            ("web", "running"),
        ]
        assert get(status[1].ports[0]["published"]) == "windflow test web 1\n"
        list(remote_driver.remove(project))
    finally:
        remote.close()
    assert labelled(client, project) == ([], [], [])


def test_it_pulls_a_missing_image_with_progress_events(driver, client, test_images, project):
    ref = test_images["web:2"]
    client.api.remove_image(ref, force=True)
    text = f"services:\n  web:\n    image: {ref}\n"
    events, error = run(driver, plan_of(text, project))
    assert error is None, error
    pulls = [e for e in events if e.service == "web" and e.phase == "pull"]
    assert pulls[0].message == f"web: pulling {ref}" and pulls[0].progress == 0
    assert pulls[-1].message == f"web: pulled {ref}" and pulls[-1].progress == 40
    assert all(0 <= e.progress <= 40 for e in pulls)
    assert client.api.inspect_image(ref)["Id"].startswith("sha256:")


def test_it_refuses_a_missing_external_network(driver, test_images, project):
    text = (
        f"services:\n  web:\n    image: {test_images['busybox:1']}\n    networks: [outside]\n"
        f"networks:\n  outside: {{external: true, name: {project}-nowhere}}\n"
    )
    _, error = run(driver, plan_of(text, project))
    assert isinstance(error, DeployFailed)
    assert error.diagnosis.code == "external_missing"
    assert f"{project}-nowhere" in error.diagnosis.summary


def test_it_stops_starts_restarts_and_follows_logs(driver, test_images, project):
    text = (
        f"services:\n  talker:\n    image: {test_images['busybox:1']}\n"
        "    command: [sh, -c, 'i=0; while true; do echo line $i; i=$((i+1)); sleep 0.2; done']\n"
        f"  once:\n    image: {test_images['busybox:1']}\n"
        "    command: [sh, -c, 'echo first; sleep 1; echo last']\n"
        "    restart: 'no'\n"
    )
    _, error = run(driver, plan_of(text, project))
    assert error is None, error
    talker = next(s for s in driver.status(project) if s.service == "talker")

    cancel = CancelToken()
    timer = threading.Timer(1.0, cancel.cancel)
    timer.start()
    lines = list(driver.logs(talker.id, follow=True, timestamps=False, cancel=cancel))
    timer.cancel()
    assert cancel.cancelled  # the follow ended on the cancel, not on its own
    assert lines[0] == "line 0" and len(lines) >= 3
    stamped = next(iter(driver.logs(talker.id, tail=1)))
    assert stamped.split(" ", 1)[0].startswith("20") and stamped.endswith(stamped.split(" ", 1)[1])

    once = next(s for s in driver.status(project) if s.service == "once")
    followed = list(driver.logs(once.id, follow=True, timestamps=False))
    assert followed == ["first", "last"]  # the follow ends when the container stops

    events = list(driver.stop(project, "talker"))
    assert [(e.service, e.phase) for e in events] == [("talker", "stop")]
    assert {s.service: s.state for s in driver.status(project)}["talker"] == "exited"
    list(driver.start(project))
    assert {s.service: s.state for s in driver.status(project)}["talker"] == "running"
    events = list(driver.restart(project, "talker"))
    assert [(e.service, e.phase) for e in events] == [("talker", "start")]
    assert {s.service: s.state for s in driver.status(project)}["talker"] == "running"


def test_it_uses_an_existing_volume_only_when_it_is_the_stacks_on_a_shared_engine(
    driver, client, test_images, project
):
    """A server the organisation owns keeps a volume made before WindFlow (a migration from
    docker compose); on the platform's engine, only the stack's own volume is used."""
    client.volumes.create(f"{project}_data", labels={PROJECT_LABEL: project})
    text = (
        f"services:\n  app:\n    image: {test_images['web:1']}\n    volumes: ['data:/data']\n"
        "volumes:\n  data: {}\n"
    )
    mine = {"io.windflow.stack": "11111111-2222-3333-4444-555555555555"}
    strict = DeployOptions(
        health_timeout=60, grace_period=1, step_timeout=30, labels=mine, own_resources_only=True
    )

    _, error = run(driver, plan_of(text, project), strict)
    assert isinstance(error, DeployFailed) and error.diagnosis.code == "resource_taken"

    _, error = run(driver, plan_of(text, project), FAST)
    assert error is None


# --- errors and ownership ----------------------------------------------------------------------

OWNER = {"io.windflow.stack": "11111111-2222-3333-4444-555555555555"}
SOMEONE_ELSE = {"io.windflow.stack": "66666666-7777-8888-9999-000000000000"}


def test_it_raises_its_own_not_found_error_for_a_missing_container(driver):
    missing = f"wft-missing-{uuid.uuid4().hex[:8]}"
    with pytest.raises(ContainerNotFound):
        driver.container(missing, project="wft-anything", owner=OWNER)
    with pytest.raises(ContainerNotFound):
        list(driver.logs(missing))
    with pytest.raises(ContainerNotFound):
        list(driver.logs(missing, follow=True, cancel=CancelToken()))
    for unsafe in ("", "../containers/json", "x" * 129):
        with pytest.raises(ContainerNotFound):
            driver.container(unsafe, project="wft-anything", owner=OWNER)


def test_it_turns_sdk_and_transport_errors_into_engine_errors_with_their_diagnosis(tmp_path):
    """An engine that went away: nothing of the Docker SDK or requests leaves the driver,
    and what a deployment records (the diagnosis) is that of the original error."""
    gone = docker.DockerClient(
        base_url=f"unix://{tmp_path}/no-engine.sock", version="1.41", timeout=2
    )
    driver = DockerDriver(gone, where="web-gone")
    try:
        with pytest.raises(EngineError) as caught:
            driver.status("wft-anything")
        assert isinstance(caught.value, DockerUnavailable)
        assert "web-gone" in str(caught.value)
        assert caught.value.diagnosis.code == "unreachable"
        for call in (
            lambda: driver.containers(),
            lambda: driver.project_owned("wft-anything", OWNER),
            lambda: driver.container("wft-anything-1", project="wft-anything", owner=OWNER),
            lambda: list(driver.stop("wft-anything")),
            lambda: list(driver.remove("wft-anything")),
            lambda: list(driver.logs("wft-anything-1")),
            lambda: list(
                driver.deploy(
                    plan_of(BUSYBOX.format(image=BASE_IMAGE), "wft-anything"), FAST, CancelToken()
                )
            ),
        ):
            with pytest.raises(DockerUnavailable):
                call()
    finally:
        gone.close()


BUSYBOX = "services:\n  app:\n    image: {image}\n    command: [sleep, '600']\n"


def test_it_owns_a_project_only_when_every_container_carries_the_owners_labels(
    driver, client, test_images, project
):
    """The one ownership rule, for deploys and the runtime pages alike."""
    options = DeployOptions(health_timeout=60, grace_period=0, step_timeout=30, labels=OWNER)
    _, error = run(
        driver, plan_of(BUSYBOX.format(image=test_images["busybox:1"]), project), options
    )
    assert error is None, error
    (ours,) = driver.status(project)
    assert driver.project_owned(project, OWNER)
    assert not driver.project_owned(project, SOMEONE_ELSE)
    assert driver.project_owned(f"{project}-nothing", SOMEONE_ELSE)  # nobody's yet
    for ref in (ours.id, ours.id[:12], ours.name):
        found = driver.container(ref, project=project, owner=OWNER)
        assert (found.id, found.name, found.service) == (ours.id, ours.name, "app")
    with pytest.raises(ContainerNotFound):
        driver.container(ours.id, project=project, owner=SOMEONE_ELSE)
    with pytest.raises(ContainerNotFound):
        driver.container(ours.id, project=f"{project}-other", owner=OWNER)
    with pytest.raises(ValueError):
        driver.project_owned(project, {})
    listed = {c.id: c for c in driver.containers(label=f"{PROJECT_LABEL}={project}")}
    assert listed[ours.id].project == project and listed[ours.id].labels["io.windflow.stack"]

    # One container of the project started by hand, without the stack's labels: the project
    # is no longer the stack's, though its first container still is.
    stranger = client.containers.run(
        test_images["busybox:1"],
        ["sleep", "600"],
        name=f"{project}-stranger",
        labels={PROJECT_LABEL: project},
        detach=True,
    )
    try:
        assert not driver.project_owned(project, OWNER)
        with pytest.raises(ContainerNotFound):
            driver.container(stranger.id, project=project, owner=OWNER)
        assert driver.container(ours.id, project=project, owner=OWNER).id == ours.id
    finally:
        stranger.remove(force=True)
