"""Sign-in features from django-allauth as WindFlow configures them: TOTP, password reset,
email verification; and the API's throttling."""

import re
import time

from django.core import mail

from tests.base import PASSWORD, api_client, client_for, error_of


def totp_window() -> int:
    return int(time.time()) // 30


def totp_code(secret: str, window: int) -> str:
    from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

    return format_hotp_value(hotp_value(secret, window))


def post_current_totp(client, url: str, secret: str):
    """Post the code of the current 30 s window. WindFlow accepts no other window (no
    tolerance), so when the window turned while the request ran, the code of the new window
    is posted: the test never depends on the clock's phase, and a wrong code still fails."""
    for _attempt in range(2):
        window = totp_window()
        response = client.post(url, {"code": totp_code(secret, window)})
        if totp_window() == window or "_auth_user_id" in client.session:
            return response
    return response


def test_it_asks_for_a_totp_code_after_the_password(owner):
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    secret = generate_totp_secret()
    TOTP.activate(owner, secret)
    client = client_for()
    response = client.post("/accounts/login/", {"login": owner.email, "password": PASSWORD})
    assert response.status_code == 302 and "/2fa/authenticate/" in response["Location"]
    assert "_auth_user_id" not in client.session
    wrong = client.post(response["Location"], {"code": "000000"})
    assert "_auth_user_id" not in client.session and wrong.status_code == 200
    signed_in = post_current_totp(client, response["Location"], secret)
    assert signed_in.status_code == 302
    assert client.session["_auth_user_id"] == str(owner.pk)


def test_it_refuses_jwt_for_accounts_with_two_factor(owner, acme):
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    TOTP.activate(owner, generate_totp_secret())
    response = api_client(None, acme).post(
        "/api/v1/auth/token/", {"email": owner.email, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 400
    assert "personal access token" in str(error_of(response))


def test_it_resets_a_forgotten_password_by_email(owner):
    client = client_for()
    client.post("/accounts/password/reset/", {"email": owner.email})
    assert len(mail.outbox) == 1
    link = re.search(r"http://[^/\s]+(/accounts/password/reset/key/\S+/)", mail.outbox[0].body)[1]
    form = client.get(link, follow=True)
    client.post(
        form.redirect_chain[-1][0] if form.redirect_chain else link,
        {"password1": "a-New-pass-2026", "password2": "a-New-pass-2026"},
    )
    owner.refresh_from_db()
    assert owner.check_password("a-New-pass-2026")


def test_it_sends_a_verification_email_at_signup(db):
    client_for().post(
        "/accounts/signup/",
        {
            "email": "fresh@example.com",
            "password1": "a-Strong-pass-42",
            "password2": "a-Strong-pass-42",
        },
    )
    assert any("fresh@example.com" in m.to for m in mail.outbox)
    assert "confirm" in mail.outbox[-1].body.lower()


def test_it_throttles_the_api_with_a_json_429(owner, acme, settings):
    from rest_framework.settings import api_settings

    from windflow.api.throttling import UserRateThrottle

    rates = dict(api_settings.DEFAULT_THROTTLE_RATES, user="3/minute")
    original = UserRateThrottle.THROTTLE_RATES
    UserRateThrottle.THROTTLE_RATES = rates
    try:
        client = api_client(owner, acme)
        codes = [client.get("/api/v1/environments/").status_code for _ in range(4)]
        throttled = client.get("/api/v1/environments/")
    finally:
        UserRateThrottle.THROTTLE_RATES = original
    assert codes == [200, 200, 200, 429]
    assert error_of(throttled)["code"] == "throttled"
    assert int(throttled["Retry-After"]) <= 60


def test_it_lets_operators_search_organisations_and_users_in_the_admin(db):
    from apps.accounts.models import User

    staff = User.objects.create_superuser("ops@windflow.test", PASSWORD)
    client = client_for(staff)
    assert "Acme" in client.get("/admin/tenants/organization/?q=acm").content.decode()
    users = client.get("/admin/accounts/user/?q=owner@acme").content.decode()
    assert "owner@acme.test" in users and "viewer@acme.test" not in users
    assert client.get("/admin/accounts/membership/?role__exact=viewer").status_code == 200


def test_it_keeps_non_staff_out_of_the_admin(owner):
    response = client_for(owner).get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
