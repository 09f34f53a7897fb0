"""The live pages keep up without a reload (issue 11): the bell's unread count and its open
menu, the deployment header (started, duration, buttons, failure box), the flash messages,
the deployments lists and the running revision."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.errors import real_errors, watch_errors
from tests.browser.worlds import deployed, in_thread, organization_with_owner, run_to, stack_world

pytestmark = pytest.mark.browser

DEVICES = ["desktop", "phone"]


def open_menu_if_collapsed(page) -> None:
    toggler = page.locator(".navbar-toggler")
    if toggler.is_visible() and toggler.get_attribute("aria-expanded") != "true":
        toggler.click()
        expect(page.locator("#mainnav")).to_have_class(re.compile(r"\bshow\b"))


def notify(organization, user, text):
    from apps.notifications.services import notify

    in_thread(organization, lambda: notify([user], verb="test", text=text))


@pytest.mark.parametrize("device", DEVICES)
def test_it_counts_unread_notifications_and_keeps_the_open_menu_on_a_live_one(
    live_db, open_page, login_as, screenshot, device
):
    organization, owner = organization_with_owner(live_db, "bell")
    notify(organization, owner, "first news")
    page = open_page(device)
    errors = watch_errors(page)
    page.goto(login_as(page, owner, organization) + "/")
    open_menu_if_collapsed(page)
    count = page.locator("#bell-count [data-testid=unread-count]")
    expect(count).to_be_visible()
    expect(count).to_have_text("1")

    page.locator("#bell > a").click()
    menu = page.locator("#bell-menu")
    expect(menu).to_be_visible()
    expect(menu).to_contain_text("first news")
    expect(page.locator("body")).to_have_attribute("data-live", "on")
    notify(organization, owner, "second news")
    expect(count).to_have_text("2")
    expect(menu).to_be_visible()
    expect(menu).to_contain_text("second news")
    expect(menu).to_contain_text("first news")  # the open menu is not emptied
    screenshot(page, f"{device}-bell-live")
    assert real_errors(errors) == []


@pytest.mark.parametrize("device", DEVICES)
def test_it_updates_the_deployment_header_and_flash_as_the_deployment_moves(
    live_db, open_page, login_as, screenshot, device
):
    organization, owner, world = stack_world(live_db, "head")
    page = open_page(device)
    errors = watch_errors(page)
    base = login_as(page, owner, organization)
    page.goto(f"{base}/stacks/shop/")
    page.get_by_test_id("deploy").click()
    page.wait_for_url(re.compile(r"/deployments/\d+/$"))
    flash = page.locator("#messages .alert")
    expect(flash).to_contain_text("queued")
    header = page.locator("#deployment-header")
    started = header.locator("[data-role=started]")
    duration = header.locator("[data-role=duration]")
    expect(started).to_have_text("waiting in the queue")
    expect(duration).to_have_text("—")
    expect(page.locator("#deployment-live")).to_have_attribute("data-live", "ws")

    from apps.deployments import journal
    from apps.deployments.models import Deployment

    deployment = in_thread(organization, lambda: Deployment.objects.get(stack=world.stack))
    in_thread(organization, lambda: journal.claim(deployment.pk))
    expect(page.get_by_test_id("deployment-status")).to_have_text("Running")
    expect(started).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$"))
    expect(duration).to_have_text(re.compile(r"^\d+ s$"))
    expect(flash).to_have_count(0)  # "queued" no longer holds
    expect(page.get_by_test_id("cancel")).to_be_visible()

    def succeed():
        deployment.refresh_from_db()
        journal.finish(deployment, "succeeded")

    in_thread(organization, succeed)
    expect(page.get_by_test_id("deployment-status")).to_have_text("Succeeded")
    expect(page.get_by_test_id("cancel")).to_have_count(0)
    expect(page.get_by_test_id("cancelling")).to_have_count(0)
    expect(duration).to_have_text(re.compile(r"^\d+ s$"))
    screenshot(page, f"{device}-deployment-header-live")
    assert real_errors(errors) == []


def test_it_keeps_the_line_breaks_of_a_failure(live_db, open_page, login_as):
    organization, owner, world = stack_world(live_db, "fail")
    reason = "web exited with code 3\nthe last lines follow"
    diagnosis = {
        "summary": "web crashed",
        "hint": "Check the command.\nThen deploy again.",
        "detail": "Traceback:\n  line 1\n  line 2",
    }
    failed = in_thread(
        organization,
        lambda: deployed(
            world.membership,
            world.stack,
            world.stack.revisions.get(number=2),
            "failed",
            reason=reason,
            diagnosis=diagnosis,
        ),
    )
    page = open_page()
    page.goto(f"{login_as(page, owner, organization)}/deployments/{failed.pk}/")
    box = page.get_by_test_id("failure")
    expect(box).to_contain_text("web crashed")
    assert "Traceback:\n  line 1\n  line 2" in box.locator("pre").inner_text()
    assert "web exited with code 3\nthe last lines follow" in box.inner_text()
    assert "Check the command.\nThen deploy again." in box.inner_text()


@pytest.mark.parametrize("device", DEVICES)
def test_it_keeps_the_lists_and_the_running_revision_up_to_date(
    live_db, open_page, login_as, device
):
    organization, owner, world = stack_world(live_db, "lists")
    first = in_thread(
        organization,
        lambda: deployed(
            world.membership, world.stack, world.stack.revisions.get(number=1), "succeeded"
        ),
    )
    page = open_page(device)
    errors = watch_errors(page)
    base = login_as(page, owner, organization)

    # The organisation's list of deployments.
    page.goto(f"{base}/deployments/")
    rows = page.locator("#deployment-table tbody tr")
    expect(rows).to_have_count(1)
    from apps.deployments import services

    second = in_thread(
        organization,
        lambda: services.request_deployment(
            world.membership, world.stack, world.stack.revisions.get(number=2)
        ),
    )
    expect(rows).to_have_count(2, timeout=15_000)
    expect(rows.first.get_by_test_id("deployment-status")).to_have_text("Queued")
    in_thread(organization, lambda: run_to(second, "succeeded"))
    expect(rows.first.get_by_test_id("deployment-status")).to_have_text("Succeeded", timeout=15_000)

    # The stack's page: its running revision and its deployments.
    page.goto(f"{base}/stacks/shop/")
    running = page.locator("#stack-running-revision")
    expect(running).to_have_text("r2")
    third = in_thread(
        organization,
        lambda: services.request_deployment(
            world.membership, world.stack, world.stack.revisions.get(number=1)
        ),
    )
    card = page.locator("#stack-deployments")
    expect(card.locator(f'a[href="/deployments/{third.pk}/"]')).to_be_visible(timeout=15_000)
    in_thread(organization, lambda: run_to(third, "succeeded"))
    expect(running).to_have_text("r1", timeout=15_000)
    expect(card.locator("tbody tr").first.locator("[data-status]")).to_have_text(
        "Succeeded", timeout=15_000
    )
    assert first.status == "succeeded"
    assert real_errors(errors) == []
