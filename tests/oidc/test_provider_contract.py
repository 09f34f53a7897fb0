"""Contract tests for the real OpenID provider used by the SSO tests.

They prove that tests/oidc/provider.mjs (npm oidc-provider v9) and the helpers in
tests/oidc_provider.py do a genuine authorization-code flow, the way
mozilla-django-oidc will: no Django database is needed here.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest

try:
    from tests.oidc_provider import (
        OidcProvider,
        OidcProviderError,
        complete_login,
        loopback_client,
        start_oidc_provider,
    )
except ImportError:  # `tests` is not importable from the current sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.oidc_provider import (
        OidcProvider,
        OidcProviderError,
        complete_login,
        loopback_client,
        start_oidc_provider,
    )

CLIENT_ID = "windflow-contract"
CLIENT_SECRET = "contract-secret-" + "x" * 16
RP_PORT = 8765  # nothing listens there: the RP's callback is never followed here
TENANT_REDIRECT = f"http://acme.localhost:{RP_PORT}/oidc/callback/"
PLAIN_REDIRECT = f"http://localhost:{RP_PORT}/oidc/callback/"


@pytest.fixture(scope="module")
def op() -> Iterator[OidcProvider]:
    with start_oidc_provider(
        CLIENT_ID,
        CLIENT_SECRET,
        [TENANT_REDIRECT, PLAIN_REDIRECT],
        accounts={"eve@unverified.test": {"email_verified": False}},
    ) as provider:
        yield provider


def authorize_url(
    op: OidcProvider, redirect_uri: str = TENANT_REDIRECT, **extra: str
) -> tuple[str, str, str]:
    """Build the URL mozilla-django-oidc would redirect to; returns (url, state, nonce)."""
    state = secrets.token_urlsafe(16)
    nonce = secrets.token_urlsafe(16)
    params = {
        "response_type": "code",
        "scope": "openid email profile",
        "client_id": op.client_id,
        "redirect_uri": redirect_uri,
        "state": state,
        "nonce": nonce,
        **extra,
    }
    return f"{op.authorization_endpoint}?{urlencode(params)}", state, nonce


def callback_params(response: httpx.Response, redirect_uri: str) -> dict[str, str]:
    location = response.headers["location"]
    assert location.split("?", 1)[0] == redirect_uri, location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def exchange_code(
    op: OidcProvider, code: str, redirect_uri: str, *, basic: bool = False
) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": op.client_id,
    }
    auth = None
    if basic:
        auth = (op.client_id, op.client_secret)
    else:
        data["client_secret"] = op.client_secret
    return httpx.post(op.token_endpoint, data=data, auth=auth, timeout=10)


def verify_id_token(op: OidcProvider, id_token: str) -> dict:
    """Check the signature against the JWKS, as mozilla-django-oidc does."""
    header = jwt.get_unverified_header(id_token)
    assert header["alg"] == "RS256"
    keys = httpx.get(op.jwks_endpoint, timeout=10).json()["keys"]
    (jwk,) = [k for k in keys if k["kid"] == header["kid"]]
    return jwt.decode(
        id_token, jwt.PyJWK(jwk), algorithms=["RS256"], audience=op.client_id, issuer=op.issuer
    )


def test_it_serves_discovery(op: OidcProvider) -> None:
    assert op.issuer == f"http://127.0.0.1:{op.port}"
    doc = httpx.get(f"{op.issuer}/.well-known/openid-configuration", timeout=10).json()
    assert doc["issuer"] == op.issuer
    assert op.authorization_endpoint == doc["authorization_endpoint"] == f"{op.issuer}/auth"
    assert op.token_endpoint == doc["token_endpoint"] == f"{op.issuer}/token"
    assert op.userinfo_endpoint == doc["userinfo_endpoint"] == f"{op.issuer}/me"
    assert op.jwks_endpoint == doc["jwks_uri"] == f"{op.issuer}/jwks"
    assert "RS256" in doc["id_token_signing_alg_values_supported"]
    assert {"client_secret_post", "client_secret_basic"} <= set(
        doc["token_endpoint_auth_methods_supported"]
    )
    assert {"email", "email_verified", "name"} <= set(doc["claims_supported"])
    (key,) = httpx.get(op.jwks_endpoint, timeout=10).json()["keys"]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["kid"]
    assert "d" not in key  # only the public part is published


def test_it_does_the_authorization_code_flow_with_client_secret_post(op: OidcProvider) -> None:
    url, state, nonce = authorize_url(op)
    with httpx.Client(timeout=10) as browser:
        back = complete_login(browser, url, "sam@acme.test")

    assert back.is_redirect
    params = callback_params(back, TENANT_REDIRECT)
    assert params["state"] == state
    assert params["iss"] == op.issuer
    assert params["code"]

    token = exchange_code(op, params["code"], TENANT_REDIRECT)
    assert token.status_code == 200, token.text
    tokens = token.json()
    assert tokens["token_type"].lower() == "bearer"

    claims = verify_id_token(op, tokens["id_token"])
    assert claims["sub"] == "sam@acme.test"
    assert claims["email"] == "sam@acme.test"
    assert claims["email_verified"] is True
    assert claims["nonce"] == nonce
    assert claims["name"] == "Sam Tester"

    userinfo = httpx.get(
        op.userinfo_endpoint,
        timeout=10,
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert userinfo.status_code == 200, userinfo.text
    assert userinfo.headers["content-type"].startswith("application/json")
    assert userinfo.json() == {
        "sub": "sam@acme.test",
        "email": "sam@acme.test",
        "email_verified": True,
        "name": "Sam Tester",
        "given_name": "Sam",
        "family_name": "Tester",
    }

    # An authorization code is single use.
    again = exchange_code(op, params["code"], TENANT_REDIRECT)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_it_accepts_client_secret_basic_too(op: OidcProvider) -> None:
    url, _, _ = authorize_url(op, redirect_uri=PLAIN_REDIRECT, scope="openid email")
    with httpx.Client(timeout=10) as browser:
        back = complete_login(browser, url, "ana.lopez@globex.test")
    params = callback_params(back, PLAIN_REDIRECT)
    token = exchange_code(op, params["code"], PLAIN_REDIRECT, basic=True)
    assert token.status_code == 200, token.text
    claims = verify_id_token(op, token.json()["id_token"])
    assert claims["email"] == "ana.lopez@globex.test"
    assert "name" not in claims  # the profile scope was not asked for


def test_it_rejects_a_wrong_client_secret(op: OidcProvider) -> None:
    url, _, _ = authorize_url(op)
    with httpx.Client(timeout=10) as browser:
        params = callback_params(complete_login(browser, url, "sam@acme.test"), TENANT_REDIRECT)
    response = httpx.post(
        op.token_endpoint,
        timeout=10,
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": TENANT_REDIRECT,
            "client_id": op.client_id,
            "client_secret": "wrong",
        },
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_it_refuses_an_unregistered_redirect_uri(op: OidcProvider) -> None:
    url, _, _ = authorize_url(op, redirect_uri="http://evil.localhost:8765/oidc/callback/")
    with (
        httpx.Client(timeout=10) as browser,
        pytest.raises(OidcProviderError, match="redirect_uri"),
    ):
        complete_login(browser, url, "sam@acme.test")


def test_it_reuses_the_provider_session_on_a_second_login(op: OidcProvider) -> None:
    with httpx.Client(timeout=10) as browser:
        first = callback_params(
            complete_login(browser, authorize_url(op)[0], "sam@acme.test"), TENANT_REDIRECT
        )
        # Same browser: the provider session and grant exist, so /auth answers
        # straight away with a redirect back to the RP; complete_login copes.
        url, state, _ = authorize_url(op)
        response = browser.get(url)
        assert response.is_redirect
        assert response.headers["location"].startswith(TENANT_REDIRECT)
        second = callback_params(complete_login(browser, url, "ignored@x.test"), TENANT_REDIRECT)
        assert second["state"] == state
        assert second["code"] != first["code"]
        claims = verify_id_token(
            op, exchange_code(op, second["code"], TENANT_REDIRECT).json()["id_token"]
        )
        assert claims["email"] == "sam@acme.test"  # still the first user

        # prompt=login forces the login form again, so another user can sign in.
        url, _, _ = authorize_url(op, prompt="login")
        third = callback_params(complete_login(browser, url, "kim@acme.test"), TENANT_REDIRECT)
        claims = verify_id_token(
            op, exchange_code(op, third["code"], TENANT_REDIRECT).json()["id_token"]
        )
        assert claims["email"] == "kim@acme.test"


def test_it_applies_per_account_claim_overrides(op: OidcProvider) -> None:
    url, _, _ = authorize_url(op)
    with httpx.Client(timeout=10) as browser:
        params = callback_params(
            complete_login(browser, url, "eve@unverified.test"), TENANT_REDIRECT
        )
    claims = verify_id_token(
        op, exchange_code(op, params["code"], TENANT_REDIRECT).json()["id_token"]
    )
    assert claims["email"] == "eve@unverified.test"
    assert claims["email_verified"] is False


def test_it_gives_a_login_without_at_sign_a_derived_email(op: OidcProvider) -> None:
    url, _, _ = authorize_url(op)
    with httpx.Client(timeout=10) as browser:
        params = callback_params(complete_login(browser, url, "bob"), TENANT_REDIRECT)
    claims = verify_id_token(
        op, exchange_code(op, params["code"], TENANT_REDIRECT).json()["id_token"]
    )
    assert claims["sub"] == "bob"
    assert claims["email"] == "bob@users.oidc.test"


def test_it_does_not_require_pkce_but_honours_it(op: OidcProvider) -> None:
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    url, _, _ = authorize_url(op, code_challenge=challenge, code_challenge_method="S256")
    with httpx.Client(timeout=10) as browser:
        params = callback_params(complete_login(browser, url, "sam@acme.test"), TENANT_REDIRECT)
    data = {
        "grant_type": "authorization_code",
        "code": params["code"],
        "redirect_uri": TENANT_REDIRECT,
        "client_id": op.client_id,
        "client_secret": op.client_secret,
        "code_verifier": verifier,
    }
    response = httpx.post(op.token_endpoint, data=data, timeout=10)
    assert response.status_code == 200, response.text


def test_it_reports_a_failed_start_clearly(op: OidcProvider) -> None:
    with pytest.raises(OidcProviderError, match=r"cannot listen .*EADDRINUSE"):
        start_oidc_provider("other", "secret", [PLAIN_REDIRECT], port=op.port)


def test_it_stops(op: OidcProvider) -> None:
    with start_oidc_provider("short-lived", "secret", [PLAIN_REDIRECT]) as provider:
        assert provider.running
        assert httpx.get(provider.jwks_endpoint, timeout=10).status_code == 200
    assert not provider.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(provider.jwks_endpoint, timeout=5)
    provider.stop()  # idempotent


class _EchoHost(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = (self.headers.get("Host") or "").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Set-Cookie", "seen=1; Path=/")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_it_reaches_tenant_localhost_hosts_with_the_loopback_client() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoHost)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        with loopback_client() as client:
            response = client.get(f"http://acme.localhost:{port}/")
            assert response.text == f"acme.localhost:{port}"
            assert client.cookies.get("seen", domain="acme.localhost") == "1"
            assert client.get(f"http://localhost:{port}/").text == f"localhost:{port}"
    finally:
        server.shutdown()
        server.server_close()


def test_it_satisfies_mozilla_django_oidc(op: OidcProvider) -> None:
    """mozilla-django-oidc's own backend exchanges the code and checks the id_token."""
    pytest.importorskip("mozilla_django_oidc")
    import django
    from django.conf import settings

    if not settings.configured:  # only outside the normal (pytest-django) suite
        settings.configure(
            INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth"],
            DATABASES={},
            SECRET_KEY="contract-test",
        )
        django.setup()
    from django.test import override_settings
    from mozilla_django_oidc.auth import OIDCAuthenticationBackend

    for basic in (False, True):
        url, _, nonce = authorize_url(op)
        with httpx.Client(timeout=10) as browser:
            params = callback_params(complete_login(browser, url, "sam@acme.test"), TENANT_REDIRECT)
        with override_settings(
            **op.mozilla_django_oidc_settings(), OIDC_TOKEN_USE_BASIC_AUTH=basic
        ):
            backend = OIDCAuthenticationBackend()
            tokens = backend.get_token(
                {
                    "client_id": op.client_id,
                    "client_secret": op.client_secret,
                    "grant_type": "authorization_code",
                    "code": params["code"],
                    "redirect_uri": TENANT_REDIRECT,
                }
            )
            payload = backend.verify_token(tokens["id_token"], nonce=nonce)
            assert payload["email"] == "sam@acme.test"
            userinfo = backend.get_userinfo(tokens["access_token"], tokens["id_token"], payload)
            assert userinfo["email"] == "sam@acme.test"
            assert userinfo["email_verified"] is True
