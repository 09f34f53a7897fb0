"""`windflow --help`: how long the console script takes to answer (the issue asks for at most
300 ms; the command imports Click only, Rich and the engine load in the commands that need
them). Runs the installed script with this checkout's code, 10 times, prints the median.

    .venv/bin/python benchmarks/bench_cli_help.py [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).with_name("windflow")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([str(SCRIPT), "--help"], env=env, check=True, capture_output=True)  # warm
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([str(SCRIPT), "--help"], env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    print(
        f"windflow --help: median {median * 1000:.0f} ms over {runs} runs "
        f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}); target <= 300 ms"
    )


if __name__ == "__main__":
    main()
