"""The commands. Each returns its exit code (0 succeeded, 1 failed, 2 rolled back,
3 cancelled, 4 refused) or raises CliError; see docs/cli.md."""

from __future__ import annotations

from pathlib import Path

import click

from .errors import REFUSED, SUCCEEDED, CliError

STACK_COLUMNS = [
    ("name", "Stack"),
    ("environment", "Environment"),
    ("target", "Server"),
    ("current_revision", "Current"),
    ("latest_revision", "Latest"),
]
DEPLOYMENT_COLUMNS = [
    ("id", "Id"),
    ("stack", "Stack"),
    ("number", "#"),
    ("revision", "Revision"),
    ("kind", "Kind"),
    ("status", "Status"),
    ("created_at", "Created"),
]


def _api():
    from .api import Api
    from .config import credentials

    return Api(credentials())


def _fmt(ctx: click.Context) -> str:
    return ctx.find_root().params.get("output") or "table"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--output",
    "-o",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="How results are printed.",
)
def cli(output):
    """WindFlow from a terminal: deploy a project folder and follow it.

    Exit codes: 0 succeeded, 1 failed, 2 rolled back, 3 cancelled, 4 refused (validation,
    policy or permission). WINDFLOW_URL, WINDFLOW_ORG and WINDFLOW_TOKEN override the saved
    login (for CI jobs)."""


# --- login and organisation ------------------------------------------------------------------


@cli.command()
@click.option("--url", help="The server, e.g. https://windflow.example.com.")
@click.option("--org", help="The organisation's slug (its host is <org>.<server host>).")
@click.option("--token", help="A personal API token (wf_...); prompted when not given.")
@click.pass_context
def login(ctx, url, org, token):
    """Save the server, the organisation and an API token (mode 0600)."""
    from .api import Api
    from .config import Credentials, organization_url, read_config, write_config

    stored = read_config()
    url = url or click.prompt("Server URL", default=stored.get("url") or None)
    org = org if org is not None else stored.get("org")
    token = token or click.prompt("API token", hide_input=True)
    try:
        me = Api(Credentials(organization_url(url, org), token.strip())).get("me/")
    except CliError as error:
        if not org and "(organization_host_required)" in error.message:
            raise CliError(
                f"{error.message}\nName the organisation: windflow login --url {url} --org SLUG",
                error.exit_code,
            ) from None
        raise
    stored.update(url=url.rstrip("/"), org=org or None)
    stored.setdefault("tokens", {})[org or ""] = token.strip()
    path = write_config(stored)
    if _fmt(ctx) == "json":
        click.echo(_json({"config": str(path), "me": me}))
    else:
        who = me.get("email", "?")
        click.echo(f"Logged in as {who} ({me.get('role', '?')}); saved in {path}")
    return SUCCEEDED


@cli.group()
def org():
    """The organisation the commands talk to."""


@org.command("use")
@click.argument("slug")
@click.pass_context
def org_use(ctx, slug):
    """Talk to organisation SLUG from now on (log in to it once for its token)."""
    from .config import read_config, write_config

    stored = read_config()
    if not stored.get("url"):
        raise CliError("Not logged in: run `windflow login` first.", REFUSED)
    stored["org"] = slug
    write_config(stored)
    known = slug in (stored.get("tokens") or {})
    click.echo(
        f"Using organisation {slug}"
        + ("" if known else " (no token for it yet: run `windflow login --org " + slug + "`)")
    )
    return SUCCEEDED


# --- deploy ----------------------------------------------------------------------------------


@cli.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--stack", "stack", required=True, help="The stack (created on first upload).")
@click.option("--env", "environment", help="The environment (slug), when the stack is new.")
@click.option("--server", help="The server (slug or name), when the stack is new.")
@click.option(
    "--compose-file", "-f", "compose_files", multiple=True, help="Compose files, in order."
)
@click.option("--message", "-m", default="", help="The revision's message.")
@click.option("--no-follow", is_flag=True, help="Print the queued deployment and return.")
@click.pass_context
def deploy(ctx, directory, stack, environment, server, compose_files, message, no_follow):
    """Pack DIRECTORY (honouring .dockerignore and .gitignore), upload it as a new revision of
    the stack, deploy it and follow the deployment to its end."""
    from .api import problem_line
    from .project import check, pack

    errors = [p for p in check(directory, compose_files) if p.get("severity") == "error"]
    if errors:
        for problem in errors[1:]:
            click.echo(problem_line(problem), err=True)
        raise CliError(f"The project is refused: {problem_line(errors[0])}", REFUSED)
    archive = pack(directory)
    api = _api()
    fields = {"name": stack, "message": message}
    if environment:
        fields["environment"] = environment
    if server:
        fields["target"] = server
    if compose_files:
        fields["compose_files"] = ",".join(compose_files)
    uploaded = api.upload("stacks/upload/", fields, {"archive": ("project.tar.gz", archive)})
    number = (uploaded.get("revision") or {}).get("number")
    deployment = api.post("deployments/", {"stack": stack, "revision": number})
    return _follow_or_print(ctx, api, deployment, no_follow)


def _follow_or_print(ctx, api, deployment: dict, no_follow: bool) -> int:
    from .follow import exit_code, follow, outcome_line

    fmt = _fmt(ctx)
    if no_follow:
        if fmt == "json":
            click.echo(_json(deployment))
        else:
            click.echo(f"Deployment {deployment['id']} (#{deployment['number']}) queued")
        return SUCCEEDED
    if fmt != "json":
        click.echo(
            f"Deployment {deployment['id']} (#{deployment['number']}) of {deployment['stack']}, "
            f"revision {deployment['revision']}"
        )
    final = follow(api, deployment["id"], show_progress=fmt != "json")
    if fmt == "json":
        click.echo(_json(final))
    else:
        click.echo(outcome_line(final), err=final.get("status") != "succeeded")
    return exit_code(final)


# --- stacks ----------------------------------------------------------------------------------


@cli.group()
def stack():
    """Stacks: list, show, and check a project folder (validate, lint)."""


@stack.command("list")
@click.pass_context
def stack_list(ctx):
    """The organisation's stacks."""
    from .output import emit

    emit(_fmt(ctx), _api().pages("stacks/"), STACK_COLUMNS)
    return SUCCEEDED


@stack.command("show")
@click.argument("name")
@click.pass_context
def stack_show(ctx, name):
    """One stack's settings and revisions."""
    from .output import emit

    emit(_fmt(ctx), _api().get(f"stacks/{name}/"), title=name)
    return SUCCEEDED


def _check_command(ctx, directory, compose_files, stack_name, severities) -> int:
    from .api import problem_line

    if stack_name:  # the server's view: the stack's environment policy applies too
        from .project import load_text

        text = load_text(directory, compose_files)
        problems = _api().post(f"stacks/{stack_name}/validate/", {"compose": text})["problems"]
    else:
        from .project import check

        problems = check(directory, compose_files)
    shown = [p for p in problems if p.get("severity") in severities]
    errors = [p for p in problems if p.get("severity") == "error"]
    if _fmt(ctx) == "json":
        click.echo(_json({"ok": not errors, "problems": shown}))
    else:
        for problem in shown:
            click.echo(problem_line(problem))
    if errors:
        first = problem_line(errors[0])
        click.echo(f"windflow: The project is refused ({len(errors)} error(s)): {first}", err=True)
        return REFUSED
    if _fmt(ctx) != "json":
        click.echo(f"OK ({len(shown)} finding(s))")
    return SUCCEEDED


_directory = click.argument(
    "directory", default=".", type=click.Path(file_okay=False, path_type=Path)
)
_files = click.option("--compose-file", "-f", "compose_files", multiple=True)
_remote = click.option("--stack", "stack_name", help="Check on the server, as this stack.")


@stack.command("validate")
@_directory
@_files
@_remote
@click.pass_context
def stack_validate(ctx, directory, compose_files, stack_name):
    """Errors of the project in DIRECTORY (offline unless --stack), with file and line."""
    return _check_command(ctx, directory, compose_files, stack_name, {"error"})


@stack.command("lint")
@_directory
@_files
@_remote
@click.pass_context
def stack_lint(ctx, directory, compose_files, stack_name):
    """Every finding (errors, warnings, advice) of the project in DIRECTORY."""
    return _check_command(ctx, directory, compose_files, stack_name, {"error", "warning", "info"})


# --- deployments -----------------------------------------------------------------------------


def _latest_deployment(api, stack_name: str) -> dict:
    found = api.get("deployments/", stack=stack_name, ordering="-created_at", page_size=1)
    if not found.get("results"):
        raise CliError(f"Stack {stack_name!r} has no deployment.", REFUSED)
    return found["results"][0]


@cli.command()
@click.argument("deployment", required=False, type=int)
@click.option("--stack", "stack_name", help="The stack's latest deployment.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing until it ends.")
@click.pass_context
def logs(ctx, deployment, stack_name, follow):
    """A deployment's log (DEPLOYMENT id, or the latest of --stack). With -f, the exit code
    says how it ended."""
    from .follow import approval_note, exit_code, log_text, outcome_line

    api = _api()
    if deployment is None:
        if not stack_name:
            raise CliError("Name a deployment id or --stack.", REFUSED)
        deployment = _latest_deployment(api, stack_name)["id"]
    json_out = _fmt(ctx) == "json"
    if follow:
        note = approval_note(api.get(f"deployments/{deployment}/"))
        if note:
            click.echo(note, err=True)
        status = None
        for row in api.stream(f"deployments/{deployment}/logs/", follow=1):
            if "seq" in row:
                click.echo(_json(row, one_line=True) if json_out else log_text(row))
            elif "status" in row:
                status = row["status"]
        if status is None:
            status = api.get(f"deployments/{deployment}/")
        if json_out:
            click.echo(_json({"status": status}, one_line=True))
        else:
            click.echo(outcome_line(api.get(f"deployments/{deployment}/")), err=True)
        return exit_code(status)
    after = 0
    while True:
        page = api.get(f"deployments/{deployment}/logs/", after=after, limit=5000)
        for row in page["lines"]:
            click.echo(_json(row, one_line=True) if json_out else log_text(row))
        if not page["lines"] or page["next_after"] == after:
            return SUCCEEDED
        after = page["next_after"]


@cli.command()
@click.option("--stack", "stack_name", help="One stack's latest deployment and services.")
@click.pass_context
def status(ctx, stack_name):
    """The latest deployment of every stack, or of one with its services."""
    from .output import emit

    api = _api()
    fmt = _fmt(ctx)
    if stack_name:
        latest = api.get(f"deployments/{_latest_deployment(api, stack_name)['id']}/")
        if fmt == "json":
            emit(fmt, latest)
        else:
            emit(fmt, [latest], DEPLOYMENT_COLUMNS, title=stack_name)
            columns = [("service", "Service"), ("phase", "Phase"), ("progress", "%")]
            emit(fmt, latest.get("services") or [], [*columns, ("message", "Message")])
        return SUCCEEDED
    rows = []
    for item in api.pages("stacks/"):
        found = api.get("deployments/", stack=item["name"], ordering="-created_at", page_size=1)
        last = (found.get("results") or [None])[0] or {}
        rows.append(
            {
                "stack": item["name"],
                "environment": item.get("environment"),
                "current_revision": item.get("current_revision"),
                "deployment": last.get("id"),
                "status": last.get("status"),
                "finished_at": last.get("finished_at"),
            }
        )
    emit(fmt, rows, [(key, key.replace("_", " ").capitalize()) for key in rows[0]] if rows else [])
    return SUCCEEDED


@cli.command()
@click.option("--stack", "stack_name", required=True)
@click.option("--to", "revision", type=int, help="The revision (default: the one before).")
@click.option("--no-follow", is_flag=True)
@click.pass_context
def rollback(ctx, stack_name, revision, no_follow):
    """Deploy an earlier revision that once succeeded again."""
    api = _api()
    current = api.get(f"stacks/{stack_name}/").get("current_revision")
    good = api.pages("deployments/", stack=stack_name, status="succeeded", ordering="-created_at")
    if revision is None:
        chosen = next((d for d in good if d["revision"] != current), None)
        if chosen is None:
            raise CliError(f"Stack {stack_name!r} has no earlier good revision.", REFUSED)
    else:
        chosen = next((d for d in good if d["revision"] == revision), None)
        if chosen is None:
            raise CliError(
                f"Revision {revision} of {stack_name!r} never deployed successfully.", REFUSED
            )
    deployment = api.post(f"deployments/{chosen['id']}/rollback/")
    return _follow_or_print(ctx, api, deployment, no_follow)


def _json(data, *, one_line: bool = False) -> str:
    import json

    return json.dumps(data, indent=None if one_line else 2, default=str)
