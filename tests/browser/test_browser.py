"""A newcomer's first minutes, in headless Chromium against the real ASGI app: sign up, create
an organisation, land on its own host, create environments and search them (HTMX)."""

import re
import secrets

import pytest
from playwright.sync_api import expect

from tests.browser.errors import real_errors, watch_errors

pytestmark = pytest.mark.browser

DEVICES = ["desktop", "phone"]
PASSWORD = "Gusty-Turbine-42-Blades!"


def open_menu_if_collapsed(page) -> None:
    """On a phone the navigation hides behind the toggler, as a user would find it."""
    toggler = page.locator(".navbar-toggler")
    if toggler.is_visible() and toggler.get_attribute("aria-expanded") != "true":
        toggler.click()
        # Bootstrap adds "show" once the opening animation is over.
        expect(page.locator("#mainnav")).to_have_class(re.compile(r"\bshow\b"))


def nav_link(page, name: str):
    open_menu_if_collapsed(page)
    return page.locator("#mainnav").get_by_role("link", name=name, exact=True)


def sign_up(page, server, email: str) -> None:
    page.goto(server.url + "/")
    page.get_by_role("main").get_by_role("link", name="Create an account").click()
    page.wait_for_url(server.url + "/accounts/signup/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password (again)").fill(PASSWORD)


def sign_in(page, server, email: str, password: str, shot=None) -> None:
    page.goto(server.url + "/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    if shot:
        shot()
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.url + "/")


def create_environment(page, *, name: str, kind: str, protected: bool = False, shot=None):
    """From the list page: the form, then the new environment's page."""
    page.get_by_role("link", name="New environment").click()
    page.wait_for_url(re.compile(r"/environments/add/$"))
    page.get_by_label("Name").fill(name)
    page.get_by_label("Kind").select_option(label=kind)
    if protected:
        page.get_by_label("Protected").check()
    if shot:
        shot()
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(rf"/environments/{name}/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(name)


@pytest.mark.parametrize("device", DEVICES)
def test_it_takes_a_newcomer_from_sign_up_to_a_searchable_list_of_environments(
    asgi_server, live_db, open_page, screenshot, device
):
    from django.db import connection

    from apps.environments.models import Environment
    from apps.tenants.models import Organization

    suffix = secrets.token_hex(3)
    email, slug = f"newcomer-{suffix}@zenith.test", f"zenith-{suffix}"
    live_db.track_user(email)
    live_db.track_organization(slug)
    page = open_page(device)
    errors = watch_errors(page)
    shot = lambda name: screenshot(page, f"{device}-{name}")  # noqa: E731

    # Public host: landing page, sign-up.
    page.goto(asgi_server.url + "/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("WindFlow")
    shot("01-landing")
    sign_up(page, asgi_server, email)
    shot("02-signup")
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(asgi_server.url + "/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your organisations")
    shot("03-home-empty")

    # A new organisation, then the handoff to its own host, signed in.
    page.get_by_role("main").get_by_role("link", name="New organisation").click()
    page.wait_for_url(asgi_server.url + "/organizations/new/")
    page.get_by_label("Organisation name").fill("Zenith Labs")
    page.get_by_label("Address").fill(slug)
    shot("04-organization-form")
    page.get_by_role("button", name="Create organisation").click()
    page.wait_for_url(asgi_server.org_url(slug, "/"))
    assert page.url == asgi_server.org_url(slug, "/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Zenith Labs")
    expect(page).to_have_title(re.compile("Zenith Labs"))
    shot("05-dashboard")
    assert Organization.objects.get(slug=slug).name == "Zenith Labs"

    # Environments: empty, then staging, then a protected production.
    environments_link = nav_link(page, "Environments")
    if device == "phone":
        shot("05-menu-open")
    environments_link.click()
    page.wait_for_url(asgi_server.org_url(slug, "/environments/"))
    expect(page.locator("#environment-table")).to_contain_text("No environment yet")
    shot("06-environments-empty")
    create_environment(page, name="staging", kind="Staging")
    nav_link(page, "Environments").click()
    page.wait_for_url(asgi_server.org_url(slug, "/environments/"))
    create_environment(
        page,
        name="production",
        kind="Production",
        protected=True,
        shot=lambda: shot("07-environment-form"),
    )
    assert page.url == asgi_server.org_url(slug, "/environments/production/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Protected")
    shot("08-environment-detail")

    breadcrumb = page.get_by_role("navigation", name="breadcrumb")
    breadcrumb.get_by_role("link", name="Environments").click()
    page.wait_for_url(asgi_server.org_url(slug, "/environments/"))
    rows = page.locator("#environment-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("production")
    expect(rows.nth(0)).to_contain_text("Protected")
    expect(rows.nth(1)).to_contain_text("staging")
    shot("09-environments-list")

    # Search as you type: HTMX swaps the table in place (no page load) and keeps the URL.
    page.evaluate("window.__samePage = true")
    page.get_by_role("searchbox", name="Search").fill("prod")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("production")
    expect(page.locator("#environment-table")).not_to_contain_text("staging")
    page.wait_for_url(re.compile(r"[?&]q=prod\b"))
    assert page.evaluate("window.__samePage") is True
    shot("10-environments-search")

    connection.set_tenant(Organization.objects.get(slug=slug))
    try:
        stored = {e.slug: (e.kind, e.protected) for e in Environment.objects.all()}
    finally:
        connection.set_schema_to_public()
    assert stored == {"staging": ("staging", False), "production": ("prod", True)}
    assert real_errors(errors) == [], "\n".join(errors)


@pytest.mark.parametrize("device", DEVICES)
def test_it_refuses_a_reserved_address_inline_and_creates_nothing(
    asgi_server, live_db, open_page, screenshot, device
):
    from apps.tenants.models import Organization

    suffix = secrets.token_hex(3)
    email = f"reserved-{suffix}@zenith.test"
    user = live_db.create_user(email, PASSWORD)
    organizations_before = Organization.objects.count()
    page = open_page(device)
    errors = watch_errors(page)

    sign_in(
        page, asgi_server, email, PASSWORD, shot=lambda: screenshot(page, f"{device}-00-sign-in")
    )
    page.goto(asgi_server.url + "/organizations/new/")
    page.get_by_label("Organisation name").fill("Admin Corp")
    page.get_by_label("Address").fill("admin")
    page.get_by_role("button", name="Create organisation").click()

    slug_input = page.get_by_label("Address")
    expect(slug_input).to_have_class(re.compile(r"\bis-invalid\b"))
    feedback = page.locator("#id_slug ~ .invalid-feedback")
    expect(feedback).to_have_text("“admin” is reserved. Please choose another address.")
    expect(feedback).to_be_visible()
    assert page.url == asgi_server.url + "/organizations/new/"
    # What the user typed is kept, so only the address needs changing.
    expect(page.get_by_label("Organisation name")).to_have_value("Admin Corp")
    expect(slug_input).to_have_value("admin")
    screenshot(page, f"{device}-11-organization-reserved")

    assert Organization.objects.count() == organizations_before
    assert not Organization.objects.filter(slug="admin").exists()
    assert not user.memberships.exists()
    assert real_errors(errors) == [], "\n".join(errors)


def test_it_keeps_a_signed_in_outsider_out_of_another_organisation(
    asgi_server, live_db, open_page, login_as
):
    from apps.accounts.models import User
    from apps.tenants.models import Organization
    from tests.base import PERSONAS

    acme = Organization.objects.get(slug="acme")
    globex = Organization.objects.get(slug="globex")
    outsider = User.objects.get(email=PERSONAS["outsider"][0])
    page = open_page()
    errors = watch_errors(page)

    page.goto(login_as(page, outsider, globex) + "/environments/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Environments")
    expect(page.get_by_test_id("org-switcher")).to_contain_text("Globex")

    response = page.goto(login_as(page, outsider, acme) + "/environments/")
    assert response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("You are not a member of Acme")
    expect(page.locator("#environment-table")).to_have_count(0)
    assert [e for e in real_errors(errors) if "403" not in e] == [], "\n".join(errors)
