"""An operator opens the admin's index on the public host, follows "Platform health" and
sees the heartbeat of a real worker process (Chromium, the Procfile's web process)."""

import re
import time

import pytest
from playwright.sync_api import expect

from tests.browser.errors import real_errors, watch_errors
from tests.live import worker_process
from windflow.workers import last_heartbeat

pytestmark = pytest.mark.browser

WORKER_START_SECONDS = 60


def wait_for_heartbeat() -> str:
    """The identity of the worker once it beats (it starts slowly on a busy machine)."""
    deadline = time.monotonic() + WORKER_START_SECONDS
    while (identity := last_heartbeat()) is None:
        assert time.monotonic() < deadline, "the worker never sent a heartbeat"
        time.sleep(0.2)
    return identity


def test_it_shows_a_live_worker_heartbeat_to_an_operator(live_db, open_page, login_as):
    operator = live_db.create_user("ops-health@windflow.test", "pw-health-123456", is_staff=True)
    with worker_process(threads=1):
        identity = wait_for_heartbeat()
        page = open_page()
        errors = watch_errors(page)
        base = login_as(page, operator)
        page.goto(base + "/admin/")
        page.get_by_role("link", name="Platform health").click()
        page.wait_for_url(base + "/admin/health/")

        workers = page.get_by_test_id("health-workers")
        row = workers.get_by_role("row").filter(has_text=identity)
        expect(row).to_contain_text(re.compile(r"\d+ seconds? ago"))
        expect(page.get_by_role("link", name="/healthz")).to_have_attribute("href", "/healthz")
        assert real_errors(errors) == []
