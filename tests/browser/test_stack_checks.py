"""The checks of a compose file as a person meets them on the new-stack page: a refused
stack lists every error on the form, and the Checks panel's notes are in the reader's
language, at desktop and phone sizes."""

import secrets

import pytest
from django.db import connection
from playwright.sync_api import expect

from tests.browser.errors import real_errors, watch_errors
from tests.live import assign_test_engine

pytestmark = pytest.mark.browser

SIZES = {"desktop": {"width": 1366, "height": 800}, "phone": {"width": 390, "height": 844}}
NAMES = ("ONE", "TWO", "THREE", "FOUR", "FIVE")
COMPOSE = (
    "name: shop\n"
    "services:\n"
    "  web:\n"
    "    image: nginx:1.27\n"
    "    container_name: web\n"
    "    environment:\n" + "".join(f"      V{n}: ${{{name}}}\n" for n, name in enumerate(NAMES))
)
TEXTS = {
    "en": {
        "container": "a fixed container name stops a redeploy",
        "name": "WindFlow ignores the project name of the file",
    },
    "fr": {
        "container": "un nom de conteneur fixe empêche un redéploiement",
        "name": "WindFlow ignore le nom de projet du fichier",
    },
}


def organization_with_a_server(live_db):
    """A committed organisation (tracked by live_db) with a staging environment and a local
    server. -> (organization, owner)"""
    from apps.accounts.models import Membership
    from apps.environments.models import Environment
    from apps.targets import services as targets
    from apps.tenants.services import create_organization

    suffix = secrets.token_hex(3)
    owner = live_db.create_user(f"owner-{suffix}@checks.test", "pw-live-123456")
    live_db.track_organization(f"chk-{suffix}")
    organization = create_organization(name=f"Chk {suffix}", slug=f"chk-{suffix}", owner=owner)
    assign_test_engine(organization)
    connection.set_tenant(organization)
    try:
        membership = Membership.objects.get(user=owner, organization=organization)
        Environment.objects.create(name="staging", slug="staging")
        targets.create_target(membership, name="local", kind="local")
    finally:
        connection.set_schema_to_public()
    return organization, owner


@pytest.mark.parametrize(("device", "language"), [("desktop", "en"), ("phone", "fr")])
def test_it_lists_every_missing_variable_and_the_notes_in_the_readers_language(
    live_db, chromium, login_as, device, language
):
    organization, owner = organization_with_a_server(live_db)
    context = chromium.new_context(viewport=SIZES[device], locale=language)
    try:
        page = context.new_page()
        errors = watch_errors(page)
        base = login_as(page, owner, organization)
        page.goto(f"{base}/stacks/add/")
        page.locator("#id_name").fill("shop")
        page.locator("#id_environment").select_option(label="staging")
        page.locator("#id_target").select_option(label="local")
        page.locator("#id_compose").fill(COMPOSE)
        text = TEXTS[language]
        checks = page.locator("#problems")
        expect(checks.locator('[data-rule="container-name"]')).to_contain_text(text["container"])
        expect(checks.locator('[data-rule="project-name-ignored"]')).to_contain_text(text["name"])
        expect(checks.locator('[data-rule="variable-missing"]')).to_have_count(len(NAMES))

        page.locator("#stack-form button[type=submit]").click()
        field = page.locator("div.mb-3", has=page.locator("#id_compose"))
        feedback = field.locator(".invalid-feedback")
        expect(feedback).to_have_count(len(NAMES))
        for index, name in enumerate(NAMES):
            expect(feedback.nth(index)).to_contain_text(f'"{name}"')
            if language == "en":
                expect(feedback.nth(index)).to_contain_text(f"(line {7 + index})")
            expect(feedback.nth(index)).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= SIZES[device]["width"]
        assert real_errors(errors) == []  # no check is aborted, so htmx logs nothing
    finally:
        context.close()
