"""An operator suspends an organisation in the public host's admin (list action, a reason,
the address typed to confirm); a member then reads its pages under the suspension banner,
and a change they try is refused with the reason (issue 12)."""

import pytest
from playwright.sync_api import expect

from tests.browser.errors import real_errors, watch_errors
from tests.browser.worlds import organization_with_owner

pytestmark = pytest.mark.browser

REASON = "Unpaid invoice 42"


def test_it_lets_an_operator_suspend_an_organisation_whose_members_see_why(
    live_db, open_page, login_as, screenshot
):
    from apps.tenants.models import Organization

    organization, owner = organization_with_owner(live_db, "susp")
    operator = live_db.create_user(
        f"ops-{organization.slug}@windflow.test",
        "pw-live-123456",
        is_staff=True,
        is_superuser=True,
    )

    admin_page = open_page()
    errors = watch_errors(admin_page)
    base = login_as(admin_page, operator)
    admin_page.goto(f"{base}/admin/tenants/organization/")
    row = admin_page.locator("#result_list tbody tr", has_text=organization.name)
    row.locator("input.action-select").check()
    admin_page.locator("select[name=action]").select_option("suspend_selected")
    admin_page.get_by_role("button", name="Go").click()
    expect(admin_page).to_have_url(f"{base}/admin/tenants/organization/{organization.pk}/suspend/")

    # A wrong address does nothing.
    admin_page.get_by_label("Reason").fill(REASON)
    admin_page.get_by_label("Type the organisation's address to confirm").fill("nope")
    admin_page.get_by_test_id("lifecycle-submit").click()
    expect(admin_page.locator(".errorlist")).to_contain_text(f"Type {organization.slug} exactly")
    organization.refresh_from_db()
    assert not organization.is_suspended

    admin_page.get_by_label("Type the organisation's address to confirm").fill(organization.slug)
    admin_page.get_by_test_id("lifecycle-submit").click()
    expect(admin_page.locator(".messagelist")).to_contain_text(f"{organization.name} is suspended")
    expect(admin_page.get_by_test_id("lifecycle-reactivate")).to_be_visible()
    screenshot(admin_page, "operator-suspended-organisation")
    assert Organization.objects.get(pk=organization.pk).suspended_reason == REASON
    assert not real_errors(errors), errors

    member_page = open_page()
    member_errors = watch_errors(member_page)
    org_base = login_as(member_page, owner, organization)
    member_page.goto(f"{org_base}/environments/")
    banner = member_page.get_by_test_id("suspension-banner")
    expect(banner).to_be_visible()
    expect(member_page.get_by_test_id("suspension-reason")).to_have_text(REASON)
    expect(banner).to_contain_text("support@windflow.local")
    screenshot(member_page, "member-suspension-banner")
    assert not real_errors(member_errors), member_errors

    # A change is refused with the reason (the add form still opens: reading is allowed).
    member_page.goto(f"{org_base}/environments/add/")
    member_page.get_by_label("Name").fill("production")
    member_page.locator("form button[type=submit]").last.click()
    expect(member_page.locator("body")).to_contain_text(
        f"{organization.name} is suspended ({REASON})"
    )
