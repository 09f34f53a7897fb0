"""The operator console in Chromium (issue 12): a platform operator opens the failed and
stuck deployments of every organisation on the public host's admin, narrows them to the
failures, and follows a row to that organisation's Data page."""

import pytest
from playwright.sync_api import expect

from tests.browser.worlds import deployed, in_thread, stack_world

pytestmark = pytest.mark.browser


def test_it_takes_an_operator_from_a_failed_deployment_to_its_organisations_data(
    live_db, open_page, login_as, screenshot
):
    organization, _owner, world = stack_world(live_db, "ops")
    failed = in_thread(
        organization,
        lambda: deployed(
            world.membership,
            world.stack,
            world.stack.revisions.get(number=2),
            "failed",
            reason="web exited with code 3",
        ),
    )
    operator = live_db.create_user(
        f"ops-{organization.slug}@windflow.test",
        "pw-live-123456",
        is_staff=True,
        is_superuser=True,
    )

    page = open_page()
    base = login_as(page, operator)
    page.goto(f"{base}/admin/")
    page.get_by_role("link", name="Failed and stuck deployments").first.click()
    row = page.locator("#result_list tbody tr", has_text=organization.name)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("shop")
    expect(row).to_contain_text(str(failed.pk))
    expect(row).to_contain_text("web exited with code 3")
    page.get_by_role("link", name="Failed", exact=True).click()  # the "problem" filter
    expect(row).to_have_count(1)
    screenshot(page, "operator-failed-deployments")

    row.get_by_test_id("organization-link").click()
    expect(page).to_have_url(f"{base}/admin/tenants/organization/{organization.pk}/data/")
    expect(page.locator("h1")).to_contain_text(organization.name)
    expect(page.locator("body")).to_contain_text("web exited with code 3")
