"""The rollback flow as a person meets it (issue 11): after an automatic rollback the stack's
page offers to fix the broken revision, not to deploy it again; "Roll back…" appears only
when there is a good revision to go back to, and leads to buttons that do it; Cancel asks
first."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.errors import real_errors, watch_errors
from tests.browser.worlds import deployed, in_thread, stack_world

pytestmark = pytest.mark.browser

DEVICES = ["desktop", "phone"]


def rolled_back_history(world):
    """r1 and r2 deployed with success, r3 failed its health gate and was rolled back to r2
    (which runs). -> the deployment of r3"""
    from apps.stacks.models import StackRevision

    stack, membership = world.stack, world.membership
    r1, r2 = stack.revisions.get(number=1), stack.revisions.get(number=2)
    r3 = StackRevision.objects.create(stack=stack, number=3, compose=r2.compose, message="broken")
    deployed(membership, stack, r1, "succeeded")
    deployed(membership, stack, r2, "succeeded")
    return deployed(
        membership,
        stack,
        r3,
        "rolled_back",
        reason="web never became healthy",
        rolled_back_to=r2,
    )


def lonely_history(world):
    """Stack `lonely`: r1 deployed with success (it runs), r2 rolled back to it: there is no
    earlier good revision to roll back to. -> the deployment of r2"""
    from apps.stacks.models import Stack, StackRevision

    stack = Stack.objects.create(name="lonely", environment=world.environment, target=world.target)
    compose = world.stack.revisions.get(number=1).compose
    r1 = StackRevision.objects.create(stack=stack, number=1, compose=compose)
    r2 = StackRevision.objects.create(stack=stack, number=2, compose=compose)
    deployed(world.membership, stack, r1, "succeeded")
    return deployed(world.membership, stack, r2, "rolled_back", rolled_back_to=r1)


@pytest.mark.parametrize("device", DEVICES)
def test_it_guides_a_rollback_from_a_failed_revision_to_a_good_one(
    live_db, open_page, login_as, screenshot, device
):
    from apps.deployments.models import Deployment

    organization, owner, world = stack_world(live_db, "roll")
    broken = in_thread(organization, lambda: rolled_back_history(world))
    lonely = in_thread(organization, lambda: lonely_history(world))
    count = lambda: in_thread(organization, Deployment.objects.count)  # noqa: E731
    before = count()
    page = open_page(device)
    errors = watch_errors(page)
    dialogs = []
    base = login_as(page, owner, organization)

    # The stack's page: fixing r3 comes first; deploying it again asks first.
    page.goto(f"{base}/stacks/shop/")
    expect(page.get_by_test_id("failed-latest")).to_contain_text("Revision 3")
    expect(page.get_by_test_id("fix")).to_have_class(re.compile(r"\bbtn-primary\b"))
    deploy = page.get_by_test_id("deploy")
    expect(deploy).to_have_text(re.compile("Deploy revision 3 again"))
    expect(deploy).not_to_have_class(re.compile(r"\bbtn-primary\b"))
    screenshot(page, f"{device}-stack-after-rollback")
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    deploy.click()
    assert dialogs and "Revision 3" in dialogs[-1]
    assert page.url == f"{base}/stacks/shop/"
    assert count() == before

    # No "Roll back…" where no earlier good revision exists.
    page.goto(f"{base}/deployments/{lonely.pk}/")
    expect(page.get_by_test_id("deployment-status")).to_have_text("Rolled back")
    expect(page.get_by_test_id("roll-back")).to_have_count(0)

    # "Roll back…" leads to a button per good revision other than the running one.
    page.goto(f"{base}/deployments/{broken.pk}/")
    page.get_by_test_id("roll-back").click()
    page.wait_for_url(f"{base}/stacks/shop/revisions/")
    expect(page.get_by_test_id("rollback-1")).to_be_visible()
    expect(page.get_by_test_id("rollback-2")).to_have_count(0)  # it runs
    expect(page.get_by_test_id("rollback-3")).to_have_count(0)  # never succeeded
    screenshot(page, f"{device}-rollback-list")
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    page.get_by_test_id("rollback-1").click()
    page.wait_for_url(re.compile(r"/deployments/\d+/$"))
    assert "revision 1" in dialogs[-1]
    expect(page.locator("#messages")).to_contain_text("Rolling back to revision 1.")
    assert count() == before + 1

    # Cancel asks first: dismissed, nothing changes; accepted, the deployment is cancelled.
    cancel = page.get_by_test_id("cancel")
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    cancel.click()
    assert "Cancel deployment" in dialogs[-1]
    expect(page.get_by_test_id("deployment-status")).to_have_text("Queued")
    page.once("dialog", lambda dialog: dialog.accept())
    cancel.click()
    expect(page.get_by_test_id("deployment-status")).to_have_text("Cancelled")
    assert real_errors(errors) == []
