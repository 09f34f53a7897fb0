"""The live deployment page in a real browser: it follows a deployment over the websocket,
or by polling when the browser has no websockets."""

import pytest

from apps.deployments import journal, services
from apps.deployments.choices import DeploymentStatus, ServicePhase
from tests.browser.worlds import in_thread
from tests.deploying import make_world, progress


def _live_page_world(live_db):
    import secrets

    from apps.tenants.services import create_organization

    suffix = secrets.token_hex(3)
    owner = live_db.create_user(f"owner-{suffix}@deploy.test", "pw-live-123456")
    live_db.track_organization(f"dep-{suffix}")
    organization = create_organization(name=f"Dep {suffix}", slug=f"dep-{suffix}", owner=owner)
    made = []

    def setup():
        world = make_world(organization, owner)
        made.append(services.request_deployment(world.membership, world.stack))
        progress(made[0], lines=2)

    in_thread(organization, setup)
    return organization, owner, made[0]


@pytest.mark.browser
@pytest.mark.parametrize("transport", ["ws", "poll"])
def test_it_follows_a_deployment_live_in_the_browser(live_db, open_page, login_as, transport):
    from playwright.sync_api import expect

    organization, owner, deployment = _live_page_world(live_db)
    page = open_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    if transport == "poll":  # a browser or proxy without websockets
        page.add_init_script("delete window.WebSocket;")
    base = login_as(page, owner, organization)
    page.goto(f"{base}/deployments/{deployment.pk}/")
    log = page.locator("#deployment-log .log-line")
    expect(log).to_have_count(2)
    expect(page.locator("#deployment-live")).to_have_attribute("data-live", transport)

    def advance():
        journal.append_log(deployment, "pulling busybox", service="web")
        journal.set_service(deployment, "web", phase=ServicePhase.START, progress=70, message="")
        journal.set_service(deployment, "db", phase=ServicePhase.PULL, progress=10, message="")

    in_thread(organization, advance)
    expect(log).to_have_count(3)
    expect(log.nth(2)).to_contain_text("web | pulling busybox")
    expect(page.locator('[data-service="web"] progress')).to_have_js_property("value", 70)
    expect(page.locator('[data-service="db"] [data-role=phase]')).to_have_text("Pulling")
    expect(page.get_by_test_id("cancel")).to_be_visible()

    in_thread(
        organization,
        lambda: journal.finish(
            deployment,
            DeploymentStatus.FAILED,
            "port 8080 already allocated",
            {"summary": "port 8080 already allocated", "hint": "Free the port."},
        ),
    )
    expect(page.get_by_test_id("failure")).to_contain_text("port 8080 already allocated")
    expect(page.get_by_test_id("deployment-status")).to_have_text("Failed")
    expect(page.get_by_test_id("cancel")).to_have_count(0)
    expect(page.get_by_test_id("resume")).to_be_visible()
    expect(log).to_have_count(3)  # nothing twice
    assert [e for e in errors if "favicon" not in e] == []


@pytest.mark.browser
@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_it_names_a_deployment_by_the_number_of_its_url(live_db, open_page, login_as, device):
    """The second stack's first deployment is "blog #<id>" where its URL says <id>, on its
    page and in the list, at both sizes (not "blog #1")."""
    import re

    from playwright.sync_api import expect

    from apps.accounts.models import Membership
    from apps.stacks.models import Stack, StackRevision
    from tests.deploying import BUSYBOX_COMPOSE

    organization, owner, first = _live_page_world(live_db)
    made = []

    def second_stack():
        blog = Stack.objects.create(
            name="blog", environment=first.stack.environment, target=first.target
        )
        StackRevision.objects.create(stack=blog, number=1, compose=BUSYBOX_COMPOSE)
        membership = Membership.objects.get(user=owner, organization=organization)
        made.append(services.request_deployment(membership, blog))

    in_thread(organization, second_stack)
    deployment = made[0]
    assert deployment.number == 1 and deployment.pk > 1
    page = open_page(device)
    base = login_as(page, owner, organization)
    page.goto(f"{base}/deployments/{deployment.pk}/")
    expect(page.locator("h1")).to_contain_text(f"blog #{deployment.pk}")
    expect(page.locator("h1")).not_to_contain_text("blog #1 ")
    expect(page).to_have_title(re.compile(rf"^blog #{deployment.pk} "))
    page.goto(f"{base}/deployments/")
    expect(page.get_by_role("link", name=f"blog #{deployment.pk}")).to_be_visible()
