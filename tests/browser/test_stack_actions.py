"""A stop / start / restart / remove that failed is shown on the stack's page with its outcome
and the fix, in a real browser, at desktop and phone sizes, in English and French."""

import threading

import pytest
from django.db import connection

from tests.base import add_ssh_target
from tests.deploying import make_world


def _refused_restart(live_db, server, root_key) -> tuple:
    """An organisation whose stack runs on `server`, whose host key then changed, and a
    restart of it that the worker recorded as failed."""
    import secrets

    from apps.stacks import control, runtime
    from apps.tenants.services import create_organization

    suffix = secrets.token_hex(3)
    owner = live_db.create_user(f"owner-{suffix}@actions.test", "pw-live-123456")
    live_db.track_organization(f"act-{suffix}")
    organization = create_organization(name=f"Act {suffix}", slug=f"act-{suffix}", owner=owner)
    made, failures = [], []

    def setup():
        connection.set_tenant(organization)
        try:
            world = make_world(organization, owner)
            stack = world.stack
            stack.target = add_ssh_target(world.membership, server, root_key, name="rekeyed")
            stack.current_revision = stack.revisions.get(number=1)
            stack.save()
            server.rotate_host_key()
            requested = control.request_control(world.membership, stack, "restart")
            runtime.run_control(requested.pk)
            made.append(stack.get_absolute_url())
        except Exception as exc:  # reported to the test
            failures.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=setup)  # writes like a worker, beside Playwright's loop
    thread.start()
    thread.join(60)
    assert not failures, failures
    return organization, owner, made[0]


@pytest.mark.browser
@pytest.mark.parametrize(("device", "language"), [("desktop", "en"), ("phone", "fr")])
def test_it_shows_a_refused_restart_with_its_fix_on_the_stack_page(
    live_db, open_page, login_as, sshd_of_its_own, root_key, device, language
):
    from playwright.sync_api import expect

    organization, owner, url = _refused_restart(live_db, sshd_of_its_own, root_key)
    page = open_page(device)
    page.set_extra_http_headers({"Accept-Language": language})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    base = login_as(page, owner, organization)
    page.goto(f"{base}{url}")
    item = page.locator('[data-testid="stack-action"]')
    expect(item).to_have_count(1)
    expect(item).to_have_attribute("data-status", "failed")
    expect(item.locator(".badge")).to_have_text("Failed" if language == "en" else "Échec")
    expect(item).to_contain_text("restart failed")
    expect(item.locator('[data-testid="stack-action-hint"]')).to_contain_text(
        "re-confirm the host key"
    )
    # The list fits the screen (the navbar is another matter: its own tests).
    fits = "e => Math.max(...[e, ...e.querySelectorAll('*')].map(x => x.getBoundingClientRect()"
    fits += ".right)) <= window.innerWidth"
    assert page.locator('[data-testid="stack-actions"]').evaluate(fits)
    assert errors == []
