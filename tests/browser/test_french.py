"""French in Chromium, at 1366 px and 390 px: the language switch of the user menu, and a tour
of every page of an organisation (and of the public host) by a member who chose French from a
browser that asks for English: no console error, no horizontal overflow, a navigation bar
that holds every menu (or collapses behind its toggler on a phone), no English left."""

from __future__ import annotations

import re
import secrets

import pytest
from django.db import connection
from playwright.sync_api import expect

from tests.browser.errors import real_errors, watch_errors
from tests.browser.worlds import in_thread
from tests.untranslated import (
    BROWSER_TEXTS,
    english_left,
    fail_with_a_diagnosis,
    organization_pages,
)

pytestmark = pytest.mark.browser

DEVICES = ["desktop", "phone"]
PASSWORD = "pw-french-tour-42"

# How far the page reaches past the window's right edge (0 when nothing overflows).
OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"
# The innermost elements that reach past the window's right edge, to say what overflows.
OVERFLOWING = """() => [...document.body.querySelectorAll('*')]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5
    && ![...e.children].some(c => c.getBoundingClientRect().right > window.innerWidth + 0.5))
  .slice(0, 3)
  .map(e => `${e.tagName.toLowerCase()}.${[...e.classList].join(".")} `
    + `"${e.textContent.trim().slice(0, 40)}"`)"""
# The status and content type of a page, asked from the page (same host, same cookies).
ASK = """async (url) => {
  const response = await fetch(url, {redirect: "manual"});
  return [response.status, response.headers.get("content-type")];
}"""
# Menu entries of the navigation bar that reach past the window's right edge.
CUT_OFF = """() => [...document.querySelectorAll('nav.navbar .nav-link, nav.navbar .navbar-brand')]
  .filter(a => a.offsetParent !== null && a.getBoundingClientRect().right > window.innerWidth)
  .map(a => a.textContent.trim())"""


def _world(live_db, language: str):
    """An organisation with one object of every kind (tests/security/world.py), a failed
    deployment with a diagnosis, and its owner, who chose `language` ("" for none)."""
    from apps.accounts.models import Membership
    from apps.tenants.services import create_organization
    from tests.security.world import build_victim, give_test_engine

    suffix = secrets.token_hex(3)
    owner = live_db.create_user(f"tour-{suffix}@tour.test", PASSWORD)
    owner.language = language
    owner.save(update_fields=["language"])
    live_db.track_organization(f"tour-{suffix}")
    live_db.track_user(f"vic{suffix}-member@victim.test")
    organization = create_organization(name=f"Tour {suffix}", slug=f"tour-{suffix}", owner=owner)
    give_test_engine(organization)
    made = {}

    def build():
        made["victim"] = build_victim(organization, owner, tag=suffix)
        fail_with_a_diagnosis(made["victim"].deployment)

    in_thread(organization, build)
    connection.set_schema_to_public()
    membership = Membership.objects.get(user=owner, organization=organization)
    return organization, owner, made["victim"], membership


def _open_menu_if_collapsed(page) -> None:
    toggler = page.locator(".navbar-toggler")
    if toggler.is_visible() and toggler.get_attribute("aria-expanded") != "true":
        toggler.click()
        expect(page.locator("#mainnav")).to_have_class(re.compile(r"\bshow\b"))


def _problems_of(page, errors: list[str]) -> list[str]:
    problems = [f"console: {e}" for e in real_errors(errors)]
    if (overflow := page.evaluate(OVERFLOW)) > 0:
        problems.append(f"{overflow} px of horizontal overflow: {page.evaluate(OVERFLOWING)}")
    if cut := page.evaluate(CUT_OFF):
        problems.append(f"menu entries cut off: {cut}")
    french = page.locator("html").get_attribute("lang") == "fr"
    if french and (left := english_left(page.evaluate(BROWSER_TEXTS))):
        problems.append(f"English left: {left}")
    return problems


@pytest.mark.parametrize("device", DEVICES)
def test_it_switches_the_language_from_the_user_menu_and_remembers_it(
    asgi_server, live_db, open_page, login_as, screenshot, device
):
    from apps.accounts.models import User

    organization, owner, _victim, _membership = _world(live_db, "")
    page = open_page(device, locale="en-GB")
    errors = watch_errors(page)
    base = login_as(page, owner, organization)
    page.goto(base + "/environments/")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Environments")

    _open_menu_if_collapsed(page)
    page.get_by_test_id("user-menu").click()
    page.get_by_test_id("language-form").get_by_role("button", name="Français").click()

    page.wait_for_url(base + "/environments/")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("heading", level=1)).to_have_text("Environnements")
    screenshot(page, f"{device}-french-environments")
    assert User.objects.get(pk=owner.pk).language == "fr"
    # Another browser asking for English: the person's choice follows them.
    elsewhere = open_page(device, locale="en-GB")
    elsewhere.goto(login_as(elsewhere, owner, organization) + "/stacks/")
    expect(elsewhere.locator("html")).to_have_attribute("lang", "fr")

    _open_menu_if_collapsed(page)
    page.get_by_test_id("user-menu").click()
    page.get_by_test_id("language-form").get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    assert User.objects.get(pk=owner.pk).language == "en"
    assert real_errors(errors) == [], "\n".join(errors)


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("device", DEVICES)
def test_it_fits_the_navigation_bar_in_both_languages(
    asgi_server, live_db, open_page, login_as, screenshot, device, language
):
    """The longest bar: an organisation's name, an audit log, the bell and a long email."""
    organization, owner, _victim, _membership = _world(live_db, language)
    page = open_page(device, locale="en-GB")
    errors = watch_errors(page)
    page.goto(login_as(page, owner, organization) + "/")
    expect(page.locator("html")).to_have_attribute("lang", language)
    user_menu = page.get_by_test_id("user-menu")

    if device == "desktop":
        expect(page.locator(".navbar-toggler")).to_be_hidden()
        box = user_menu.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 1366, box
        nav = page.locator("nav.navbar").bounding_box()
        assert nav["height"] < 70, nav  # one line
    else:
        expect(user_menu).to_be_hidden()
        _open_menu_if_collapsed(page)
        expect(user_menu).to_be_visible()
        expect(user_menu).to_contain_text(owner.email)
    user_menu.click()
    expect(page.get_by_test_id("language-form")).to_be_visible()
    screenshot(page, f"{device}-{language}-navbar")
    assert _problems_of(page, errors) == []


@pytest.mark.parametrize("device", DEVICES)
def test_it_tours_every_page_in_french_with_nothing_left_in_english(
    asgi_server, live_db, open_page, login_as, device
):
    organization, owner, victim, membership = _world(live_db, "fr")
    page = open_page(device, locale="en-GB")
    base = login_as(page, owner, organization)
    page.goto(base + "/")
    errors = watch_errors(page)
    problems, toured = {}, 0
    for path in organization_pages(victim, membership):
        # Asked first with the page's cookies: a page that answers POST only, an object
        # that is not there (container logs), or a download (an export) is not toured.
        status, kind = page.evaluate(ASK, base + path)
        if status != 200 or "html" not in (kind or ""):
            continue
        seen = len(errors)
        page.goto(base + path)
        toured += 1
        if found := _problems_of(page, errors[seen:]):
            problems[path] = found
    anonymous = open_page(device, locale="fr-FR")
    errors = watch_errors(anonymous)
    for path in ("/", "/accounts/login/", "/accounts/signup/"):
        seen = len(errors)
        assert anonymous.goto(asgi_server.url + path).status == 200
        toured += 1
        if found := _problems_of(anonymous, errors[seen:]):
            problems[f"public {path}"] = found
    assert toured > 20, toured
    assert problems == {}, "\n".join(f"{p}: {found}" for p, found in problems.items())
