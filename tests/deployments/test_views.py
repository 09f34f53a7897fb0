"""The deployment pages: list, deploy from a stack page, the live page and its polling
fallback, cancel and resume, and isolation between organisations. No worker runs: progress is
written with the services the runner uses."""

import re

from django.db import connection
from docker.errors import APIError

from apps.accounts.models import Membership
from apps.deployments import journal, services
from apps.deployments.choices import DeploymentStatus, LogLevel
from apps.deployments.models import Deployment
from apps.environments.models import Environment
from apps.stacks.models import Stack, StackRevision
from apps.targets.models import Target
from tests.base import api_client, client_for
from tests.deploying import progress
from windflow.engine.diagnose import diagnose_error


def test_it_deploys_a_stack_from_its_page_and_redirects_to_the_live_page(world, acme, owner):
    client = client_for(owner, acme)
    response = client.post("/deployments/new/", {"stack": "shop", "revision": "1"})
    deployment = Deployment.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/deployments/{deployment.pk}/"
    assert (deployment.number, deployment.revision.number) == (1, 1)
    assert deployment.status == DeploymentStatus.QUEUED

    htmx = client.post("/deployments/new/", {"stack": "shop"}, HTTP_HX_REQUEST="true")
    second = Deployment.objects.get(number=2)
    assert htmx["HX-Redirect"] == f"/deployments/{second.pk}/"
    assert second.revision.number == 2  # the latest by default


def test_it_answers_bad_deploy_requests_with_a_message_not_an_error(world, acme, owner, viewer):
    client = client_for(owner, acme)
    for data in (
        {"stack": "nope"},
        {"stack": "shop", "revision": "9"},
        {"stack": "shop", "revision": "x"},
    ):
        response = client.post("/deployments/new/", data, follow=True)
        assert response.status_code == 200
        assert response.context["messages"]
    refused = client_for(viewer, acme).post("/deployments/new/", {"stack": "shop"}, follow=True)
    assert "does not allow you to deploy" in refused.content.decode()
    assert client.get("/deployments/new/").status_code == 405
    assert not Deployment.objects.exists()


def test_it_renders_the_live_page_with_bars_lines_and_failure(world, acme, viewer):
    deployment = services.request_deployment(world.membership, world.stack)
    progress(deployment)
    journal.append_log(deployment, "boom", level=LogLevel.ERROR, service="web")
    deployment.rolled_back_to = world.stack.revisions.get(number=1)
    deployment.save()
    journal.finish(
        deployment,
        DeploymentStatus.ROLLED_BACK,
        "web did not become healthy",
        {
            "code": "healthcheck",
            "summary": "healthcheck failing: last output curl: connection refused",
            "detail": "curl: (7) Failed to connect",
            "service": "web",
            "hint": "Check the port the app listens on.",
        },
    )
    page = client_for(viewer, acme).get(f"/deployments/{deployment.pk}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-service="web"' in html and '<progress class="w-100" max="100" value="40"' in html
    assert 'data-seq="4"' in html and "text-danger" in html
    assert "healthcheck failing: last output curl: connection refused" in html
    assert "Check the port the app listens on." in html
    assert "Rolled back to revision 1." in html
    assert f'data-ws="/ws/deployments/{deployment.pk}/"' in html and 'data-last-seq="4"' in html
    assert 'data-testid="cancel"' not in html and 'data-testid="resume"' not in html


def test_it_says_why_a_deployment_failed_in_the_readers_language(world, acme, viewer):
    error = APIError(
        "400 Client Error",
        explanation='OCI runtime create failed: exec: "gunicorn": executable file not found '
        "in $PATH: unknown",
    )
    diagnosis = diagnose_error(error, service="web")
    deployment = services.request_deployment(world.membership, world.stack)
    journal.finish(deployment, DeploymentStatus.FAILED, diagnosis.summary, diagnosis.as_dict())
    client = client_for(viewer, acme)
    english = client.get(f"/deployments/{deployment.pk}/").content.decode()
    assert "command not found in the image: gunicorn" in english
    assert "The image has no program of that name" in english
    french = client.get(f"/deployments/{deployment.pk}/", HTTP_ACCEPT_LANGUAGE="fr")
    html = french.content.decode()
    assert "commande introuvable dans l\u2019image : gunicorn" in html
    assert "L\u2019image n\u2019a aucun programme de ce nom" in html
    assert "command not found in the image" not in html  # the reason is the same summary
    api = api_client(viewer, acme)
    stored = api.get(f"/api/v1/deployments/{deployment.pk}/").json()["diagnosis"]
    assert stored["code"] == "command_not_found"
    assert stored["text"] == {
        "template": "command not found in the image: %(command)s",
        "args": {"command": "gunicorn"},
    }


def test_it_serves_only_newer_lines_to_the_polling_fallback(world, acme, viewer):
    deployment = services.request_deployment(world.membership, world.stack)
    progress(deployment, lines=5)
    client = client_for(viewer, acme)
    partial = client.get(f"/deployments/{deployment.pk}/log/?after=3", HTTP_HX_REQUEST="true")
    html = partial.content.decode()
    assert 'data-seq="4"' in html and 'data-seq="5"' in html and 'data-seq="3"' not in html
    assert 'hx-swap-oob="beforeend"' in html and 'data-last-seq="5"' in html
    assert 'id="deployment-services" hx-swap-oob="true"' in html

    body = client.get(f"/deployments/{deployment.pk}/log/?after=3&format=json").json()
    assert [line["seq"] for line in body["lines"]] == [4, 5]
    assert body["next_after"] == 5 and body["finished"] is False
    assert body["services"][0]["progress"] == 40 and body["status"]["status"] == "queued"

    text = client.get(f"/deployments/{deployment.pk}/log/?format=text")
    assert "web: line 5" in text.content.decode()
    bad = client.get(f"/deployments/{deployment.pk}/log/?after=-1")
    assert bad.status_code == 400 and "after" in bad.json()["error"]["message"]


def test_it_cancels_a_queued_deployment_and_resumes_it(world, acme, operator):
    deployment = services.request_deployment(world.membership, world.stack)
    client = client_for(operator, acme)
    page = client.get(f"/deployments/{deployment.pk}/").content.decode()
    assert 'data-testid="cancel"' in page

    response = client.post(f"/deployments/{deployment.pk}/cancel/")
    assert response.status_code == 302
    deployment.refresh_from_db()
    assert deployment.status == DeploymentStatus.CANCELLED

    again = client.post(f"/deployments/{deployment.pk}/cancel/", follow=True)
    assert "already finished" in again.content.decode()

    page = client.get(f"/deployments/{deployment.pk}/").content.decode()
    assert 'data-testid="resume"' in page and "Cancelled before it started." in page
    resumed = client.post(f"/deployments/{deployment.pk}/resume/", HTTP_HX_REQUEST="true")
    new = Deployment.objects.get(resumed_from=deployment)
    assert resumed["HX-Redirect"] == f"/deployments/{new.pk}/"
    assert new.kind == "resume" and new.status == DeploymentStatus.QUEUED


def test_it_refuses_cancel_to_a_viewer(world, acme, viewer):
    deployment = services.request_deployment(world.membership, world.stack)
    client = client_for(viewer, acme)
    assert (
        'data-testid="cancel"' not in client.get(f"/deployments/{deployment.pk}/").content.decode()
    )
    response = client.post(f"/deployments/{deployment.pk}/cancel/")
    assert response.status_code == 403
    deployment.refresh_from_db()
    assert deployment.status == DeploymentStatus.QUEUED


def test_it_lists_and_filters_deployments(world, acme, viewer):
    first = services.request_deployment(world.membership, world.stack)
    services.cancel_deployment(world.membership, first)
    second = services.request_deployment(world.membership, world.stack)
    one, two = f"shop #{first.pk}", f"shop #{second.pk}"  # deployments are named by their id
    client = client_for(viewer, acme)
    html = client.get("/deployments/").content.decode()
    assert one in html and two in html
    partial = client.get("/deployments/?status=cancelled", HTTP_HX_REQUEST="true")
    assert one in partial.content.decode() and two not in partial.content.decode()
    assert "<html" not in partial.content.decode()
    none = client.get("/deployments/?stack=other", HTTP_HX_REQUEST="true").content.decode()
    assert "No deployment matches" in none
    assert client.get("/deployments/?status=bogus&page=99").status_code == 200


def test_it_keeps_deployments_inside_their_organisation(world, acme, globex, outsider):
    deployment = services.request_deployment(world.membership, world.stack)
    connection.set_schema_to_public()
    # A member of globex on acme's host: not a member here.
    on_acme = client_for(outsider, acme).get(f"/deployments/{deployment.pk}/")
    assert on_acme.status_code == 403
    # On globex's own host the id does not exist.
    client = client_for(outsider, globex)
    assert client.get(f"/deployments/{deployment.pk}/").status_code == 404
    assert client.get(f"/deployments/{deployment.pk}/log/?format=json").status_code == 404
    assert client.post(f"/deployments/{deployment.pk}/cancel/").status_code == 404
    connection.set_tenant(acme)
    deployment.refresh_from_db()
    assert deployment.status == DeploymentStatus.QUEUED


def test_it_answers_odd_page_input_without_an_error(world, acme, owner):
    client = client_for(owner, acme)
    huge = "9" * 30
    assert client.get(f"/deployments/{huge}/").status_code == 404
    response = client.post("/deployments/new/", {"stack": "shop", "revision": huge}, follow=True)
    assert response.status_code == 200 and "has no revision" in response.content.decode()
    deployment = services.request_deployment(world.membership, world.stack)
    log = f"/deployments/{deployment.pk}/log/"
    assert client.get(log, {"after": huge, "format": "json"}).status_code == 400
    assert client.get(log, {"format": "xml"}).status_code == 400
    assert client.get(f"/deployments/{deployment.pk}/resume/").status_code == 405


def test_it_shows_recent_deployments_on_the_overview(owner, viewer, acme, globex, outsider):
    connection.set_tenant(acme)
    environment = Environment.objects.create(name="staging", slug="staging")
    target = Target.objects.create(name="web-1", slug="web-1", kind="local")
    stack = Stack.objects.create(name="shop", environment=environment, target=target)
    StackRevision.objects.create(stack=stack, number=1, compose="services: {}\n")
    membership = Membership.objects.get(user=owner, organization=acme)
    deployment = services.request_deployment(membership, stack)
    journal.finish(deployment, DeploymentStatus.FAILED, "port 8080 already allocated")
    connection.set_schema_to_public()

    page = client_for(viewer, acme).get("/").content.decode()
    assert f"shop #{deployment.pk}" in page  # deployments are named by their id
    assert "port 8080 already allocated" in page
    assert f"shop #{deployment.pk}" not in client_for(outsider, globex).get("/").content.decode()


def test_it_names_a_deployment_by_the_number_of_its_url(world, acme, viewer):
    """One number per deployment: "blog #9" is /deployments/9/ on every page, although it is
    the first deployment of blog (the API keeps that count as `number`)."""
    from apps.notifications.models import Notification

    services.request_deployment(world.membership, world.stack)  # shop's takes an id first
    blog = Stack.objects.create(name="blog", environment=world.environment, target=world.target)
    StackRevision.objects.create(stack=blog, number=1, compose="services: {}\n")
    deployment = services.request_deployment(world.membership, blog)
    assert deployment.number == 1 and deployment.pk > 1
    url, name = f"/deployments/{deployment.pk}/", f"blog #{deployment.pk}"
    assert deployment.get_absolute_url() == url and str(deployment) == name
    journal.finish(deployment, DeploymentStatus.FAILED, "port 8080 already allocated")
    client = client_for(viewer, acme)
    page = client.get(url).content.decode()
    assert f"<title>{name}" in page
    assert f'<span class="text-secondary">#{deployment.pk}</span>' in page  # the heading
    assert not re.search(r"blog #1\b", page) and ">#1<" not in page
    assert name in client.get("/deployments/").content.decode()
    stack_page = client.get("/stacks/blog/").content.decode()
    assert f'<a href="{url}">#{deployment.pk}</a>' in stack_page
    connection.set_schema_to_public()
    assert name in client.get("/").content.decode()  # the overview's recent deployments
    connection.set_tenant(acme)
    told = Notification.objects.filter(url=url).get()
    assert told.text.startswith(f"{name}: failed")
