"""Stop / start / restart / remove are stored with their outcome (StackAction): the request
answers 202 with the queued action, the worker records how it ended (with the reason's code
and a hint when it failed), and the API and the stack's page show it."""

import pytest
from django.urls import reverse
from django.utils import translation

from apps.deployments.choices import DeploymentStatus
from apps.stacks import control, runtime
from apps.stacks.models import StackAction
from tests.base import add_ssh_target, api_client, client_for, run_queued_jobs
from tests.deploying import deploy


@pytest.fixture(autouse=True)
def _english():
    """The texts checked here are the English ones, whatever a test before left active."""
    with translation.override("en"):
        yield


def test_it_records_a_refused_host_key_and_shows_it_in_the_api_and_the_page(
    membership,
    make_stack,
    sshd_of_its_own,
    root_key,
    acme,
    owner,
    django_capture_on_commit_callbacks,
):
    target = add_ssh_target(membership, sshd_of_its_own, root_key, name="rekeyed")
    stack = make_stack(target=target, name="rekeyed")
    sshd_of_its_own.rotate_host_key()
    api = api_client(owner, acme)
    with django_capture_on_commit_callbacks(execute=True):
        answer = api.post(f"/api/v1/stacks/{stack.name}/control/", {"action": "restart"})
    assert answer.status_code == 202
    queued = answer.json()
    assert (queued["action"], queued["status"], queued["service"]) == ("restart", "queued", None)
    with django_capture_on_commit_callbacks(execute=True):
        assert run_queued_jobs() == ["control_stack"]

    done = api.get(f"/api/v1/stacks/{stack.name}/actions/{queued['id']}/")
    assert done.status_code == 200
    outcome = done.json()
    assert outcome["status"] == "failed"
    assert outcome["code"] == "host_key_changed"
    assert "re-confirm the host key" in outcome["hint"]
    assert "restart failed" in outcome["message"]
    assert outcome["finished_at"]
    listed = api.get(f"/api/v1/stacks/{stack.name}/actions/").json()
    assert [item["id"] for item in listed["results"]] == [queued["id"]]

    page = client_for(owner, acme).get(reverse("stacks:stack_runtime", args=[stack.name]))
    html = page.content.decode()
    assert 'data-testid="stack-action" data-status="failed"' in html
    assert 'data-testid="stack-action-hint"' in html and "re-confirm the host key" in html


def test_it_records_a_stop_that_worked(membership, make_stack, test_images):
    stack = make_stack(f"services:\n  app:\n    image: {test_images['busybox:1']}\n")
    assert deploy(membership, stack).status == DeploymentStatus.SUCCEEDED
    requested = control.request_control(membership, stack, "stop")
    assert requested.status == "queued"
    event = runtime.run_control(requested.pk)
    requested.refresh_from_db()
    assert (requested.status, requested.code, event["ok"]) == ("succeeded", "", True)
    assert "stop done (1 container(s))" in requested.message
    assert requested.finished_at is not None
    # A redelivered message finds it finished and does not act again.
    assert runtime.run_control(requested.pk) == event


def test_it_answers_404_for_an_action_of_another_stack(membership, make_stack, acme, owner):
    mine = make_stack(name="mine")
    other = make_stack(name="other")
    theirs = StackAction.objects.create(stack=other, action="stop", status="failed")
    api = api_client(owner, acme)
    assert api.get(f"/api/v1/stacks/{mine.name}/actions/{theirs.pk}/").status_code == 404
    assert api.get(f"/api/v1/stacks/{other.name}/actions/{theirs.pk}/").status_code == 200
