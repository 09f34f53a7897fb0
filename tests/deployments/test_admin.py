"""The deployment admin (issue 11): why a deployment failed reads as text, not JSON."""

from django.db import connection

from apps.deployments import services
from tests.base import client_for, support_client


def test_it_renders_why_a_deployment_failed_for_people(
    failed_deployment, operator_of_platform, acme
):
    client = support_client(operator_of_platform, acme)
    response = client.get(f"/admin/deployments/deployment/{failed_deployment.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "<strong>web exited with code 3</strong> <code>container_exited</code>" in page
    assert "Service: <strong>web</strong>" in page
    assert "How to fix it: Read the container&#x27;s log: it stopped by itself." in page
    assert '<pre class="wf-diagnosis-detail">line one\nline two</pre>' in page
    assert "&quot;summary&quot;" not in page and '"summary"' not in page


def test_it_deletes_no_deployment_from_the_organisation_admin(membership, make_stack, acme, owner):
    """Deployments are a record: no bulk delete, no delete page, even for the owner."""
    deployment = services.request_deployment(membership, make_stack())
    connection.set_schema_to_public()
    client = client_for(owner, acme)
    listing = client.get("/admin/deployments/deployment/")
    assert listing.status_code == 200
    assert 'name="action"' not in listing.content.decode()
    response = client.post(
        "/admin/deployments/deployment/",
        {"action": "delete_selected", "_selected_action": [deployment.pk], "post": "yes"},
    )
    assert response.status_code in (200, 302)
    delete_url = f"/admin/deployments/deployment/{deployment.pk}/delete/"
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    connection.set_tenant(acme)
    assert type(deployment).objects.filter(pk=deployment.pk).exists()
