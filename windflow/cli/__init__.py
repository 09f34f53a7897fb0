"""The `windflow` command: deploy project folders and follow deployments from a terminal,
through the public REST API only (no Django here). Heavy imports (Rich, the engine) happen
inside the commands that need them, so that `windflow --help` answers at once."""

from __future__ import annotations

import sys


def main(argv=None) -> None:
    import click

    from .commands import cli
    from .errors import FAILED, REFUSED, CliError

    try:
        code = cli.main(args=argv, prog_name="windflow", standalone_mode=False)
    except CliError as error:
        print(f"windflow: {error.message}", file=sys.stderr)
        sys.exit(error.exit_code)
    except click.ClickException as error:  # bad usage: refused, like any invalid input
        error.show()
        sys.exit(REFUSED)
    except (click.exceptions.Abort, KeyboardInterrupt):
        print("windflow: interrupted", file=sys.stderr)
        sys.exit(FAILED)
    sys.exit(code if isinstance(code, int) else 0)
