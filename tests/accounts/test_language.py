"""The language switch of the user menu: remembered on the person (User.language), applied on
every host and browser they sign in from; a visitor's choice is kept in the language cookie."""

from django.conf import settings

from apps.accounts.models import User
from tests.base import api_client, client_for


def test_it_remembers_the_language_chosen_in_the_user_menu(owner, acme):
    client = client_for(owner, acme)
    dashboard = client.get("/", HTTP_ACCEPT_LANGUAGE="en")
    assert 'data-testid="language-form"' in dashboard.content.decode()

    response = client.post("/accounts/language/", {"language": "fr", "next": "/environments/"})

    assert response.status_code == 302
    assert response["Location"] == "/environments/"
    assert User.objects.get(pk=owner.pk).language == "fr"
    # Another browser (no cookie), whose own language is English: the person's choice wins.
    elsewhere = client_for(owner, acme)
    page = elsewhere.get("/environments/", HTTP_ACCEPT_LANGUAGE="en")
    assert '<html lang="fr"' in page.content.decode()
    assert "Environnements" in page.content.decode()
    assert page["Content-Language"] == "fr"


def test_it_follows_the_person_to_the_public_host(owner):
    owner.language = "fr"
    owner.save(update_fields=["language"])

    page = client_for(owner).get("/", HTTP_ACCEPT_LANGUAGE="en")

    assert '<html lang="fr"' in page.content.decode()


def test_it_keeps_the_browsers_language_until_one_is_chosen(owner, acme):
    assert owner.language == ""
    page = client_for(owner, acme).get("/environments/", HTTP_ACCEPT_LANGUAGE="fr")
    assert '<html lang="fr"' in page.content.decode()
    page = client_for(owner, acme).get("/environments/", HTTP_ACCEPT_LANGUAGE="en")
    assert '<html lang="en"' in page.content.decode()


def test_it_keeps_a_visitors_choice_in_the_language_cookie(db):
    client = client_for()

    response = client.post("/accounts/language/", {"language": "fr", "next": "/accounts/login/"})

    assert response.status_code == 302
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "fr"
    page = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="en")
    assert '<html lang="fr"' in page.content.decode()


def test_it_refuses_a_language_it_does_not_have_with_a_400(owner, acme):
    response = client_for(owner, acme).post("/accounts/language/", {"language": "xx"})

    assert response.status_code == 400
    assert User.objects.get(pk=owner.pk).language == ""


def test_it_goes_home_rather_than_to_another_site(owner, acme):
    response = client_for(owner, acme).post(
        "/accounts/language/", {"language": "en", "next": "https://evil.test/"}
    )

    assert response.status_code == 302
    assert response["Location"] == "/"


def test_it_answers_only_post(owner, acme):
    assert client_for(owner, acme).get("/accounts/language/").status_code == 405


def test_it_says_which_language_the_person_chose_in_the_api(owner, acme):
    client = api_client(owner, acme)
    assert client.get("/api/v1/me/").json()["language"] == ""

    owner.language = "fr"
    owner.save(update_fields=["language"])

    assert client.get("/api/v1/me/").json()["language"] == "fr"
