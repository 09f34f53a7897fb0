"""Deploying a project that builds an image: WindFlow against `docker compose up -d --build
--wait` of the same folder on the same engine; then a redeploy with a warm build cache
against a deploy of the same stack whose images are all prebuilt.

Targets (issue 13):
- deploy with a build: the median ratio WindFlow / compose of 5 alternating runs is at most
  1.1;
- an unchanged commit redeployed with a warm build cache: the median ratio to an image-only
  deploy of the same stack is at most 1.2.

    .venv/bin/python benchmarks/bench_build_deploy.py   (as root: it starts a dockerd)

The project is tests/corpus/web-db-admin (3 services: an app built from one Dockerfile, a
database, an admin page with a file mounted from the project). Everything runs on a private
Docker engine started for the benchmark, with the base images pulled from the local test
registry beforehand (so neither tool pulls while timed).

1. Build: before each run (untimed, the same for both) the compose project is removed with
   every image either tool built and the classic builder's intermediate images, so both
   build from a cold cache. WindFlow deploys an uploaded archive of the folder (uploaded
   once, untimed), from the request to the "succeeded" status: `request_deployment`, then
   the `run_deployment` actor body in this process (materialise the archive, analyse, plan,
   build with the context streamed to the engine, copy the project files, create, health
   gate, every step stored and published). What it leaves out is the queue hop to a worker.
2. Warm redeploy: before each run only the containers, networks and volumes go; the built
   image and the build cache stay. WindFlow redeploys the same revision (an unchanged
   commit), against a second stack of the same folder whose app service names the image
   WindFlow built (`image:` instead of `build:`), deployed the same way.
"""

from __future__ import annotations

import contextlib
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from support import harness
from support.compose import (
    Contender,
    PrivateEngine,
    alternate,
    docker_compose,
    keep_state_in,
    ratios,
    remove_project,
    timed,
)

NAME = "bench_build_deploy"
RUNS = 5
TARGET_BUILD = 1.1
TARGET_WARM = 1.2
CORPUS_PROJECT = "web-db-admin"
PROJECT = "wf-bench-build"
IMAGE_ONLY = "wf-bench-image"
# compose.yaml's build of the app, and what the image-only copy has instead.
BUILD_BLOCK = "    build:\n      context: ./app\n      args:\n        REGISTRY: ${REGISTRY}\n"
IMAGE_LINE = "    image: ${APP_IMAGE}\n"


def image_ids() -> set[str]:
    """Every image on the engine, intermediate ones included."""
    import docker

    client = docker.from_env()
    try:
        return {image.id for image in client.images.list(all=True)}
    finally:
        client.close()


def remove_images_since(baseline: set[str]) -> int:
    """Remove the images made since `baseline` was taken: what the builds made (tagged, and
    the classic builder's intermediate images that make its cache). Returns how many."""
    import docker

    made = len(image_ids() - baseline)
    client = docker.from_env()
    try:
        for _ in range(10):  # children first: a parent goes once its children are gone
            left = image_ids() - baseline
            if not left:
                return made
            for image_id in left:
                with contextlib.suppress(docker.errors.APIError):
                    client.images.remove(image_id, force=True)
        raise RuntimeError(f"could not remove the built images: {image_ids() - baseline}")
    finally:
        client.close()


def app_image(project: str) -> str:
    """The image the app container of compose project `project` runs."""
    from tests.deploying import project_containers

    for container in project_containers(project):
        if container.labels.get("com.docker.compose.service") == "app":
            return container.attrs["Config"]["Image"]
    raise RuntimeError(f"no app container in {project}")


def image_only_copy(folder: Path, dest: Path) -> Path:
    """`folder` copied to `dest` with the app's `build:` replaced by `image: ${APP_IMAGE}`."""
    shutil.copytree(folder, dest)
    compose = dest / "compose.yaml"
    text = compose.read_text()
    if BUILD_BLOCK not in text:
        raise RuntimeError(f"{compose} no longer has the app's build block this bench replaces")
    compose.write_text(text.replace(BUILD_BLOCK, IMAGE_LINE))
    return dest


def run(services: harness.Services) -> int:
    work = Path(tempfile.mkdtemp(prefix="windflow-bench-build-"))
    keep_state_in(work)
    engine = PrivateEngine(work)
    registry = None
    try:
        harness.setup_django(services)
        from devtools import build_test_images, ensure_compose_plugin, free_port, start_registry

        if ensure_compose_plugin() is None:
            raise RuntimeError("docker compose v2 is not available")
        registry = start_registry(work / "registry")
        images = build_test_images(registry)
        for name in ("busybox:1", "web:2"):
            subprocess.run(["docker", "pull", "-q", images[name]], check=True, capture_output=True)
        return race(work, registry.url, free_port)
    finally:
        for project in (PROJECT, IMAGE_ONLY):
            remove_project(project)
        if registry is not None:
            registry.stop()
        engine.stop()
        shutil.rmtree(work, ignore_errors=True)


def race(work: Path, registry: str, free_port) -> int:
    from apps.deployments import runner
    from apps.deployments import services as deployments
    from apps.sources import services as sources
    from apps.stacks.models import Stack
    from tests.corpus.corpus import project
    from windflow.engine.sources import archive

    corpus = project(CORPUS_PROJECT)
    ports = {name: free_port() for name in corpus.port_variables}
    values = corpus.variables(registry, ports)
    place = harness.bench_place()
    place.environment.variables = values
    place.environment.save()

    def upload(name: str, folder: Path):
        stack, revision, _ = sources.upload_archive(
            place.membership,
            stack_name=name,
            data=archive.pack(folder, ignore=False),
            filename=f"{name}.tar.gz",
            environment=place.environment,
            target=place.target,
            message="bench",
        )
        return stack, revision

    def windflow(stack, revision):
        def once() -> float:
            took = timed(lambda: deploy(stack, revision))
            Stack.objects.filter(pk=stack.pk).update(current_revision=None)
            stack.refresh_from_db()
            return took

        return once

    def deploy(stack, revision) -> None:
        deployment = deployments.request_deployment(place.membership, stack, revision)
        runner.run(deployment.pk)
        deployment.refresh_from_db()
        if deployment.status != "succeeded":
            raise RuntimeError(f"WindFlow deployment of {stack.name} failed: {deployment.reason}")

    def compose_once() -> float:
        return timed(
            lambda: docker_compose(
                PROJECT, "up", "-d", "--build", "--wait", cwd=corpus.root, env=values
            )
        )

    baseline = image_ids()
    cleaned = []

    def cold() -> None:
        remove_project(PROJECT)
        removed = remove_images_since(baseline)
        if cleaned and not removed:
            raise RuntimeError("the last run built no image: it was not a deploy with a build")
        cleaned.append(removed)

    stack, revision = upload(PROJECT, corpus.root)
    harness.wait_for_quiet()
    theirs = Contender("compose up --build", compose_once, cold)
    ours = Contender("windflow build", windflow(stack, revision), cold)
    alternate(RUNS, [theirs, ours])

    # An image-only stack of the same folder, running the image WindFlow built.
    remove_project(PROJECT)
    deploy(stack, revision)
    values["APP_IMAGE"] = app_image(PROJECT)
    place.environment.variables = values
    place.environment.save()
    image_stack, image_revision = upload(IMAGE_ONLY, image_only_copy(corpus.root, work / "img"))

    def containers_only() -> None:
        remove_project(PROJECT)
        remove_project(IMAGE_ONLY)

    image_only = Contender(
        "windflow image-only", windflow(image_stack, image_revision), containers_only
    )
    warm = Contender("windflow warm rebuild", windflow(stack, revision), containers_only)
    alternate(RUNS, [image_only, warm])
    return report(ours, theirs, warm, image_only)


def report(ours: Contender, theirs: Contender, warm: Contender, image_only: Contender) -> int:
    build_ratios, warm_ratios = ratios(ours, theirs), ratios(warm, image_only)
    build_ratio, warm_ratio = statistics.median(build_ratios), statistics.median(warm_ratios)
    build_check = harness.verdict(
        "median WindFlow / compose (build)", build_ratio, TARGET_BUILD, "", 2
    )
    warm_check = harness.verdict(
        "median warm redeploy / image-only deploy", warm_ratio, TARGET_WARM, "", 2
    )
    print("=" * 78)
    print(f"{CORPUS_PROJECT}: 3 services, one Dockerfile, {RUNS} alternating runs each")
    print(f"  docker compose up -d --build --wait: median {theirs.median:.2f} s")
    print(f"  WindFlow deployment with the build:  median {ours.median:.2f} s")
    print("  ratios: " + ", ".join(f"{r:.2f}" for r in build_ratios))
    print(build_check.line)
    print(f"  WindFlow image-only deploy:          median {image_only.median:.2f} s")
    print(f"  WindFlow redeploy, warm build cache: median {warm.median:.2f} s")
    print("  ratios: " + ", ".join(f"{r:.2f}" for r in warm_ratios))
    print(warm_check.line)
    print("=" * 78)
    harness.save_result(
        NAME,
        {
            "passed": build_check.passed and warm_check.passed,
            "build_ratio_median": build_ratio,
            "build_ratios": build_ratios,
            "windflow_build_s": ours.timings,
            "compose_build_s": theirs.timings,
            "warm_ratio_median": warm_ratio,
            "warm_ratios": warm_ratios,
            "windflow_warm_s": warm.timings,
            "windflow_image_only_s": image_only.timings,
        },
    )
    return 0 if build_check.passed and warm_check.passed else 1


def main() -> int:
    return harness.main(NAME, run)


if __name__ == "__main__":
    sys.exit(main())
