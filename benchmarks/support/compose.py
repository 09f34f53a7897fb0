"""What the benchmarks that race WindFlow against `docker compose` share: the compose CLI on
a project, the clean-up of a project, and runs that alternate between the tools (so that a
busier moment of the machine hits both alike)."""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .harness import say


def docker_compose(
    project: str,
    *args: str,
    cwd: Path,
    files: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
) -> None:
    """`docker compose -p <project> [-f file]... <args>` in `cwd` (classic builder, as
    WindFlow's); `env` is added to this process's environment. RuntimeError with compose's
    output when it fails."""
    command = ["docker", "compose", "-p", project]
    for name in files:
        command += ["-f", name]
    result = subprocess.run(
        [*command, *args],
        cwd=cwd,
        env={**os.environ, "DOCKER_BUILDKIT": "0", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"docker compose {' '.join(args)} failed:\n{result.stderr}")


def remove_project(project: str) -> None:
    """Every container, network and volume of compose project `project` (DOCKER_HOST's
    engine)."""
    from devtools import remove_compose_project

    remove_compose_project(project)


@dataclass
class Contender:
    """One side of a race: `once()` runs it and returns seconds; `clean()` runs before each
    run (untimed), the same way for every side."""

    label: str
    once: Callable[[], float]
    clean: Callable[[], None]
    timings: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.timings)


def alternate(runs: int, contenders: Sequence[Contender]) -> None:
    """`runs` rounds, each running every contender once in turn (cleaned before)."""
    for n in range(runs):
        for contender in contenders:
            contender.clean()
            took = contender.once()
            contender.timings.append(took)
            say(f"run {n + 1}/{runs} {contender.label}: {took:.2f} s")


def ratios(ours: Contender, theirs: Contender) -> list[float]:
    """Run by run, ours / theirs."""
    return [a / b for a, b in zip(ours.timings, theirs.timings, strict=True)]


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


class PrivateEngine:
    """A Docker engine of the benchmark's own (devtools.start_dockerd, root) in `work`:
    DOCKER_HOST (the docker CLI, compose, the SDK) and WINDFLOW_LOCAL_SOCKETS (a local
    server of WindFlow) point at it, so both tools race on one engine that nothing else
    uses. Start it before Django reads its settings; `stop()` removes it and its data."""

    def __init__(self, work: Path) -> None:
        from devtools.dockerd import start_dockerd

        self.engine = start_dockerd(work / "docker")
        os.environ["DOCKER_HOST"] = self.engine.url
        os.environ["WINDFLOW_LOCAL_SOCKETS"] = self.engine.socket_path
        say(f"private Docker engine: {self.engine.url}")

    def stop(self) -> None:
        from devtools.dockerd import remove_private_engine

        remove_private_engine(self.engine)


def keep_state_in(work: Path) -> None:
    """The folders WindFlow writes on this machine (the worker's source cache, a local
    server's revision files and secrets) under `work`, which the benchmark removes at the
    end: never /var/lib/windflow or the checkout's var/. Call before Django starts."""
    os.environ["WINDFLOW_SOURCE_CACHE_DIR"] = str(work / "source-cache")
    os.environ["WINDFLOW_STACK_FILES_ROOT"] = str(work / "stack-files")
    os.environ["WINDFLOW_STACK_SECRETS_ROOT"] = str(work / "stack-secrets")
