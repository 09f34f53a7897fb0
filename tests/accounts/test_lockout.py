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
