"""One lockout for the sign-in form and the JWT endpoint, and answers that never tell a right
password from a wrong one."""

import json

from tests.base import PASSWORD, api_client, client_for, error_of

TOKEN_URL = "/api/v1/auth/token/"
LOCKED = "Too many failed login attempts"


def jwt_attempt(organization, email, password):
    return api_client(None, organization).post(
        TOKEN_URL, {"email": email, "password": password}, format="json"
    )


def form_attempt(client, email, password):
    return client.post("/accounts/login/", {"login": email, "password": password})


def test_it_locks_the_jwt_endpoint_after_failures_on_the_sign_in_form(owner, acme):
    browser = client_for(None, None)  # the public host's form
    for _ in range(5):
        assert "not correct" in form_attempt(browser, owner.email, "wrong").content.decode()
    response = jwt_attempt(acme, owner.email, PASSWORD)
    assert response.status_code == 429, response.content
    assert LOCKED in error_of(response)["message"]
    assert "access" not in response.json()


def test_it_locks_the_sign_in_form_after_failures_on_the_jwt_endpoint(owner, acme):
    for _ in range(5):
        assert jwt_attempt(acme, owner.email, "wrong").status_code == 400
    for host in (None, acme):
        browser = client_for(None, host)
        page = form_attempt(browser, owner.email, PASSWORD)
        assert LOCKED in page.content.decode()
        assert "_auth_user_id" not in browser.session


def test_it_counts_failures_per_person_whatever_the_case_of_the_address(owner, acme):
    for _ in range(5):
        jwt_attempt(acme, owner.email.upper(), "wrong")
    assert jwt_attempt(acme, owner.email, PASSWORD).status_code == 429


def test_it_gives_a_non_member_the_answer_of_a_wrong_password(outsider, acme):
    right = jwt_attempt(acme, outsider.email, PASSWORD)  # outsider's own password
    wrong = jwt_attempt(acme, outsider.email, "not the password")
    assert right.status_code == wrong.status_code == 400
    assert json.loads(right.content) == json.loads(wrong.content)
    assert "member" not in right.content.decode()
    assert error_of(right)["message"] == "Wrong email or password."


def test_it_counts_a_non_members_right_password_as_a_failure(outsider, acme, globex):
    for _ in range(5):
        assert jwt_attempt(acme, outsider.email, PASSWORD).status_code == 400
    # As after five wrong passwords: locked everywhere, their own organisation included.
    assert jwt_attempt(globex, outsider.email, PASSWORD).status_code == 429


def test_it_gives_an_unknown_address_the_answer_of_a_wrong_password(owner, acme):
    unknown = jwt_attempt(acme, "nobody@nowhere.test", "whatever-it-is")
    wrong = jwt_attempt(acme, owner.email, "whatever-it-is")
    assert unknown.status_code == wrong.status_code == 400
    assert json.loads(unknown.content) == json.loads(wrong.content)


def test_it_forgives_a_member_signing_in_with_the_right_password(owner, acme):
    for _ in range(4):
        jwt_attempt(acme, owner.email, "wrong")
    for _ in range(3):  # a right password gives its attempt back, as on the form
        assert jwt_attempt(acme, owner.email, PASSWORD).status_code == 200
    assert jwt_attempt(acme, owner.email, "wrong").status_code == 400
    assert jwt_attempt(acme, owner.email, PASSWORD).status_code == 429


def test_it_applies_the_forms_rate_limit_per_address_to_the_jwt_endpoint(owner, acme, settings):
    settings.ACCOUNT_RATE_LIMITS = {"login": "3/m/ip", "login_failed": "50/15m/ip,5/15m/key"}
    codes = [jwt_attempt(acme, owner.email, PASSWORD).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    # The form on the public host shares that address's budget.
    page = form_attempt(client_for(None, None), owner.email, PASSWORD)
    assert page.status_code == 429


def test_it_gives_a_deactivated_account_the_answer_of_a_wrong_password(developer, acme):
    developer.is_active = False
    developer.save()
    right = jwt_attempt(acme, developer.email, PASSWORD)
    wrong = jwt_attempt(acme, developer.email, "not the password")
    assert right.status_code == wrong.status_code == 400
    assert json.loads(right.content) == json.loads(wrong.content)


def address_budget(settings) -> int:
    """The failures one address may make (the `/ip` part of allauth's login_failed limit)."""
    rules = settings.ACCOUNT_RATE_LIMITS["login_failed"].split(",")
    return next(int(rule.split("/")[0]) for rule in rules if rule.endswith("/ip"))


def test_it_locks_an_address_out_after_failures_on_many_accounts(owner, acme, settings):
    """Failures spread over many accounts (none reaches its own limit) lock the address out:
    even a right password is refused from there, on the form and the JWT endpoint, while
    the same person signs in from another address."""
    from windflow.settings import base

    # The product's rule (the test settings raise it for other tests' sake).
    settings.ACCOUNT_RATE_LIMITS = base.ACCOUNT_RATE_LIMITS
    attacker = {"REMOTE_ADDR": "203.0.113.7"}
    budget = address_budget(settings)
    assert budget < 30  # below allauth's 30 sign-ins a minute: the lockout answers first
    browser = client_for(None, None)
    for n in range(budget):
        page = browser.post(
            "/accounts/login/", {"login": f"guess{n}@example.test", "password": "x"}, **attacker
        )
        assert LOCKED not in page.content.decode(), n
    locked = browser.post(
        "/accounts/login/", {"login": owner.email, "password": PASSWORD}, **attacker
    )
    assert LOCKED in locked.content.decode()
    assert "_auth_user_id" not in browser.session
    refused = api_client(None, acme).post(
        TOKEN_URL, {"email": owner.email, "password": PASSWORD}, format="json", **attacker
    )
    assert refused.status_code == 429
    assert LOCKED in error_of(refused)["message"]

    elsewhere = client_for(None, None)
    form_attempt(elsewhere, owner.email, PASSWORD)
    assert elsewhere.session["_auth_user_id"] == str(owner.pk)
    assert jwt_attempt(acme, owner.email, PASSWORD).status_code == 200
