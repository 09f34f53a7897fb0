"""The client address: X-Forwarded-For only through WINDFLOW_TRUSTED_PROXIES, the same answer
for throttling, the sign-in lockout and the audit trail."""

import pytest

from tests.base import api_client, client_for
from windflow.clientaddress import client_address_from, parse_trusted_proxies

TOKEN_URL = "/api/v1/auth/token/"
PROXIES = ("10.0.0.0/8", "192.0.2.7")


@pytest.mark.parametrize(
    ("remote", "forwarded", "expected"),
    [
        ("198.51.100.4", "203.0.113.9", "198.51.100.4"),  # not a proxy: header ignored
        ("10.1.2.3", None, "10.1.2.3"),  # a proxy that says nothing
        ("10.1.2.3", "203.0.113.9", "203.0.113.9"),
        ("10.1.2.3", "1.1.1.1, 203.0.113.9", "203.0.113.9"),  # the left is the client's say
        ("10.1.2.3", "203.0.113.9, 192.0.2.7", "203.0.113.9"),  # trusted hops are skipped
        ("10.1.2.3", "203.0.113.9,10.9.9.9,192.0.2.7", "203.0.113.9"),
        ("10.1.2.3", "10.9.9.9, 192.0.2.7", "10.9.9.9"),  # all trusted: the farthest
        ("10.1.2.3", "garbage, 10.9.9.9", "10.9.9.9"),  # garbage stops the walk
        ("10.1.2.3", "[2001:db8::1]:443", "2001:db8::1"),
        ("10.1.2.3", "203.0.113.9:5555", "203.0.113.9"),
        ("::ffff:10.1.2.3", "203.0.113.9", "203.0.113.9"),  # v4-mapped socket address
    ],
)
def test_it_reads_forwarded_for_from_the_right_through_trusted_proxies(remote, forwarded, expected):
    assert client_address_from(remote, forwarded, parse_trusted_proxies(PROXIES)) == expected


def test_it_uses_the_socket_address_without_trusted_proxies():
    assert client_address_from("198.51.100.4", "203.0.113.9", ()) == "198.51.100.4"
    assert client_address_from("127.0.0.1", "203.0.113.9", ()) == "127.0.0.1"


def test_it_names_a_bad_trusted_proxy_entry():
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="not-an-ip"):
        parse_trusted_proxies(("10.0.0.0/8", "not-an-ip"))


def _anon_throttled(acme, forwarded_values):
    from rest_framework.settings import api_settings

    from windflow.api.throttling import AnonRateThrottle

    original = AnonRateThrottle.THROTTLE_RATES
    # A day: one fixed window for the whole test.
    AnonRateThrottle.THROTTLE_RATES = dict(api_settings.DEFAULT_THROTTLE_RATES, anon="3/day")
    try:
        return [
            api_client(None, acme)
            .post(TOKEN_URL, {}, format="json", HTTP_X_FORWARDED_FOR=value)
            .status_code
            for value in forwarded_values
        ]
    finally:
        AnonRateThrottle.THROTTLE_RATES = original


def test_it_ignores_a_rotating_forwarded_for_when_throttling(acme):
    codes = _anon_throttled(acme, [f"203.0.113.{n}" for n in range(5)])
    assert codes == [400, 400, 400, 429, 429]


def test_it_throttles_each_client_behind_a_trusted_proxy(acme, settings):
    settings.WINDFLOW_TRUSTED_PROXIES = ["127.0.0.1"]  # the test client's socket address
    assert _anon_throttled(acme, [f"203.0.113.{n}" for n in range(5)]) == [400] * 5
    assert _anon_throttled(acme, ["203.0.113.50"] * 4) == [400, 400, 400, 429]


def _failed_sign_ins(count, settings, forwarded):
    settings.ACCOUNT_RATE_LIMITS = {"login_failed": "3/15m/ip,50/15m/key"}
    browser = client_for(None, None)
    pages = [
        browser.post(
            "/accounts/login/",
            {"login": f"someone{n}@example.test", "password": "wrong"},
            HTTP_X_FORWARDED_FOR=forwarded(n),
        ).content.decode()
        for n in range(count)
    ]
    return ["Too many failed login attempts" in page for page in pages]


def test_it_locks_an_address_out_whatever_forwarded_for_says(db, settings):
    locked = _failed_sign_ins(5, settings, lambda n: f"203.0.113.{n}")
    assert locked == [False, False, False, True, True]


def test_it_locks_out_the_client_behind_a_trusted_proxy_not_the_proxy(db, settings):
    settings.WINDFLOW_TRUSTED_PROXIES = ["127.0.0.0/8"]
    assert _failed_sign_ins(5, settings, lambda n: f"203.0.113.{n}") == [False] * 5
    assert _failed_sign_ins(4, settings, lambda n: "198.51.100.1") == [False] * 3 + [True]


def _last_failed_sign_in_address(forwarded):
    from apps.audit.models import AuditEvent

    client_for(None, None).post(
        "/accounts/login/",
        {"login": "someone@example.test", "password": "wrong"},
        HTTP_X_FORWARDED_FOR=forwarded,
    )
    return AuditEvent.objects.filter(action="auth.login_failed").latest("id").ip


def test_it_audits_the_socket_address_without_trusted_proxies(db):
    assert _last_failed_sign_in_address("203.0.113.9") == "127.0.0.1"


def test_it_audits_the_client_behind_a_trusted_proxy(db, settings):
    settings.WINDFLOW_TRUSTED_PROXIES = ["127.0.0.1"]
    assert _last_failed_sign_in_address("198.51.100.1, 203.0.113.9") == "203.0.113.9"


@pytest.mark.django_db
def test_it_believes_a_forwarded_scheme_only_from_a_trusted_proxy(settings):
    """Behind TLS-terminating proxies, X-Forwarded-Proto says the request was secure; a
    client that writes it itself must not pass a plain request off as HTTPS."""
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    forged = client_for().get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
    assert forged.status_code == 301 and forged["Location"].startswith("https://")

    settings.WINDFLOW_TRUSTED_PROXIES = "127.0.0.1"  # the test client's socket address
    proxied = client_for().get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
    assert proxied.status_code == 200
