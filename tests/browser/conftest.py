"""Browser tests: the real ASGI app served by the Procfile's web process in a subprocess, on
the pytest-django test database, driven by headless Chromium (Playwright).

Fixtures (reusable by any test under tests/browser/):

- `asgi_server` (session): a running web process (gunicorn, windflow.gunicorn); `.url` is
  ``http://localhost:<port>`` (the public host), `.org_url(slug, path)` an organisation's URL,
  `.port`, `.log_path`, `.log_tail()`.
- `live_db` (function, tests/conftest.py): database access for the whole test WITHOUT the
  rolled-back transaction of `db` (the server only sees committed rows). Anything the test
  creates must be registered with `live_db.track_organization(slug)` /
  `live_db.track_user(email)` (or made with `live_db.create_user(...)`): it is deleted at
  teardown, even when the test fails.
- `chromium` (module): a headless Playwright Chromium browser (module-scoped on purpose: see
  its docstring).
- `open_page` (function): `open_page(device="desktop"|"phone", locale="en-GB")` gives a page
  in a fresh context (no cookies) sized 1366x800 or 390x844, whose browser asks for `locale`
  (Accept-Language); contexts close at teardown.
- `login_as` (function): `login_as(page, user, organization=None)` signs `user` in on the
  organisation's host (public host when None) with a real session in Redis, without a page
  visit or a database write, and returns that host's base URL. Redis is flushed before each
  test, so call it inside the test.
- `screenshot` (function): `screenshot(page, "name")` saves ``var/screenshots/<name>.png``.

Tests that use these must not use `db` (its transaction is never committed, so the server
would not see the rows): take `live_db` instead. Mark them `@pytest.mark.browser`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.live import close_connections, live_server

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
CHROMIUM = os.environ.get("WINDFLOW_CHROMIUM", "/usr/bin/chromium")  # Debian's package
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# A laptop (1366 px, the width the issue 11 tour was run at) and a phone.
VIEWPORTS = {"desktop": {"width": 1366, "height": 800}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(scope="session")
def asgi_server(django_db_setup, tmp_path_factory):
    """The web process on the test database (committed data only)."""
    with live_server(tmp_path_factory.mktemp("asgi-server")) as server:
        yield server


@pytest.fixture(scope="module")
def chromium():
    """Playwright's sync API keeps an asyncio loop "running" in this thread while it is open,
    which makes Django refuse ORM calls (SynchronousOnlyOperation). So the browser lives only
    as long as one test module, and the ORM is allowed beside it meanwhile (it is still plain
    synchronous code in this thread); tests of other modules never run with either."""
    from playwright.sync_api import expect, sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"No Chromium at {CHROMIUM}: `apt-get install chromium` (never `playwright install`), "
            "set WINDFLOW_CHROMIUM, or deselect these tests with -m 'not browser'."
        )
    expect.set_options(timeout=10_000)
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                yield browser
            finally:
                close_connections()
                browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def open_page(chromium):
    contexts = []

    def _open(device: str = "desktop", locale: str = "en-GB"):
        context = chromium.new_context(viewport=VIEWPORTS[device], locale=locale)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield _open
    for context in contexts:
        context.close()


@pytest.fixture
def screenshot():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def _save(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return _save


@pytest.fixture
def login_as(asgi_server):
    def _login(page, user, organization=None) -> str:
        from importlib import import_module

        from django.conf import settings
        from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

        session = import_module(settings.SESSION_ENGINE).SessionStore()
        session[SESSION_KEY] = user._meta.pk.value_to_string(user)
        session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.save()
        base = asgi_server.org_url(organization.slug, "") if organization else asgi_server.url
        cookie = {"name": settings.SESSION_COOKIE_NAME, "value": session.session_key}
        page.context.add_cookies([{**cookie, "url": base + "/"}])
        return base

    return _login
