"""The demo of `make run`: its `hello` stack deploys with no registry reachable (the image is
built on the demo's engine from this machine's busybox), and the Docker Hub example waits
beside it, not deployed."""

from io import StringIO

from django.core.management import call_command
from django_tenants.utils import tenant_context

from apps.accounts.models import Membership
from apps.deployments.choices import DeploymentStatus
from apps.environments.models import Environment
from apps.stacks.models import Stack
from apps.tenants.models import Organization
from devtools import DEMO_IMAGE, build_demo_image, free_port, remove_compose_project
from tests.deploying import deploy, log_text, page
from windflow.management.commands import setup_demo


def test_it_deploys_the_demo_stack_with_no_registry_reachable(db, docker_socket, tmp_path):
    assert setup_demo.DEMO_IMAGE == DEMO_IMAGE  # what make run builds is what the demo runs
    build_demo_image(tmp_path, docker_host=f"unix://{docker_socket}")  # as devtools.runlocal
    call_command("setup_demo", stdout=StringIO())
    demo = Organization.objects.get(slug="demo")
    port = free_port()
    with tenant_context(demo):
        hello = Stack.objects.get(name="hello")
        try:
            # Only the port changes (8081 may be taken on a test machine).
            Environment.objects.filter(pk=hello.environment_id).update(
                variables={"WEB_PORT": str(port)}
            )
            hello.refresh_from_db()
            owner = Membership.objects.get(organization=demo, role="owner")
            deployment = deploy(owner, hello)
            assert deployment.status == DeploymentStatus.SUCCEEDED, log_text(deployment)
            assert "pull" not in log_text(deployment)  # no registry was asked for anything
            assert "Hello from WindFlow" in page(port)
        finally:
            remove_compose_project(hello.project)
        hub = Stack.objects.get(name="hello-hub")
        assert "image: nginx:" in hub.latest_revision.compose  # the Docker Hub example
        assert not hub.deployments.exists() and hub.current_revision is None
