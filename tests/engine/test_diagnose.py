"""windflow.engine.diagnose: the rules on literal Docker error texts and container attrs."""

import requests
from docker.errors import APIError, ImageNotFound, NotFound

from windflow.engine.diagnose import (
    DETAIL_LIMIT,
    Diagnosis,
    Exit,
    diagnose_container,
    diagnose_error,
    diagnose_timeout,
)
from windflow.engine.drivers import DeployFailed
from windflow.engine.errors import DockerUnavailable, Unreachable


def api_error(text, status=500):
    response = requests.Response()
    response.status_code = status
    return APIError(f"{status} Server Error", response=response, explanation=text)


def test_it_names_the_port_docker_says_is_allocated():
    exc = api_error(
        "driver failed programming external connectivity on endpoint wft-1-web-1 (abc): "
        "Bind for 127.0.0.1:8080 failed: port is already allocated"
    )
    diagnosis = diagnose_error(exc, service="web")
    assert diagnosis.code == "port_allocated"
    assert diagnosis.summary == "port 8080 already allocated"
    assert diagnosis.service == "web"
    assert "Bind for 127.0.0.1:8080" in diagnosis.detail
    assert diagnosis.hint


def test_it_names_the_port_of_address_already_in_use():
    exc = api_error(
        "failed to set up container networking: driver failed programming external "
        "connectivity on endpoint x: failed to bind host port for 127.0.0.1:18080:"
        "172.18.0.2:8080/tcp: address already in use"
    )
    assert diagnose_error(exc).summary == "port 18080 already allocated"
    exc = api_error(
        "Error starting userland proxy: listen tcp4 127.0.0.1:5433: bind: address already in use"
    )
    assert diagnose_error(exc).summary == "port 5433 already allocated"
    exc = api_error("listen tcp6 [::1]:8443: bind: address already in use")
    assert diagnose_error(exc).summary == "port 8443 already allocated"


def test_it_reads_image_not_found_in_pull_errors():
    image = "127.0.0.1:5000/windflow-test/nope:1"
    for text in (
        f"manifest for {image} not found: manifest unknown: manifest unknown",
        "pull access denied for nope, repository does not exist or may require "
        "'docker login': denied: requested access to the resource is denied",
        'failed to resolve reference "x": not found',
    ):
        diagnosis = diagnose_error(api_error(text, 404), image=image, service="web")
        assert diagnosis.code == "image_not_found", text
        assert diagnosis.summary == f"image not found: {image}"
    diagnosis = diagnose_error(ImageNotFound("No such image: x:1"), image="x:1")
    assert diagnosis.code == "image_not_found"


def test_it_finds_the_image_name_in_the_text_when_not_given():
    text = "manifest for 127.0.0.1:5000/a/b:2 not found: manifest unknown: manifest unknown"
    assert diagnose_error(api_error(text, 404)).summary == ("image not found: 127.0.0.1:5000/a/b:2")


def test_it_tells_registry_auth_apart():
    text = 'Head "https://r.example/v2/a/manifests/1": no basic auth credentials'
    diagnosis = diagnose_error(api_error(text), image="r.example/a:1")
    assert diagnosis.code == "registry_auth"
    assert "r.example" in diagnosis.summary
    text = "unauthorized: authentication required"
    assert diagnose_error(api_error(text), image="r.example/a:1").code == "registry_auth"


def test_it_reads_disk_full_and_unreachable_and_timeouts():
    text = "write /var/lib/docker/tmp/x: no space left on device"
    assert diagnose_error(api_error(text)).code == "disk_full"
    error = requests.exceptions.ConnectionError("('Connection aborted.', ConnectionRefusedError())")
    assert diagnose_error(error).code == "unreachable"
    assert diagnose_error(Unreachable("host: the SSH connection was lost.")).code == "unreachable"
    assert diagnose_error(requests.exceptions.ReadTimeout("read timed out")).code == "timeout"
    assert diagnose_error(TimeoutError()).code == "timeout"
    unavailable = DockerUnavailable("The Docker engine at x did not answer in time.")
    assert diagnose_error(unavailable).code == "timeout"


def test_anything_else_is_a_docker_error_with_its_text():
    diagnosis = diagnose_error(
        api_error('Conflict. The container name "/x" is already in use by container "abc"', 409)
    )
    assert diagnosis.code == "docker_error"
    assert diagnosis.summary.startswith("Conflict. The container name")
    assert diagnose_error(NotFound("network y not found")).code == "docker_error"


def test_a_deploy_failed_keeps_its_diagnosis():
    diagnosis = Diagnosis("exited", "exited with code 1", service="db")
    assert diagnose_error(DeployFailed(diagnosis)) is diagnosis
    failed = DeployFailed(diagnosis)
    assert failed.code == "exited"
    assert str(failed) == "db: exited with code 1"


def attrs(state, health=None):
    full = {"Status": "running", "Running": True, "ExitCode": 0, "OOMKilled": False, **state}
    if health is not None:
        full["Health"] = health
    return {"State": full}


def test_a_running_healthy_or_starting_container_is_fine():
    assert diagnose_container(attrs({}), service="web") is None
    assert diagnose_container(attrs({}, {"Status": "healthy", "Log": []}), service="w") is None
    assert diagnose_container(attrs({}, {"Status": "starting", "Log": []}), service="w") is None


def test_unhealthy_gives_the_last_health_output():
    health = {
        "Status": "unhealthy",
        "FailingStreak": 3,
        "Log": [
            {
                "ExitCode": 1,
                "Output": "wget: can't connect to remote host (127.0.0.1): Connection refused\n",
            },
            {"ExitCode": 1, "Output": "wget: can't connect to remote host\n"},
        ],
    }
    diagnosis = diagnose_container(attrs({}, health), service="web", log_tail=["booting"])
    assert diagnosis.code == "healthcheck_failing"
    assert diagnosis.summary == (
        "healthcheck failing: last output: wget: can't connect to remote host"
    )
    assert "Connection refused" in diagnosis.detail
    assert "booting" in diagnosis.detail


def test_oom_killed_wins_over_the_exit_code():
    state = {"Status": "exited", "Running": False, "ExitCode": 137, "OOMKilled": True}
    diagnosis = diagnose_container(attrs(state), service="db")
    assert (diagnosis.code, diagnosis.summary) == ("oom_killed", "OOM killed")


def test_exited_gives_the_code_and_the_last_log_line():
    state = {"Status": "exited", "Running": False, "ExitCode": 1}
    diagnosis = diagnose_container(
        attrs(state), service="job", log_tail=["starting", "windflow test crash", ""]
    )
    assert diagnosis.code == "exited"
    assert diagnosis.summary == "exited with code 1: windflow test crash"
    assert "starting" in diagnosis.detail
    restarting = {"Status": "restarting", "Running": True, "Restarting": True, "ExitCode": 2}
    assert diagnose_container(attrs(restarting), service="x").summary == (
        "restarting: exited with code 2"
    )


def test_a_restarted_container_is_diagnosed_with_the_code_of_its_last_exit():
    running_again = {"Status": "running", "Running": True, "ExitCode": 0}
    assert diagnose_container(attrs(running_again), service="x") is None
    diagnosis = diagnose_container(
        attrs(running_again), service="x", restarted=True, last_exit=Exit(3), log_tail=["boom"]
    )
    assert (diagnosis.code, diagnosis.summary) == ("exited", "restarted: exited with code 3: boom")
    killed = diagnose_container(
        attrs(running_again), service="x", restarted=True, last_exit=Exit(137, oom_killed=True)
    )
    assert killed.code == "oom_killed"


def test_it_names_a_command_missing_from_the_image():
    for text, name in (
        (
            "failed to create task for container: failed to create shim task: OCI runtime "
            'create failed: runc create failed: unable to start container process: exec: "nope":'
            " executable file not found in $PATH: unknown",
            "nope",
        ),
        (
            "OCI runtime create failed: runc create failed: unable to start container process: "
            'exec: "/app/run": stat /app/run: no such file or directory: unknown',
            "/app/run",
        ),
    ):
        diagnosis = diagnose_error(api_error(text, 400), service="app")
        assert diagnosis.code == "command_not_found"
        assert diagnosis.summary == f"command not found in the image: {name}"
        assert diagnosis.hint and diagnosis.detail == text
    state = {"Status": "created", "Running": False, "ExitCode": 127, "Error": text}
    assert diagnose_container(attrs(state), service="app").code == "command_not_found"


def test_a_start_error_in_the_state_is_diagnosed():
    state = {
        "Status": "created",
        "Running": False,
        "ExitCode": 128,
        "Error": "driver failed programming external connectivity: Bind for 0.0.0.0:80 "
        "failed: port is already allocated",
    }
    diagnosis = diagnose_container(attrs(state), service="web")
    assert (diagnosis.code, diagnosis.summary) == ("port_allocated", "port 80 already allocated")


def test_timeout_and_bounds():
    diagnosis = diagnose_timeout(
        attrs({}, {"Status": "starting", "Log": [{"ExitCode": 1, "Output": "no"}]}),
        service="web",
        seconds=2,
    )
    assert diagnosis.code == "timeout"
    assert diagnosis.summary.startswith("not healthy after 2s (health starting)")
    long = diagnose_container(
        attrs({"Status": "exited", "Running": False, "ExitCode": 3}),
        service="x",
        log_tail=["y" * 100] * 200,
    )
    assert len(long.detail) <= DETAIL_LIMIT
    assert long.as_dict()["code"] == "exited"
    # "text": the summary's template and arguments, for its translation
    assert set(long.as_dict()) == {"code", "summary", "service", "detail", "hint", "text"}


def test_it_says_when_the_server_cannot_reach_the_registry():
    text = (
        'Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io on '
        "10.255.255.53:53: no such host"
    )
    diagnosis = diagnose_error(api_error(text), service="web", image="nginx:1.27-alpine")
    assert diagnosis.code == "registry_unreachable"
    assert diagnosis.summary == "registry unreachable: registry-1.docker.io (DNS lookup failed)"
    assert "DNS" in diagnosis.hint
