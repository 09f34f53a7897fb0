"""Image builds by the Docker driver (issue 13), against the run's real Docker engine, from
images of the local test registry (``ARG REGISTRY`` + ``FROM ${REGISTRY}/...``). Project
folders are made in tmp_path; plans come from build_plan. No mocks."""

import dataclasses
import time
import uuid

import pytest

from devtools import remove_compose_project
from windflow.engine import ssh
from windflow.engine.compose.plan import build_plan
from windflow.engine.dockerhost import docker_client_ssh
from windflow.engine.drivers import Cancelled, CancelToken, DeployFailed, DeployOptions
from windflow.engine.drivers.build import CONTEXT_DIGEST_LABEL, image_tag
from windflow.engine.drivers.docker import DockerDriver
from windflow.engine.sources.ignore import context_files

PROJECT_LABEL = "com.docker.compose.project"

DOCKERFILE = """\
ARG REGISTRY
FROM ${REGISTRY}/windflow-test/busybox:1
COPY page.txt /www/index.html
CMD ["sh", "-c", "sleep 3600"]
"""


@pytest.fixture
def project(client):
    name = f"wfb-{uuid.uuid4().hex[:8]}"
    yield name
    remove_compose_project(name)
    for image in client.api.images(filters={"reference": f"windflow/{name}-*"}):
        for tag in image.get("RepoTags") or []:
            client.api.remove_image(tag, force=True)


@pytest.fixture
def registry(test_images):
    return test_images["busybox:1"].split("/", 1)[0]


def folder(root, files):
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return root


def options(project, project_dir, revision=1, **values):
    return DeployOptions(
        health_timeout=60,
        grace_period=1,
        step_timeout=30,
        project_dir=str(project_dir),
        image_repository=f"windflow/{project}",
        revision=revision,
        labels={"io.windflow.stack": project},
        **values,
    )


def compose(registry, service="app", **build):
    build = {"context": ".", "args": {"REGISTRY": registry}, **build}
    return {"services": {service: {"build": build}}}


def deploy(driver, document, project, opts):
    events = []
    try:
        for event in driver.deploy(build_plan(document, project), opts, CancelToken()):
            events.append(event)
    except (DeployFailed, Cancelled) as exc:
        return events, exc
    return events, None


def run_in(client, container, command):
    execution = client.api.exec_create(container, command)
    return client.api.exec_start(execution["Id"]).decode()


def container_of(client, project, service="app"):
    (found,) = client.api.containers(
        filters={"label": [f"{PROJECT_LABEL}={project}", f"com.docker.compose.service={service}"]}
    )
    return found


def test_it_builds_the_image_tags_it_per_revision_and_runs_it(
    driver, client, project, registry, tmp_path
):
    root = folder(tmp_path, {"Dockerfile": DOCKERFILE, "page.txt": "built by windflow\n"})
    events, error = deploy(driver, compose(registry), project, options(project, root))
    assert error is None, error
    tag = image_tag(f"windflow/{project}", "app", 1)
    assert tag == f"windflow/{project}-app:r1"
    running = container_of(client, project)
    assert running["Image"] == tag
    assert run_in(client, running["Id"], ["cat", "/www/index.html"]) == "built by windflow\n"
    # The build said what it did, live, before anything was created.
    phases = [(e.phase, e.kind) for e in events if e.service == "app"]
    assert phases.index(("build", "phase")) < phases.index(("create", "phase"))
    logged = [e.message for e in events if e.kind == "log" and e.service == "app"]
    assert "app: Step 2/6 : FROM ${REGISTRY}/windflow-test/busybox:1" in logged
    assert "app: Step 3/6 : COPY page.txt /www/index.html" in logged
    labels = client.api.inspect_image(tag)["Config"]["Labels"]
    assert len(labels[CONTEXT_DIGEST_LABEL]) == 64
    assert labels["io.windflow.stack"] == project


def test_it_passes_args_and_builds_the_target_stage(driver, client, project, registry, tmp_path):
    dockerfile = (
        "ARG REGISTRY\n"
        "FROM ${REGISTRY}/windflow-test/busybox:1 AS base\n"
        "ARG MESSAGE=default\n"
        'RUN echo "base $MESSAGE" > /msg\n'
        "FROM base AS runtime\n"
        "RUN echo runtime >> /msg\n"
        "FROM base AS debug\n"
        "RUN echo debug >> /msg\n"
    )
    root = folder(tmp_path, {"Dockerfile.multi": dockerfile})
    document = compose(registry, dockerfile="Dockerfile.multi", target="runtime")
    document["services"]["app"]["build"]["args"]["MESSAGE"] = "from compose"
    document["services"]["app"]["command"] = ["sleep", "3600"]
    _, error = deploy(driver, document, project, options(project, root))
    assert error is None, error
    running = container_of(client, project)
    assert run_in(client, running["Id"], ["cat", "/msg"]) == "base from compose\nruntime\n"


def test_a_second_build_reuses_the_layer_cache(driver, project, registry, tmp_path):
    dockerfile = DOCKERFILE.replace("COPY", "RUN echo slow step > /step\nCOPY")
    root = folder(tmp_path, {"Dockerfile": dockerfile, "page.txt": "one\n"})
    document = compose(registry)
    document["services"]["app"]["pull_policy"] = "build"  # build each time
    _, error = deploy(driver, document, project, options(project, root))
    assert error is None, error
    (root / "page.txt").write_text("two\n")
    events, error = deploy(driver, document, project, options(project, root, revision=2))
    assert error is None, error
    lines = [e.message for e in events if e.kind == "log" and e.service == "app"]
    step = lines.index(next(line for line in lines if "RUN echo slow step" in line))
    assert "Using cache" in lines[step + 1]
    assert not any("Using cache" in line for line in lines if "COPY" in line)


def test_an_unchanged_context_reuses_the_image_without_a_build(
    driver, client, project, registry, tmp_path
):
    root = folder(tmp_path, {"Dockerfile": DOCKERFILE, "page.txt": "same\n"})
    _, error = deploy(driver, compose(registry), project, options(project, root))
    assert error is None, error
    first = container_of(client, project)
    events, error = deploy(driver, compose(registry), project, options(project, root, revision=2))
    assert error is None, error
    assert not any(e.kind == "log" and "Step " in e.message for e in events)
    assert any("unchanged (same build context)" in e.message for e in events)
    r1, r2 = (image_tag(f"windflow/{project}", "app", n) for n in (1, 2))
    assert client.api.inspect_image(r1)["Id"] == client.api.inspect_image(r2)["Id"]
    assert container_of(client, project)["Id"] == first["Id"]  # the container is kept
    # A changed file makes a new image, and a new container.
    (root / "page.txt").write_text("changed\n")
    events, error = deploy(driver, compose(registry), project, options(project, root, revision=3))
    assert error is None, error
    assert any(e.kind == "log" and "Step " in e.message for e in events)
    assert container_of(client, project)["Id"] != first["Id"]


def test_pull_policy_never_with_a_missing_image_fails_clearly(
    driver, client, project, registry, image_registry, tmp_path
):
    root = folder(tmp_path, {"Dockerfile": DOCKERFILE, "page.txt": "x\n"})
    document = compose(registry)
    document["services"]["app"]["pull_policy"] = "never"
    _events, error = deploy(driver, document, project, options(project, root))
    assert isinstance(error, DeployFailed)
    assert error.code == "image_not_found" and error.diagnosis.service == "app"
    assert "pull_policy is never" in error.diagnosis.summary
    missing = f"{image_registry.url}/windflow-test/absent:1"
    pulled = {"services": {"web": {"image": missing, "pull_policy": "never"}}}
    _, error = deploy(driver, pulled, project, options(project, root))
    assert error.code == "image_not_found" and "pull_policy: never" in error.diagnosis.summary
    assert not client.api.containers(all=True, filters={"label": f"{PROJECT_LABEL}={project}"})


@pytest.mark.parametrize(
    ("dockerfile", "step", "output"),
    [
        (
            "ARG REGISTRY\nFROM ${REGISTRY}/windflow-test/busybox:1\nRUNN echo typo\n",
            None,
            "unknown instruction: RUNN",
        ),
        (
            "ARG REGISTRY\nFROM ${REGISTRY}/windflow-test/busybox:1\nRUN echo first\n"
            'RUN echo "compiling the thing" && echo "error: it broke" >&2 && exit 3\n'
            "RUN echo never\n",
            'RUN echo "compiling the thing"',
            "error: it broke",
        ),
    ],
    ids=["syntax-error", "run-fails-halfway"],
)
def test_a_failed_build_fails_before_the_running_containers_are_touched(
    driver, client, project, registry, test_images, tmp_path, dockerfile, step, output
):
    running = {"services": {"app": {"image": test_images["web:1"]}}}
    _, error = deploy(driver, running, project, options(project, tmp_path))
    assert error is None, error
    before = container_of(client, project)
    root = folder(tmp_path / "next", {"Dockerfile": dockerfile})
    events, error = deploy(driver, compose(registry), project, options(project, root, revision=2))
    assert isinstance(error, DeployFailed)
    assert error.code == "build_failed" and error.diagnosis.service == "app"
    assert output in error.diagnosis.detail
    if step:
        assert step in error.diagnosis.summary  # the failing step
        assert "compiling the thing" in error.diagnosis.detail  # and its last output lines
    # Nothing was stopped, removed or created: the old container still runs.
    after = container_of(client, project)
    assert after["Id"] == before["Id"] and after["State"] == "running"
    assert not any(e.phase in ("stop", "remove", "create", "network") for e in events)


def test_dockerignore_is_honoured(driver, client, project, registry, tmp_path):
    dockerfile = DOCKERFILE.replace("COPY page.txt /www/index.html", "COPY . /ctx")
    root = folder(
        tmp_path,
        {
            "Dockerfile": dockerfile,
            "page.txt": "p\n",
            ".dockerignore": "secret.txt\nnode_modules\n**/*.log\n!keep.log\n",
            "secret.txt": "do not ship\n",
            "node_modules/lib/index.js": "x\n",
            "src/debug.log": "log\n",
            "keep.log": "kept\n",
        },
    )
    assert context_files(root, dockerfile="Dockerfile") == [
        ".dockerignore",
        "Dockerfile",
        "keep.log",
        "page.txt",
    ]
    _, error = deploy(driver, compose(registry), project, options(project, root))
    assert error is None, error
    listing = run_in(client, container_of(client, project)["Id"], ["find", "/ctx", "-type", "f"])
    assert sorted(listing.split()) == [
        "/ctx/.dockerignore",
        "/ctx/Dockerfile",
        "/ctx/keep.log",
        "/ctx/page.txt",
    ]


def test_a_context_over_the_limit_is_refused_before_anything_runs(
    driver, client, project, registry, tmp_path
):
    root = folder(tmp_path, {"Dockerfile": DOCKERFILE, "page.txt": "x" * 4096})
    opts = options(project, root, build_context_limit=2048)
    events, error = deploy(driver, compose(registry), project, opts)
    assert isinstance(error, DeployFailed) and error.code == "build_context_too_large"
    assert ".dockerignore" in error.diagnosis.hint
    assert not any(e.kind == "log" and "Step " in e.message for e in events)
    assert not client.api.containers(all=True, filters={"label": f"{PROJECT_LABEL}={project}"})


def test_project_files_need_their_folder(driver, project, registry, tmp_path):
    document = {"services": {"app": {"image": "x", "volumes": ["./conf:/conf"]}}}
    _, error = deploy(driver, document, project, DeployOptions())
    assert error.code == "project_files_missing"
    _, error = deploy(driver, compose(registry), project, DeployOptions())
    assert error.code == "project_files_missing"


def test_it_builds_over_ssh(sshd, root_key, project, registry, client, tmp_path):
    endpoint = ssh.SSHEndpoint(
        sshd.host, sshd.port, "root", root_key[0], pinned_fingerprint=sshd.host_key_fingerprint
    )
    remote = docker_client_ssh(endpoint, timeout=30)
    try:
        root = folder(tmp_path, {"Dockerfile": DOCKERFILE, "page.txt": "over ssh\n"})
        opts = dataclasses.replace(options(project, root), build_timeout=120)
        _, error = deploy(DockerDriver(remote, stop_timeout=1), compose(registry), project, opts)
        assert error is None, error
    finally:
        remote.close()
    running = container_of(client, project)
    assert run_in(client, running["Id"], ["cat", "/www/index.html"]) == "over ssh\n"


def test_a_service_that_runs_the_image_another_one_builds_gets_the_built_one(
    driver, client, project, registry, tmp_path
):
    root = folder(tmp_path, {"Dockerfile": DOCKERFILE, "page.txt": "shared\n"})
    document = compose(registry)
    document["services"]["app"]["image"] = "shop/app:dev"
    document["services"]["worker"] = {"image": "shop/app:dev", "command": ["sleep", "3600"]}
    plan = build_plan(document, project)
    assert plan.images == []  # nothing to pull: shop/app:dev is the build's
    _, error = deploy(driver, document, project, options(project, root))
    assert error is None, error
    tag = image_tag(f"windflow/{project}", "app", 1)
    assert container_of(client, project, "worker")["Image"] == tag
    worker = container_of(client, project, "worker")["Id"]
    assert run_in(client, worker, ["cat", "/www/index.html"]) == "shared\n"


def test_a_cancel_during_a_build_stops_it_and_changes_nothing(
    driver, client, project, registry, tmp_path
):
    dockerfile = DOCKERFILE.replace("COPY", "RUN echo waiting && sleep 600\nCOPY")
    root = folder(tmp_path, {"Dockerfile": dockerfile, "page.txt": "x\n"})
    cancel = CancelToken()
    events = []
    with pytest.raises(Cancelled):
        for event in driver.deploy(
            build_plan(compose(registry), project), options(project, root), cancel
        ):
            events.append(event)
            if event.kind == "log" and event.message == "app: waiting":
                cancel.cancel()
    assert not client.api.containers(all=True, filters={"label": f"{PROJECT_LABEL}={project}"})
    assert not any(e.phase in ("create", "network") for e in events)
    # The engine stopped the build: no container of it is left running the sleep.
    sleeping = [
        c for c in client.api.containers() if "sleep 600" in " ".join(c.get("Command", "").split())
    ]
    deadline = time.monotonic() + 30
    while sleeping and time.monotonic() < deadline:
        time.sleep(0.5)
        sleeping = [c for c in client.api.containers() if "sleep 600" in c.get("Command", "")]
    assert not sleeping


def test_pull_policy_always_pulls_the_from_images_when_it_builds(
    driver, project, registry, tmp_path
):
    root = folder(tmp_path, {"Dockerfile": DOCKERFILE, "page.txt": "x\n"})
    document = compose(registry)
    document["services"]["app"]["pull_policy"] = "always"
    events, error = deploy(driver, document, project, options(project, root))
    assert error is None, error
    logged = [e.message for e in events if e.kind == "log" and e.service == "app"]
    assert any("Pulling from windflow-test/busybox" in line for line in logged), logged
    # missing (the default) does not pull what the engine has.
    events, error = deploy(
        driver, compose(registry, no_cache=True), project, options(project, root, 2)
    )
    assert error is None, error
    assert not any("Pulling from" in e.message for e in events if e.kind == "log")
