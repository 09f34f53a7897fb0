"""devtools.supervisor keeps `make run`'s processes running: one that exits is started
again with a growing backoff and a line saying so, while the others keep running; a stop
ends every process and what it left in its group. Real processes, no Django."""

import io
import os
import threading
import time

import pytest

from devtools.base import pid_alive
from devtools.supervisor import Supervisor


@pytest.fixture
def procfile(tmp_path):
    path = tmp_path / "Procfile"
    path.write_text(
        "# comment\n"
        "steady: sleep 600\n"
        "crashy: echo crashing; exit 3\n"
        "family: sh -c 'sleep 600 & echo child $!; exit 0'\n"
    )
    return path


def run_supervisor(procfile, names, until, timeout=30):
    """Run a Supervisor in this (main) thread, where it can take SIGINT/SIGTERM, until
    `until(lines)` holds; a watcher thread then asks it to stop."""
    lines = []
    out = io.StringIO()
    supervisor = Supervisor(
        procfile, names, env=dict(os.environ), cwd=procfile.parent, say=lines.append, out=out
    )

    def stopper():
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not until(lines):
            time.sleep(0.05)
        supervisor.request_stop()

    watcher = threading.Thread(target=stopper)
    watcher.start()
    supervisor.run()
    watcher.join()
    return supervisor, lines, out.getvalue()


def restarts_of(lines, name):
    return [line for line in lines if line.startswith(f"{name} exited")]


def test_it_restarts_an_exited_process_with_a_growing_backoff_and_keeps_the_others(procfile):
    supervisor, lines, output = run_supervisor(
        procfile, ["steady", "crashy"], until=lambda lines: len(restarts_of(lines, "crashy")) >= 3
    )

    crashes = restarts_of(lines, "crashy")
    assert len(crashes) >= 3
    assert "exit code 3" in crashes[0]
    delays = [int(line.split("restarting it in ")[1].split(" s")[0]) for line in crashes[:3]]
    assert delays == [1, 2, 4]
    assert all("PostgreSQL and Redis keep running" in line for line in crashes)
    # steady started once and was never restarted while crashy crashed around it.
    assert [line for line in lines if line.startswith("steady started")] == [lines[0]]
    assert not restarts_of(lines, "steady")
    assert "crashy | crashing" in output
    steady = next(p for p in supervisor.processes if p.name == "steady")
    assert steady.popen.poll() is not None  # stopped at the end


def test_it_ends_what_an_exited_process_left_in_its_group(procfile):
    _supervisor, lines, output = run_supervisor(
        procfile, ["family"], until=lambda lines: len(restarts_of(lines, "family")) >= 1
    )

    child = int(output.split("family | child ")[1].split()[0])
    assert restarts_of(lines, "family")
    # The exit line is said once the group is gone: the `sleep 600` it left is not running.
    assert not pid_alive(child, "sleep")


def test_it_refuses_a_process_the_procfile_does_not_have(procfile):
    with pytest.raises(ValueError, match="no nosuch process"):
        Supervisor(procfile, ["nosuch"], env={}, cwd=procfile.parent, say=print)
