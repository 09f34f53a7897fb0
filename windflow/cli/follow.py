"""Following a deployment to its end: one Rich progress bar per service, fed by the
deployment's service states (GET deployments/{id}/), and the live log (the NDJSON stream of
deployments/{id}/logs/?follow=1) printed above the bars. Returns the exit code of its end."""

from __future__ import annotations

import queue
import sys
import threading
import time

from .api import Api
from .errors import FAILED, STATUS_EXIT, CliError

POLL_SECONDS = 0.5
AWAITING_APPROVAL = "awaiting_approval"


def exit_code(deployment: dict) -> int:
    return STATUS_EXIT.get(deployment.get("status"), FAILED)


def _read_log(api: Api, deployment_id, lines: queue.Queue) -> None:
    """The log stream, row by row, into `lines`; None when it ends (an error row too)."""
    try:
        for row in api.stream(f"deployments/{deployment_id}/logs/", follow=1):
            if "seq" in row:
                lines.put(row)
    except CliError as error:
        lines.put({"service": "", "level": "error", "message": f"log stream: {error.message}"})
    finally:
        lines.put(None)


def follow(api: Api, deployment_id, *, show_progress: bool = True, log_out=None) -> dict:
    """Wait for the deployment to finish, showing its progress; returns its last state."""
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=_read_log, args=(api, deployment_id, lines), daemon=True)
    reader.start()
    if not show_progress:
        return _wait_quietly(api, deployment_id, lines, log_out)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn

    console = Console(stderr=False)
    bars: dict[str, int] = {}
    with Progress(
        TextColumn("{task.fields[service]:<16}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[phase]}"),
        console=console,
        transient=False,
    ) as progress:
        waiting = _WaitingNote(lambda text: progress.console.print(text))
        while True:
            deployment = api.get(f"deployments/{deployment_id}/")
            waiting.check(deployment)
            for state in deployment.get("services") or []:
                name = state["service"]
                if name not in bars:
                    bars[name] = progress.add_task("", total=100, service=name, phase="")
                progress.update(
                    bars[name], completed=state.get("progress") or 0, phase=state.get("phase", "")
                )
            ended = _drain(lines, lambda row: progress.console.print(log_text(row)))
            if deployment.get("finished") and ended:
                return deployment
            time.sleep(POLL_SECONDS)


def _wait_quietly(api: Api, deployment_id, lines: queue.Queue, log_out) -> dict:
    out = log_out or sys.stderr
    waiting = _WaitingNote(lambda text: print(text, file=out))
    while True:
        deployment = api.get(f"deployments/{deployment_id}/")
        waiting.check(deployment)
        ended = _drain(lines, lambda row: print(log_text(row), file=out))
        if deployment.get("finished") and ended:
            return deployment
        time.sleep(POLL_SECONDS)


def approval_note(deployment: dict) -> str | None:
    """What to say while a deployment waits for an approval (a push to a protected
    environment): the command keeps following it until someone approves or rejects it."""
    if deployment.get("status") != AWAITING_APPROVAL:
        return None
    return (
        f"Deployment #{deployment.get('number')} waits for an approval by a member who may "
        "deploy to its environment (its page, or POST /api/v1/deployments/<id>/approve/)."
    )


class _WaitingNote:
    """Says approval_note once."""

    def __init__(self, show) -> None:
        self.show = show
        self.said = False

    def check(self, deployment: dict) -> None:
        note = approval_note(deployment)
        if note and not self.said:
            self.said = True
            self.show(note)


def _drain(lines: queue.Queue, show) -> bool:
    """Show what the reader has queued; True once the stream has ended."""
    while True:
        try:
            row = lines.get_nowait()
        except queue.Empty:
            return False
        if row is None:
            lines.put(None)  # keep the end marker for the next look
            return True
        show(row)


def log_text(row: dict) -> str:
    service = f"{row['service']} | " if row.get("service") else ""
    level = "" if row.get("level") in (None, "info") else f"{row['level'].upper()} "
    return f"{service}{level}{row.get('message', '')}"


def outcome_line(deployment: dict) -> str:
    status = deployment.get("status", "?")
    text = f"Deployment #{deployment.get('number')} of {deployment.get('stack')} {status}"
    if deployment.get("reason"):
        text += f": {deployment['reason']}"
    if deployment.get("rolled_back_to"):
        text += f" (back to revision {deployment['rolled_back_to']})"
    return text
