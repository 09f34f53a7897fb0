"""Project folders: what reading one into a merged compose text and checking it costs.

    .venv/bin/python benchmarks/bench_project_load.py

1. A large synthetic project, made once in a temporary folder: ``compose.yaml`` including
   4 files of 10 services each (every service ``extends`` a base of ``common/base.yaml``,
   mounts a project file and reads an env file), plus ``compose.override.yaml`` adding
   environment and ports to every service: 40 services from 7 compose files and 40 env files.
   ``load_project`` alone, then ``load_project`` + ``analyse(origin=project)`` (lint,
   interpolation, schema, plan, findings moved to their file and line).
2. Every folder of the corpus (tests/corpus): load + analyse, all of them in a row.

Median of 11 runs each, in milliseconds. The issue sets no target for this step; it runs
on every save of a Git or uploaded revision and on every offline ``windflow stack validate``.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.corpus.corpus import projects
from windflow.engine.compose.analyse import analyse
from windflow.engine.compose.project import load_project

RUNS = 11
PARTS = 4
PER_PART = 10


def make_project(root: Path) -> None:
    files: dict[str, str] = {
        "common/base.yaml": (
            "services:\n  base:\n    image: registry.example/app:1\n    restart: always\n"
            "    healthcheck: {test: [CMD, 'true'], interval: 5s}\n"
            "    deploy: {resources: {limits: {memory: 128M, cpus: '0.5'}}}\n"
            "    environment: {LOG_LEVEL: info}\n"
        ),
        "compose.yaml": "include:\n" + "".join(f"  - part{p}/compose.yaml\n" for p in range(PARTS)),
    }
    override = ["services:"]
    for part in range(PARTS):
        lines = ["services:"]
        for index in range(PER_PART):
            name = f"s{part}x{index}"
            lines += [
                f"  {name}:",
                "    extends: {file: ../common/base.yaml, service: base}",
                f"    volumes: ['./conf/{name}.conf:/etc/app.conf:ro']",
                f"    env_file: env/{name}.env",
            ]
            files[f"part{part}/conf/{name}.conf"] = "key = value\n"
            files[f"part{part}/env/{name}.env"] = "A=1\nB='two words'\nC=\"${A}-x\"\n"
            override += [
                f"  {name}:",
                f"    environment: [EXTRA={name}]",
                f"    ports: ['127.0.0.1:{20000 + part * 100 + index}:80']",
            ]
        files[f"part{part}/compose.yaml"] = "\n".join(lines) + "\n"
    files["compose.override.yaml"] = "\n".join(override) + "\n"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.1f} ms"


def timed(function) -> list[float]:
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return samples


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="bench-project-"))
    try:
        make_project(work)
        project = load_project(work)
        services = len(project.document["services"])
        print(
            f"synthetic project: {services} services, {len(project.compose_files)} compose "
            f"files, {len(project.files)} project files, merged text "
            f"{len(project.compose_text) / 1024:.0f} KiB"
        )
        print(f"load_project:             {median_ms(timed(lambda: load_project(work)))}")

        def load_and_check() -> None:
            loaded = load_project(work)
            analyse(loaded.compose_text, {}, project="bench", origin=loaded)

        print(f"load_project + analyse:   {median_ms(timed(load_and_check))}")

        corpus = projects()

        def whole_corpus() -> None:
            for item in corpus:
                variables = item.variables("127.0.0.1:5000")
                loaded = load_project(item.root, item.compose_files, variables=variables)
                analyse(
                    loaded.compose_text,
                    variables,
                    project=item.name,
                    origin=loaded,
                    placeholders=list(item.secrets),
                )

        print(
            f"corpus ({len(corpus)} projects), load + analyse each: "
            f"{median_ms(timed(whole_corpus))}"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
