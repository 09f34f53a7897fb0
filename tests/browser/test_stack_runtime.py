"""A deployed stack on the real Docker engine, at desktop and phone sizes (issue 11): the
services panel fits the screen and keeps its log links, Stop asks first, and a container's
log page follows the new container after a redeploy instead of saying it stopped."""

import re
import secrets

import pytest
from playwright.sync_api import expect

from devtools import remove_compose_project
from tests.browser.errors import real_errors, watch_errors
from tests.browser.worlds import in_thread, organization_with_owner
from tests.live import assign_test_engine

pytestmark = pytest.mark.browser

DEVICES = ["desktop", "phone"]


def talker(image: str, mark: str) -> str:
    return f"""
services:
  app:
    image: {image}
    command: ["sh", "-c", "echo hello {mark}; exec sleep 3600"]
"""


def deployed_stack(organization, owner, image: str, project: str):
    """Stack `project` (one `app` service that says hello) deployed on the test engine."""
    from apps.accounts.models import Membership
    from apps.environments.models import Environment
    from apps.stacks import services as stacks
    from apps.targets import services as targets
    from tests.deploying import deploy

    membership = Membership.objects.get(user=owner, organization=organization)
    staging = Environment.objects.create(name="staging", slug="staging")
    server = targets.create_target(membership, name="local", kind="local")
    stack = stacks.create_stack(
        membership,
        name=project,
        environment=staging,
        target=server,
        compose=talker(image, "one"),
        description="A stack whose description is long enough to push a table past a phone's "
        "width when it is not truncated to what the screen can hold.",
        grace_period=0,
    )
    deployment = deploy(membership, stack)
    assert deployment.status == "succeeded", deployment.reason
    return membership, stack


def redeploy(membership, stack, image: str):
    from apps.stacks import services as stacks
    from tests.deploying import deploy

    stack.refresh_from_db()
    stacks.revise_stack(membership, stack, compose=talker(image, "two"))
    deployment = deploy(membership, stack)
    assert deployment.status == "succeeded", deployment.reason


def assert_fits(page) -> None:
    """Nothing wider than the screen, and no table scrolled sideways (a clipped column)."""
    overflow = page.evaluate(
        """() => {
          const out = [];
          if (document.documentElement.scrollWidth > window.innerWidth) {
            out.push("page " + document.documentElement.scrollWidth);
          }
          document.querySelectorAll(".table-responsive").forEach((box) => {
            if (box.scrollWidth > box.clientWidth + 1) {
              const where = (box.closest("[id]") || box).id;
              out.push(where + " " + box.scrollWidth + ">" + box.clientWidth);
            }
          });
          return out;
        }"""
    )
    assert overflow == []


@pytest.mark.parametrize("device", DEVICES)
def test_it_shows_the_logs_of_a_stack_and_follows_a_redeploy(
    live_db, open_page, login_as, screenshot, test_images, device
):
    organization, owner = organization_with_owner(live_db, "rt")
    assign_test_engine(organization)
    project = f"wf-rt-{secrets.token_hex(3)}"
    image = test_images["busybox:1"]
    try:
        membership, stack = in_thread(
            organization, lambda: deployed_stack(organization, owner, image, project)
        )
        page = open_page(device)
        errors = watch_errors(page)
        base = login_as(page, owner, organization)

        page.goto(f"{base}/stacks/")
        expect(page.locator("tbody tr")).to_have_count(1)
        assert_fits(page)
        for path in ("/deployments/", "/servers/", "/environments/"):
            page.goto(base + path)
            expect(page.locator("tbody tr").first).to_be_visible()
            assert_fits(page)

        page.goto(f"{base}/stacks/{project}/")
        runtime = page.get_by_test_id("stack-runtime")
        expect(runtime).to_contain_text("running", timeout=15_000)
        link = page.get_by_test_id(f"logs-{project}-app-1")
        expect(link).to_be_visible()
        assert_fits(page)
        screenshot(page, f"{device}-stack-runtime")

        dialogs = []
        page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.get_by_test_id("stack-stop").click()
        assert dialogs and dialogs[0].startswith(f"Stop {project}")

        link.click()
        page.wait_for_url(re.compile(rf"/stacks/{project}/runtime/containers/.+/logs/$"))
        log = page.locator("#container-log")
        expect(log).to_contain_text("hello one")
        root = page.locator("#container-logs")
        expect(root).to_have_attribute("data-live", "ws")

        in_thread(organization, lambda: redeploy(membership, stack, image))
        expect(log.locator("[data-role=replaced]")).to_contain_text(f"{project}-app-1")
        expect(log).to_contain_text("hello two", timeout=20_000)
        expect(root).to_have_attribute("data-live", "ws")
        screenshot(page, f"{device}-container-log-redeployed")
        assert real_errors(errors) == []
    finally:
        remove_compose_project(project)
