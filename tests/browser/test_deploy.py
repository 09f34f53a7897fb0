"""A deployment as a person makes it: the Deploy button on the stack's page, a real worker
process, the real Docker engine; the live page follows it to "Succeeded", then the stack's
page shows what runs."""

import secrets

import pytest
from django.db import connection
from playwright.sync_api import expect

from devtools import free_port, remove_compose_project
from tests.browser.errors import real_errors, watch_errors
from tests.live import assign_test_engine, worker_process

pytestmark = pytest.mark.browser


def organization_with_a_stack(live_db, test_images, project: str, port: int):
    """A committed organisation (tracked by live_db) whose local server has stack `project`
    (api + web on 127.0.0.1:`port`), not deployed. -> (organization, owner)"""
    from apps.accounts.models import Membership
    from apps.environments.models import Environment
    from apps.stacks import services as stacks
    from apps.targets import services as targets
    from apps.tenants.services import create_organization

    suffix = secrets.token_hex(3)
    owner = live_db.create_user(f"owner-{suffix}@deploy.test", "pw-live-123456")
    live_db.track_organization(f"dep-{suffix}")
    organization = create_organization(name=f"Dep {suffix}", slug=f"dep-{suffix}", owner=owner)
    assign_test_engine(organization)  # platform staff gave it the test Docker engine
    connection.set_tenant(organization)
    try:
        membership = Membership.objects.get(user=owner, organization=organization)
        staging = Environment.objects.create(name="staging", slug="staging")
        server = targets.create_target(membership, name="local", kind="local")
        stacks.create_stack(
            membership,
            name=project,
            environment=staging,
            target=server,
            compose=f"""
services:
  api:
    image: {test_images["web:2"]}
  web:
    image: {test_images["web:1"]}
    ports: ["127.0.0.1:{port}:8080"]
    depends_on: {{api: {{condition: service_healthy}}}}
""",
        )
    finally:
        connection.set_schema_to_public()
    return organization, owner


def test_it_deploys_from_the_stack_page_and_follows_it_live(
    live_db, open_page, login_as, test_images
):
    project = f"wf-browser-{secrets.token_hex(3)}"
    organization, owner = organization_with_a_stack(live_db, test_images, project, free_port())
    try:
        with worker_process():
            page = open_page()
            errors = watch_errors(page)
            base = login_as(page, owner, organization)
            page.goto(f"{base}/stacks/{project}/")
            page.get_by_test_id("deploy").click()
            status = page.get_by_test_id("deployment-status").first
            expect(status).to_have_text("Succeeded", timeout=60_000)
            for service in ("api", "web"):
                bar = page.locator(f'[data-service="{service}"] progress')
                expect(bar).to_have_js_property("value", 100)
            expect(page.locator("#deployment-log")).to_contain_text("healthy")

            page.goto(f"{base}/stacks/{project}/")
            runtime = page.locator("#stack-runtime")
            expect(runtime).to_contain_text("healthy", timeout=15_000)
            expect(runtime).to_contain_text(f"{project}-web-1")
            assert real_errors(errors) == []
    finally:
        remove_compose_project(project)
