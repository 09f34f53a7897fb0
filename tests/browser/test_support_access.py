"""Support access in Chromium (issue 12): an operator signs in once on the platform admin,
asks for read-only support access to an organisation with a reason, opens it (the session
is handed over to the organisation's host), sees the banner and the organisation's data, and
a change is refused."""

import secrets

import pytest
from playwright.sync_api import expect

from tests.browser.errors import real_errors, watch_errors
from tests.browser.worlds import stack_world

pytestmark = pytest.mark.browser


def test_it_gives_an_operator_read_only_support_access_behind_a_banner(
    live_db, asgi_server, open_page, screenshot
):
    organization, _owner, _world = stack_world(live_db, "support")
    email = f"ops-{secrets.token_hex(3)}@windflow.test"
    operator = live_db.create_user(email, "pw-live-123456", is_staff=True, is_superuser=True)
    page = open_page("desktop")
    errors = watch_errors(page)

    # One sign-in, on the platform admin.
    page.goto(asgi_server.url + "/admin/login/")
    page.get_by_label("Email").fill(operator.email)
    page.get_by_label("Password").fill("pw-live-123456")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#tenants-organization")).to_be_visible()

    # The organisation's page: ask for support access, without a reason first.
    page.goto(asgi_server.url + f"/admin/tenants/organization/{organization.pk}/change/")
    page.get_by_role("link", name="Request support access").click()
    page.get_by_role("button", name="Start support access").click()
    expect(page.locator(".errorlist")).to_contain_text("This field is required")
    page.get_by_label("Reason").fill("Ticket 314: the shop does not deploy")
    expect(page.get_by_label("Read-write (changes allowed, each one audited)")).not_to_be_checked()
    page.get_by_role("button", name="Start support access").click()

    # Open it: the organisation's admin, on its own host, signed in without a second sign-in.
    page.get_by_role("button", name=f"Open {organization.name}").click()
    expect(page).to_have_url(asgi_server.org_url(organization.slug, "/admin/"))
    banner = page.locator("#support-banner")
    expect(banner).to_contain_text(email)
    expect(banner).to_contain_text("Ticket 314: the shop does not deploy")
    expect(banner).to_contain_text("Read-only")
    expect(page.get_by_role("link", name="People and access")).to_have_count(0)
    page.goto(asgi_server.org_url(organization.slug, "/admin/stacks/stack/"))
    expect(page.get_by_role("link", name="shop")).to_be_visible()
    expect(page.locator("#support-banner")).to_be_visible()
    screenshot(page, "support-access-admin")

    # The organisation's pages, behind the same banner; a change is refused.
    page.goto(asgi_server.org_url(organization.slug, "/environments/add/"))
    expect(page.locator("#support-banner")).to_contain_text("Read-only")
    page.locator("input[name=name]").fill("qa")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_text("Read-only support access: nothing can be changed.")).to_be_visible()
    screenshot(page, "support-access-refused")
    assert real_errors(errors) == []
