"""The command against a live WindFlow (the web process, a real worker, the test Docker
engine): login and its file, the environment's precedence, JSON output, following a
deployment to the exit code of its end, rollback."""

import json
import stat

from django.db import connection

from devtools import free_port, remove_compose_project
from tests.deploying import FAILING_HEALTHCHECK, web_stack
from tests.live import worker_process


def test_it_logs_in_and_keeps_the_token_in_a_private_file(windflow, org):
    run = windflow("login", "--url", org.url, "--org", org.slug, "--token", org.token)
    assert run.code == 0, run.stderr
    assert "Logged in as owner-" in run.stdout
    assert stat.S_IMODE(windflow.config_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(windflow.config_file.parent.stat().st_mode) == 0o700
    saved = json.loads(windflow.config_file.read_text())
    assert saved == {"url": org.url, "org": org.slug, "tokens": {org.slug: org.token}}

    listed = windflow("--output", "json", "stack", "list")
    assert listed.code == 0, listed.stderr
    assert listed.json() == []


def test_it_refuses_a_wrong_token_at_login_and_saves_nothing(windflow, org):
    run = windflow("login", "--url", org.url, "--org", org.slug, "--token", "wf_" + "x" * 40)
    assert run.code == 4
    assert run.stderr.startswith("windflow: ")
    assert "authentication_failed" in run.stderr or "not_authenticated" in run.stderr
    assert not windflow.config_file.exists()


def test_it_prefers_the_environment_to_the_saved_login(windflow, org):
    saved = windflow("login", "--url", org.url, "--org", org.slug, "--token", org.token)
    assert saved.code == 0, saved.stderr
    wrong = {"WINDFLOW_TOKEN": "wf_" + "y" * 40}
    refused = windflow("stack", "list", env=wrong)
    assert refused.code == 4
    assert "authentication_failed" in refused.stderr

    windflow.config_file.write_text(
        json.dumps({"url": org.url, "org": org.slug, "tokens": {org.slug: "wf_" + "z" * 40}})
    )
    run = windflow("-o", "json", "stack", "list", env=org.env)
    assert run.code == 0, run.stderr
    assert run.json() == []


def test_it_switches_organisation_and_says_when_it_has_no_token_for_it(windflow, org):
    windflow("login", "--url", org.url, "--org", org.slug, "--token", org.token)
    run = windflow("org", "use", "elsewhere")
    assert run.code == 0
    assert "no token for it yet" in run.stdout
    refused = windflow("stack", "list")
    assert refused.code == 4
    assert "No API token for organisation 'elsewhere'" in refused.stderr


def _stack_with_revisions(org, name, *composes):
    from apps.environments.models import Environment
    from apps.stacks import services as stacks
    from apps.stacks.models import StackRevision
    from apps.targets.models import Target

    connection.set_tenant(org.organization)
    try:
        stack = stacks.create_stack(
            org.membership,
            name=name,
            environment=Environment.objects.get(slug="staging"),
            target=Target.objects.get(slug="web-1"),
            compose=composes[0],
        )
        for number, compose in enumerate(composes[1:], start=2):
            StackRevision.objects.create(stack=stack, number=number, compose=compose)
        return stack
    finally:
        connection.set_schema_to_public()


def _request(org, stack, number):
    from apps.deployments.services import request_deployment

    connection.set_tenant(org.organization)
    try:
        return request_deployment(org.membership, stack, stack.revisions.get(number=number)).pk
    finally:
        connection.set_schema_to_public()


def test_it_follows_deployments_to_the_exit_code_of_their_end(windflow, org, test_images):
    port = free_port()
    good = web_stack(test_images["web:1"], port)
    failing = web_stack(test_images["web:2"], port, extra=FAILING_HEALTHCHECK)
    stack = _stack_with_revisions(org, "shop", good, failing)
    try:
        with worker_process(threads=2):
            first = _request(org, stack, 1)
            run = windflow("logs", "-f", str(first), env=org.env)
            assert run.code == 0, run.stdout + run.stderr
            assert "web |" in run.stdout

            status = windflow("-o", "json", "status", "--stack", "shop", env=org.env)
            assert status.code == 0, status.stderr
            shown = status.json()
            assert (shown["id"], shown["status"]) == (first, "succeeded")
            assert [s["service"] for s in shown["services"]] == ["web"]

            second = _request(org, stack, 2)
            run = windflow("-o", "json", "logs", "-f", str(second), env=org.env)
            assert run.code == 2, run.stdout + run.stderr
            rows = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
            assert rows[-1]["status"]["status"] == "rolled_back"

            never = windflow("rollback", "--stack", "shop", "--to", "2", env=org.env)
            assert never.code == 4
            assert "Revision 2 of 'shop' never deployed successfully" in never.stderr

            again = windflow("rollback", "--stack", "shop", "--to", "1", env=org.env)
            assert again.code == 0, again.stdout + again.stderr
            assert "Deployment #" in again.stdout and "succeeded" in again.stdout
            assert "web" in again.stdout and "100%" in again.stdout

            listed = windflow("-o", "json", "stack", "list", env=org.env)
            assert [s["name"] for s in listed.json()] == ["shop"]
            assert listed.json()[0]["current_revision"] == 1
    finally:
        remove_compose_project(stack.project)


def test_it_refuses_what_the_api_refuses_with_its_message(windflow, org):
    run = windflow("stack", "show", "nothing-here", env=org.env)
    assert run.code == 4
    assert "(not_found)" in run.stderr
    logs = windflow("logs", "--stack", "nothing-here", env=org.env)
    assert logs.code == 4


def test_it_says_a_deployment_waits_for_an_approval_and_follows_it_to_its_end(
    windflow, org, test_images
):
    from apps.deployments.services import reject_deployment, request_deployment

    stack = _stack_with_revisions(org, "approved", web_stack(test_images["web:1"], free_port()))
    connection.set_tenant(org.organization)
    try:
        waiting = request_deployment(org.membership, stack, approval=True, why="a push to main")
    finally:
        connection.set_schema_to_public()
    follower = windflow.start("logs", "-f", str(waiting.pk), env=org.env)
    try:
        follower.wait_for("waits for an approval")
        connection.set_tenant(org.organization)
        try:
            reject_deployment(org.membership, waiting, "not today")
        finally:
            connection.set_schema_to_public()
        run = follower.finish()
    finally:
        follower.kill()
    assert run.code == 3, run.stdout + run.stderr
    rejected = f"Rejected by {org.membership.user.email}: not today"
    assert f"Deployment #{waiting.number} of approved cancelled: {rejected}" in run.stderr


def test_it_asks_for_the_organisation_when_the_url_is_the_servers_own(windflow, org):
    run = windflow("login", "--url", org.url, "--token", org.token)
    assert run.code == 4
    assert f"windflow login --url {org.url} --org SLUG" in run.stderr
    assert not windflow.config_file.exists()
