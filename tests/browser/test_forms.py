"""Forms that help (issue 11): the server form shows the fields of the chosen connection
only, a pasted compose file is checked at once, invitation links can be copied and lead to
a sign-up form with the invited address, and an organisation's address is suggested from
its name."""

import re
import secrets

import pytest
from playwright.sync_api import expect

from tests.browser.errors import real_errors, watch_errors
from tests.browser.worlds import organization_with_owner

pytestmark = pytest.mark.browser

DEVICES = ["desktop", "phone"]


@pytest.mark.parametrize("device", DEVICES)
def test_it_shows_the_server_fields_of_the_chosen_connection_only(
    live_db, open_page, login_as, screenshot, device
):
    organization, owner = organization_with_owner(live_db, "srv")
    page = open_page(device)
    errors = watch_errors(page)
    page.goto(login_as(page, owner, organization) + "/servers/add/")
    kind = page.get_by_label("Connection")
    ssh_fields = ["Host", "SSH port", "SSH user", "Or paste a private key", "Key passphrase"]
    tls_fields = ["TLS: CA certificate (PEM)", "TLS: client certificate (PEM)"]

    kind.select_option("ssh")
    for label in ssh_fields:
        expect(page.get_by_label(label, exact=True)).to_be_visible()
    for label in tls_fields:
        expect(page.get_by_label(label, exact=True)).to_be_hidden()

    kind.select_option("local")
    for label in ssh_fields + tls_fields:
        expect(page.get_by_label(label, exact=True)).to_be_hidden()
    expect(page.get_by_label("Generate a new ed25519 key pair for me")).to_be_hidden()
    screenshot(page, f"{device}-server-form-local")

    kind.select_option("tcp_tls")
    for label in ["Host", *tls_fields]:
        expect(page.get_by_label(label, exact=True)).to_be_visible()
    expect(page.get_by_label("SSH user", exact=True)).to_be_hidden()
    assert real_errors(errors) == []


@pytest.mark.parametrize("device", DEVICES)
def test_it_checks_a_pasted_compose_file_at_once(live_db, open_page, login_as, device):
    organization, owner = organization_with_owner(live_db, "paste")
    page = open_page(device)
    errors = watch_errors(page)
    page.goto(login_as(page, owner, organization) + "/stacks/add/")
    problems = page.locator("#problems")
    expect(problems.locator("[data-state=empty]")).to_be_visible()
    # As a paste does: the value changes with an input event, no key is pressed.
    page.locator("textarea[name=compose]").fill("services:\n  web:\n    ports: [80]\n")
    expect(problems.locator("[data-state=errors]")).to_be_visible()
    assert real_errors(errors) == []


@pytest.mark.parametrize("device", DEVICES)
def test_it_copies_an_invitation_link_that_fills_in_the_sign_up_form(
    live_db, open_page, login_as, device
):
    organization, owner = organization_with_owner(live_db, "invite")
    invited = f"kim-{secrets.token_hex(3)}@invite.test"
    page = open_page(device)
    errors = watch_errors(page)
    base = login_as(page, owner, organization)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page.goto(base + "/settings/invitations/")
    page.get_by_label("Email address").fill(invited)
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator("#messages")).to_contain_text(invited)

    link = page.get_by_label(f"Invitation link for {invited}")
    expect(link).to_have_value(re.compile(rf"^{re.escape(base)}/invitations/[0-9a-f]+/$"))
    url = link.input_value()
    copy = page.get_by_test_id("copy-invitation")
    copy.click()
    expect(copy).to_contain_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == url

    visitor = open_page(device)
    visitor.goto(url)
    visitor.get_by_role("main").get_by_role("link", name="Create account").click()
    expect(visitor.get_by_label("Email")).to_have_value(invited)
    assert real_errors(errors) == []


@pytest.mark.parametrize("device", DEVICES)
def test_it_suggests_the_organisation_address_from_its_name(
    asgi_server, live_db, open_page, login_as, device
):
    user = live_db.create_user(f"founder-{secrets.token_hex(3)}@slug.test", "pw-live-123456")
    page = open_page(device)
    errors = watch_errors(page)
    page.goto(login_as(page, user) + "/organizations/new/")
    name, address = page.get_by_label("Organisation name"), page.get_by_label("Address")
    name.fill("Zénith Labs & Co")
    expect(address).to_have_value("zenith-labs-co")
    name.fill("42 Nova Works")
    expect(address).to_have_value("nova-works")
    address.fill("nova-hq")  # edited by hand: kept from now on
    name.fill("Nova Works International")
    expect(address).to_have_value("nova-hq")
    assert real_errors(errors) == []
