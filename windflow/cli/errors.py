"""Exit codes of the `windflow` command and the one error type its commands raise."""

from __future__ import annotations

SUCCEEDED = 0
FAILED = 1
ROLLED_BACK = 2
CANCELLED = 3
REFUSED = 4

# A finished deployment's status -> the command's exit code.
STATUS_EXIT = {
    "succeeded": SUCCEEDED,
    "failed": FAILED,
    "rolled_back": ROLLED_BACK,
    "cancelled": CANCELLED,
}


class CliError(Exception):
    """A clear one-line message for stderr and the exit code that goes with it."""

    def __init__(self, message: str, exit_code: int = FAILED):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
