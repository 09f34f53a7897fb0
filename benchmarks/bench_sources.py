"""Project sources: what packing, unpacking and fetching a 20 MB project costs.

    .venv/bin/python benchmarks/bench_sources.py

A 20 MB project folder (400 text files, 80 KB of source-like text each... plus 4 MB of
random binary assets), made once in a temporary folder:

1. ``archive.pack`` (deterministic tar.gz, ignore rules applied) and its sha256 ``digest``:
   what ``windflow deploy`` does before the upload;
2. ``archive.unpack`` of that tar.gz with every safety check: what the worker does with an
   upload;
3. ``git.fetch`` of the same tree committed to a repository served by ``git daemon`` on
   loopback: cold (an empty cache: ls-remote, shallow fetch, export through the safe unpack)
   and warm (the commit already in the cache).

Median of 5 runs each, printed in milliseconds with the sizes. The issue sets no target for
these steps alone; the upload budget (5 s for 20 MB through to a queued deployment, measured
end to end by bench_cli_upload.py) leaves them at most a second each: PASS when pack and
safe unpack each take a median of 1 s or less. Exit code: 0 pass, 1 fail.
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devtools.gitserver import start_git_server
from windflow.engine.sources import archive, git
from windflow.engine.sources.cache import Cache

RUNS = 5
TARGET_SECONDS = 1.0
WORDS = [
    "service",
    "image",
    "build",
    "context",
    "volume",
    "network",
    "deploy",
    "revision",
    "stack",
    "compose",
]


def make_project(root: Path) -> dict[str, bytes]:
    rng = random.Random(13)
    files: dict[str, bytes] = {"compose.yaml": b"services:\n  web:\n    build: ./app\n"}
    for index in range(400):
        text = " ".join(rng.choice(WORDS) for _ in range(11_000)).encode()
        files[f"app/src/module{index // 40}/file{index}.py"] = text[: 40 * 1024]
    for index in range(4):
        files[f"app/assets/blob{index}.bin"] = rng.randbytes(1024 * 1024)
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.0f} ms"


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="bench-sources-"))
    server = None
    try:
        files = make_project(work / "project")
        size = sum(len(data) for data in files.values())
        packs, unpacks = [], []
        for run in range(RUNS):
            start = time.perf_counter()
            data = archive.pack(work / "project")
            archive.digest(data)
            packs.append(time.perf_counter() - start)
            start = time.perf_counter()
            archive.unpack(data, work / f"unpacked{run}")
            unpacks.append(time.perf_counter() - start)
            shutil.rmtree(work / f"unpacked{run}")
        print(f"project: {len(files)} files, {size / 1e6:.1f} MB; tar.gz {len(data) / 1e6:.1f} MB")
        print(f"pack + digest: {median_ms(packs)}")
        print(f"safe unpack:   {median_ms(unpacks)}")

        server = start_git_server(work / "git")
        repo = server.repo()
        sha = repo.commit({rel: data for rel, data in files.items()})
        options = {"allow_private": True, "allow_insecure": True}
        colds, warms = [], []
        for run in range(RUNS):
            cache = Cache(work / f"cache{run}")
            start = time.perf_counter()
            git.fetch(repo.git_url, "main", cache=cache, **options)
            colds.append(time.perf_counter() - start)
            start = time.perf_counter()
            git.fetch(repo.git_url, sha, cache=cache, **options)
            warms.append(time.perf_counter() - start)
        print(f"git fetch (git://, loopback) cold: {median_ms(colds)}")
        print(f"git fetch warm (cached commit):    {median_ms(warms)}")
        worst = max(statistics.median(packs), statistics.median(unpacks))
        verdict = "PASS" if worst <= TARGET_SECONDS else "FAIL"
        print(f"{verdict}: pack and safe unpack of 20 MB each at most {TARGET_SECONDS:.0f} s")
        return 0 if verdict == "PASS" else 1
    finally:
        if server is not None:
            server.stop()
        for folder, dirs, _files in os.walk(work):
            for name in dirs:
                os.chmod(os.path.join(folder, name), 0o755)  # noqa: S103 - to remove it
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
