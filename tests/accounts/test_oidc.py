"""Single sign-on, end to end: a real OpenID Connect provider (tests/oidc/provider.mjs, npm
oidc-provider) and our real Django views (mozilla-django-oidc's /oidc/authenticate/ and
/oidc/callback/ with WindFlowOIDCBackend), on an organisation's host and on the public host.

The Django side is django.test.Client (bound to a host); the provider side is httpx driven by
complete_login(). The redirects between the two are carried by hand, as a browser would."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client

from tests.oidc_provider import complete_login, loopback_client, start_oidc_provider

CLIENT_ID = "windflow-tests"
CLIENT_SECRET = "windflow-tests-secret-" + "s" * 16
BACKEND = "apps.accounts.oidc.WindFlowOIDCBackend"
UNVERIFIED = "eve@x.test"
UNVERIFIED_AS_STRING = "mallory@x.test"  # some providers send booleans as strings

# Django's test Client serves "acme.localhost" on port 80, so mozilla-django-oidc's
# absolutify() (request.build_absolute_uri) gives the callback without a port.
ACME_HOST = "acme.localhost"
PUBLIC_HOST = "localhost"
CALLBACKS = {host: f"http://{host}/oidc/callback/" for host in (ACME_HOST, PUBLIC_HOST)}


@pytest.fixture(scope="session")
def oidc_provider():
    with start_oidc_provider(
        CLIENT_ID,
        CLIENT_SECRET,
        list(CALLBACKS.values()),
        accounts={
            UNVERIFIED: {"email_verified": False},
            UNVERIFIED_AS_STRING: {"email_verified": "false"},
        },
    ) as provider:
        yield provider


@pytest.fixture
def sso(settings, oidc_provider):
    """WindFlow configured for single sign-on with the test provider (what the OIDC_* env
    variables do at import time in production)."""
    for name, value in oidc_provider.mozilla_django_oidc_settings().items():
        setattr(settings, name, value)
    settings.OIDC_PROVIDER_NAME = "Test IdP"
    settings.WINDFLOW_OIDC_ENABLED = True
    if BACKEND not in settings.AUTHENTICATION_BACKENDS:
        settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, BACKEND]
    return oidc_provider


def start_sso(client: Client, host: str) -> str:
    """GET /oidc/authenticate/ on `host`; return the provider URL it redirects to."""
    response = client.get("/oidc/authenticate/")
    assert response.status_code == 302, response
    authorize = response["Location"]
    params = parse_qs(urlsplit(authorize).query)
    assert params["redirect_uri"] == [CALLBACKS[host]]
    assert params["client_id"] == [CLIENT_ID]
    assert params["state"] and params["nonce"]
    return authorize


def start_sso_with_next(client: Client, next_path: str) -> str:
    response = client.get("/oidc/authenticate/", {"next": next_path})
    assert response.status_code == 302
    return response["Location"]


def log_in_at_provider(authorize: str, login: str, host: str) -> str:
    """Sign in as `login` at the provider and consent; return the callback URL it sends the
    browser back to (not followed)."""
    with loopback_client() as browser:
        back = complete_login(browser, authorize, login)
    location = back.headers["location"]
    assert location.split("?", 1)[0] == CALLBACKS[host], location
    return location


def sign_in_with_sso(client: Client, host: str, login: str):
    """The whole round trip; returns the response of our /oidc/callback/."""
    callback = log_in_at_provider(start_sso(client, host), login, host)
    return client.get(callback)


def signed_in_user_id(client: Client):
    return client.session.get(SESSION_KEY)


def test_it_signs_in_an_existing_member_with_sso(sso, acme, developer):
    client = Client(HTTP_HOST=ACME_HOST)

    response = sign_in_with_sso(client, ACME_HOST, "developer@acme.test")

    assert response.status_code == 302, response
    assert response["Location"] == "/"
    assert signed_in_user_id(client) == str(developer.pk)
    assert client.session["_auth_user_backend"] == BACKEND
    dashboard = client.get("/")
    assert dashboard.status_code == 200
    assert dashboard.templates[0].name == "accounts/dashboard.html"
    assert dashboard.context["user"] == developer
    assert dashboard.context["membership"].role == "developer"


def test_it_signs_in_on_the_public_host_and_honours_next(sso, owner):
    client = Client(HTTP_HOST=PUBLIC_HOST)

    authorize = start_sso_with_next(client, "/organizations/new/")
    response = client.get(log_in_at_provider(authorize, "owner@acme.test", PUBLIC_HOST))

    assert response.status_code == 302
    assert response["Location"] == "/organizations/new/"
    assert signed_in_user_id(client) == str(owner.pk)
    home = client.get("/")
    assert home.status_code == 200
    assert "Acme" in home.content.decode()


def test_it_creates_an_account_on_first_sso_sign_in(sso, acme):
    from apps.accounts.models import Membership, User

    client = Client(HTTP_HOST=ACME_HOST)

    response = sign_in_with_sso(client, ACME_HOST, "Nora.Newcomer@Elsewhere.test")

    assert response.status_code == 302, response
    user = User.objects.get(email="nora.newcomer@elsewhere.test")
    assert user.full_name == "Nora Newcomer"
    assert not user.has_usable_password()
    assert not Membership.objects.filter(user=user).exists()
    assert signed_in_user_id(client) == str(user.pk)
    dashboard = client.get("/")
    assert dashboard.status_code == 403
    assert "You are not a member of Acme" in dashboard.content.decode()


def test_it_signs_in_the_same_account_again_without_duplicating_it(sso, acme, viewer):
    from apps.accounts.models import User

    before = User.objects.count()
    for _attempt in range(2):
        client = Client(HTTP_HOST=ACME_HOST)
        # The provider sends the address as typed; WindFlow matches it without case.
        sign_in_with_sso(client, ACME_HOST, "Viewer@ACME.test")
        assert signed_in_user_id(client) == str(viewer.pk)
    assert User.objects.count() == before
    viewer.refresh_from_db()
    assert viewer.full_name == "Viewer"  # an existing name is not overwritten by the claims


def assert_sent_back_to_sign_in(client: Client, response) -> None:
    assert response.status_code == 302, response.status_code
    assert response["Location"] == "/accounts/login/"
    assert signed_in_user_id(client) is None
    page = client.get(response["Location"])
    assert "Single sign-on with Test IdP failed" in page.content.decode()


@pytest.mark.parametrize("login", [UNVERIFIED, UNVERIFIED_AS_STRING])
def test_it_refuses_an_unverified_email(sso, acme, login, caplog):
    from apps.accounts.models import User

    client = Client(HTTP_HOST=ACME_HOST)
    before = User.objects.count()

    response = sign_in_with_sso(client, ACME_HOST, login)

    assert_sent_back_to_sign_in(client, response)
    assert "Claims verification failed" in caplog.text
    assert not User.objects.filter(email__iexact=login).exists()
    assert User.objects.count() == before
    assert client.get("/").status_code == 302  # still anonymous: sent to sign in


def test_it_refuses_an_inactive_account(sso, acme, operator):
    from apps.accounts.models import User

    operator.is_active = False
    operator.save(update_fields=["is_active"])
    client = Client(HTTP_HOST=ACME_HOST, raise_request_exception=False)
    before = User.objects.count()

    response = sign_in_with_sso(client, ACME_HOST, "operator@acme.test")

    assert_sent_back_to_sign_in(client, response)
    assert User.objects.count() == before


def with_param(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_it_refuses_a_forged_state(sso, acme, caplog):
    client = Client(HTTP_HOST=ACME_HOST, raise_request_exception=False)
    callback = log_in_at_provider(start_sso(client, ACME_HOST), "developer@acme.test", ACME_HOST)

    response = client.get(with_param(callback, state="forged-by-an-attacker"))

    assert_sent_back_to_sign_in(client, response)
    assert "state not found in session" in caplog.text
    assert client.get("/").status_code == 302
    # The genuine state is still good: the forgery did not consume or poison it.
    assert client.get(callback).status_code == 302
    assert signed_in_user_id(client) is not None


def test_it_refuses_a_callback_from_another_browser(sso, acme):
    """Login CSRF: a victim's browser (no state of ours in its session) is handed the
    attacker's code and state; it must not be signed in to the attacker's account."""
    attacker = Client(HTTP_HOST=ACME_HOST)
    callback = log_in_at_provider(start_sso(attacker, ACME_HOST), "outsider@globex.test", ACME_HOST)
    victim = Client(HTTP_HOST=ACME_HOST, raise_request_exception=False)
    victim.get("/accounts/login/")  # the victim has a session, without our state in it

    response = victim.get(callback)

    assert_sent_back_to_sign_in(victim, response)


def test_it_refuses_a_replayed_callback(sso, acme, developer):
    client = Client(HTTP_HOST=ACME_HOST, raise_request_exception=False)
    callback = log_in_at_provider(start_sso(client, ACME_HOST), "developer@acme.test", ACME_HOST)
    assert client.get(callback).status_code == 302
    client.post("/accounts/logout/")
    assert signed_in_user_id(client) is None

    response = client.get(callback)

    assert_sent_back_to_sign_in(client, response)


def test_it_handles_a_refusal_by_the_provider(sso, acme):
    client = Client(HTTP_HOST=ACME_HOST)
    state = parse_qs(urlsplit(start_sso(client, ACME_HOST)).query)["state"][0]

    response = client.get("/oidc/callback/", {"error": "access_denied", "state": state})

    assert_sent_back_to_sign_in(client, response)


def test_it_handles_an_unreachable_provider(sso, settings, acme, caplog):
    client = Client(HTTP_HOST=ACME_HOST, raise_request_exception=False)
    callback = log_in_at_provider(start_sso(client, ACME_HOST), "developer@acme.test", ACME_HOST)
    settings.OIDC_OP_TOKEN_ENDPOINT = "http://127.0.0.1:9/token"  # discard port: refused

    response = client.get(callback)

    assert_sent_back_to_sign_in(client, response)
    assert "Connection refused" in caplog.text or "ConnectionError" in caplog.text


def test_it_hides_the_sso_endpoints_when_not_configured(db, settings):
    settings.WINDFLOW_OIDC_ENABLED = False
    client = Client(HTTP_HOST=ACME_HOST)

    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/", {"code": "x", "state": "y"}).status_code == 404


@pytest.mark.parametrize("host", [ACME_HOST, PUBLIC_HOST])
def test_it_shows_the_sso_button_when_configured(sso, db, settings, host):
    client = Client(HTTP_HOST=host)

    page = client.get("/accounts/login/", {"next": "/environments/"})

    assert page.status_code == 200
    html = page.content.decode()
    assert "Sign in with Test IdP" in html
    assert 'href="/oidc/authenticate/?next=/environments/"' in html

    settings.WINDFLOW_OIDC_ENABLED = False
    html = client.get("/accounts/login/").content.decode()
    assert "Sign in with" not in html
    assert "/oidc/authenticate/" not in html


def test_it_requires_the_email_verified_claim_unless_told_otherwise(settings):
    from apps.accounts.oidc import WindFlowOIDCBackend

    backend = WindFlowOIDCBackend.__new__(WindFlowOIDCBackend)
    claims = {"email": "sam@acme.test"}  # a provider that never says whether it verified it
    settings.OIDC_REQUIRE_VERIFIED_EMAIL = True
    assert backend.verify_claims(claims) is False
    settings.OIDC_REQUIRE_VERIFIED_EMAIL = False
    assert backend.verify_claims(claims) is True
    assert backend.verify_claims({**claims, "email_verified": "false"}) is False
