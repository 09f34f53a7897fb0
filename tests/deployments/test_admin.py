"""The deployment admin (issue 11): why a deployment failed reads as text, not JSON."""

from django.db import connection

from apps.accounts.models import User
from apps.deployments import journal, services
from apps.deployments.choices import DeploymentStatus
from tests.base import PASSWORD, client_for


def test_it_renders_why_a_deployment_failed_for_people(membership, make_stack, acme):
    deployment = services.request_deployment(membership, make_stack())
    journal.finish(
        deployment,
        DeploymentStatus.FAILED,
        "web exited with code 3",
        {
            "code": "container_exited",
            "summary": "web exited with code 3",
            "service": "web",
            "hint": "Read the container's log: it stopped by itself.",
            "detail": "line one\nline two",
        },
    )
    connection.set_schema_to_public()
    staff = User.objects.create_superuser("ops@windflow.test", PASSWORD)
    response = client_for(staff, acme).get(f"/admin/deployments/deployment/{deployment.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "<strong>web exited with code 3</strong> <code>container_exited</code>" in page
    assert "Service: <strong>web</strong>" in page
    assert "How to fix it: Read the container&#x27;s log: it stopped by itself." in page
    assert '<pre class="wf-diagnosis-detail">line one\nline two</pre>' in page
    assert "&quot;summary&quot;" not in page and '"summary"' not in page
