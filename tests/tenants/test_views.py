from apps.tenants.models import Organization
from tests.base import client_for


def test_it_shows_a_friendly_404_for_an_unknown_host(db):
    response = client_for(None, None).get("/", HTTP_HOST="nowhere.localhost")
    assert response.status_code == 404
    assert b"No organisation lives here" in response.content


def test_it_creates_an_organisation_and_hands_off_to_its_host(owner):
    response = client_for(owner).post(
        "/organizations/new/", {"name": "Umbrella", "slug": "umbrella"}
    )
    assert response.status_code == 302
    assert response["Location"].startswith("http://umbrella.localhost:8000/accounts/handoff/?")
    organization = Organization.objects.get(slug="umbrella")
    handoff = client_for(None, organization)
    landed = handoff.get(response["Location"].split(":8000", 1)[1])
    assert landed.status_code == 302 and landed["Location"] == "/"
    dashboard = handoff.get("/")
    assert dashboard.status_code == 200
    assert "Welcome to Umbrella!" in dashboard.content.decode()
    # Single use: the same link does not sign anyone in twice.
    again = client_for(None, organization).get(response["Location"].split(":8000", 1)[1])
    assert again.status_code == 400
    assert b"already been used" in again.content


def test_it_shows_form_errors_for_a_reserved_slug(owner):
    response = client_for(owner).post("/organizations/new/", {"name": "Admin", "slug": "admin"})
    assert response.status_code == 200
    assert "is reserved" in response.content.decode()
    assert not Organization.objects.filter(name="Admin").exists()


def test_it_shows_form_errors_for_a_taken_slug(owner):
    response = client_for(owner).post("/organizations/new/", {"name": "A", "slug": "globex"})
    assert "already taken" in response.content.decode()


def test_it_refuses_a_handoff_for_another_organisation(owner, acme, globex):
    from apps.accounts.services import handoff_url

    link = handoff_url(owner, acme)
    path = link.split(":8000", 1)[1]
    response = client_for(None, globex).get(path)
    assert response.status_code == 400
    assert b"another organisation" in response.content


def test_it_lists_my_organisations_on_the_public_home(owner, outsider):
    page = client_for(owner).get("/").content.decode()
    assert "Acme" in page and "Globex" not in page


def test_it_keeps_members_of_one_organisation_out_of_another(outsider, acme):
    response = client_for(outsider, acme).get("/environments/")
    assert response.status_code == 403
    assert b"not a member" in response.content


def test_it_sends_anonymous_visitors_to_sign_in(acme):
    response = client_for(None, acme).get("/environments/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_it_answers_healthz_with_each_check(db):
    response = client_for(None, None).get("/healthz")
    body = response.json()
    assert set(body["checks"]) == {"database", "redis", "worker"}
    assert body["checks"]["database"] == "ok" and body["checks"]["redis"] == "ok"
    # No worker runs in this test: the endpoint says so rather than pretending.
    assert response.status_code == 503 and body["checks"]["worker"] == "no heartbeat"


def test_it_reports_healthy_with_a_worker_heartbeat(db):
    from windflow.workers import write_heartbeat

    write_heartbeat("test:1", ttl=30)
    response = client_for(None, None).get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_it_serves_a_favicon_on_every_host(acme):
    for organization in (None, acme):
        response = client_for(None, organization).get("/favicon.ico")
        assert response.status_code == 301
        assert response["Location"].endswith("favicon.svg")
