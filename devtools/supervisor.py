"""Keep the Procfile processes of `make run` running.

Each process runs in its own session (a Ctrl-C in the terminal reaches the supervisor only),
with its output prefixed by its name. When one exits on its own, it is started again after a
backoff (1 s, 2 s, 4 s... at most 30 s; back to 1 s once it has run for a minute), with one
line saying so; the other processes, PostgreSQL and Redis keep running. SIGINT or SIGTERM
stops every process (SIGTERM to its group, SIGKILL after 10 s) and returns.

This is for a developer's machine only. In production each process is a container or a
systemd unit of its own, restarted by the orchestrator (docs/operations.md).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0
STABLE_AFTER = 60.0  # a process that ran this long starts again at the first delay
STOP_TIMEOUT = 10.0
LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")


def read_procfile(path: Path) -> dict[str, str]:
    """``name: command`` lines of a Procfile, in order."""
    entries = {}
    for raw in path.read_text().splitlines():
        match = LINE.match(raw.strip())
        if match and not raw.lstrip().startswith("#"):
            entries[match.group(1)] = match.group(2)
    return entries


def _end_group(pgid: int, grace: float = STOP_TIMEOUT) -> None:
    """SIGTERM to what is left of a process group, SIGKILL to what is still there after
    `grace` seconds (the leader has exited already)."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


@dataclass
class Process:
    name: str
    command: str
    popen: subprocess.Popen | None = None
    started_at: float = 0.0
    failures: int = 0
    restart_at: float | None = None
    restarts: int = 0
    readers: list[threading.Thread] = field(default_factory=list)

    def backoff(self) -> float:
        return min(BACKOFF_FIRST * 2 ** max(self.failures - 1, 0), BACKOFF_MAX)


class Supervisor:
    def __init__(
        self,
        procfile: Path,
        names: Iterable[str],
        *,
        env: dict[str, str],
        cwd: Path,
        say: Callable[[str], None],
        out=None,
    ) -> None:
        entries = read_procfile(procfile)
        missing = [name for name in names if name not in entries]
        if missing:
            raise ValueError(f"{procfile} has no {', '.join(missing)} process")
        self.processes = [Process(name, entries[name]) for name in names]
        self.env = env
        self.cwd = cwd
        self.say = say
        self.out = out or sys.stdout
        self.width = max(len(p.name) for p in self.processes)
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    # ------------------------------------------------------------------ output

    def _pump(self, process: Process, stream) -> None:
        prefix = f"{process.name:<{self.width}} | "
        for line in iter(stream.readline, b""):
            text = line.decode(errors="replace").rstrip("\n")
            with self.lock:
                self.out.write(f"{time.strftime('%H:%M:%S')} {prefix}{text}\n")
                self.out.flush()
        stream.close()

    # ------------------------------------------------------------------- start

    def _start(self, process: Process) -> None:
        process.popen = subprocess.Popen(
            ["/bin/sh", "-c", process.command],  # its group is signalled, not just sh
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        process.started_at = time.monotonic()
        process.restart_at = None
        reader = threading.Thread(
            target=self._pump, args=(process, process.popen.stdout), daemon=True
        )
        reader.start()
        process.readers = [reader]
        self.say(f"{process.name} started (pid {process.popen.pid})")

    def _check(self, process: Process, now: float) -> None:
        if process.popen is None:
            if process.restart_at is not None and now >= process.restart_at:
                process.restarts += 1
                self._start(process)
            return
        code = process.popen.poll()
        if code is None:
            return
        # What it left in its group (gunicorn's workers under their master...) goes with it,
        # or it would keep consuming beside the new one.
        _end_group(process.popen.pid)
        for reader in process.readers:
            reader.join(1)
        ran = now - process.started_at
        process.failures = 1 if ran >= STABLE_AFTER else process.failures + 1
        delay = process.backoff()
        process.popen = None
        process.restart_at = now + delay
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        self.say(
            f"{process.name} exited ({how}) after {ran:.0f} s; restarting it in {delay:.0f} s "
            "(the other processes, PostgreSQL and Redis keep running)"
        )

    # -------------------------------------------------------------------- run

    def request_stop(self, *_args: object) -> None:
        self.stopping.set()

    def run(self) -> int:
        """Run until SIGINT/SIGTERM (or request_stop()); returns 0."""
        previous = {
            sig: signal.signal(sig, self.request_stop) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            for process in self.processes:
                self._start(process)
            while not self.stopping.wait(0.2):
                now = time.monotonic()
                for process in self.processes:
                    self._check(process, now)
        finally:
            self.stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0

    def stop_all(self) -> None:
        running = [p for p in self.processes if p.popen is not None and p.popen.poll() is None]
        if running:
            self.say("stopping " + ", ".join(p.name for p in running))
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in running:
            try:
                process.popen.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                self.say(f"{process.name} did not stop within {STOP_TIMEOUT:.0f} s: killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.popen.pid, signal.SIGKILL)
                process.popen.wait(5)
        for process in self.processes:
            # children the process left in its group (uvicorn workers...)
            if process.popen is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.popen.pid, signal.SIGKILL)
            for reader in process.readers:
                reader.join(1)
