import csv
import io
import json

from django.db import connection

from apps.audit.models import AuditEvent
from tests.base import ReadOnlyAPITestMixin, api_client, client_for, error_of


class TestAuditEventAPI(ReadOnlyAPITestMixin):
    list_url = "/api/v1/audit-events/"
    minimum_read_role = "admin"


def test_it_records_who_did_it_from_where_through_the_pages(owner, acme):
    client_for(owner, acme).post(
        "/environments/add/",
        {"name": "qa", "kind": "dev"},
        HTTP_USER_AGENT="Firefox/150",
        HTTP_X_REQUEST_ID="req-12345678",
    )
    connection.set_tenant(acme)
    event = AuditEvent.objects.get(action="environment.create")
    assert event.actor_type == "user" and event.actor_label == owner.email
    assert event.ip == "127.0.0.1" and event.user_agent == "Firefox/150"
    assert event.request_id == "req-12345678"
    assert event.object_label == "qa" and event.organization == "acme"


def test_it_records_the_token_that_acted_through_the_api(owner, acme):
    client = api_client(owner, acme)
    client.post("/api/v1/environments/", {"name": "qa"}, format="json")
    connection.set_tenant(acme)
    event = AuditEvent.objects.get(action="environment.create")
    assert event.actor_type == "token"
    assert owner.email in event.actor_label and "wf_" in event.actor_label


def test_it_records_one_token_the_same_way_whichever_service_it_calls(
    operator, acme, staging, local_target
):
    """The same token creating a stack, deploying it (a service that is handed the member
    explicitly) and creating an environment: one actor, user and token, on every event."""
    from apps.accounts.models import Membership
    from apps.accounts.services import create_api_token
    from tests.base import COMPOSE

    membership = Membership.objects.get(user=operator, organization=acme)
    token, secret = create_api_token(membership, name="ci", scope="write")
    client = api_client(token=secret, organization=acme)
    stack = {"name": "shop", "environment": "staging", "target": "web-1", "compose": COMPOSE}
    assert client.post("/api/v1/stacks/", stack, format="json").status_code == 201
    deploy = client.post("/api/v1/deployments/", {"stack": "shop"}, format="json")
    assert deploy.status_code == 201, deploy.content
    environment = client.post("/api/v1/environments/", {"name": "qa"}, format="json")
    assert environment.status_code == 201, environment.content
    connection.set_tenant(acme)
    actions = ("stack.create", "deployment.request", "environment.create")
    events = {e.action: e for e in AuditEvent.objects.filter(action__in=actions)}
    assert set(events) == set(actions)
    actors = {(e.actor_type, e.actor_id, e.actor_label) for e in events.values()}
    assert actors == {
        ("token", str(operator.pk), f"{operator.email} via token “ci” ({token.prefix}…)")
    }


def test_it_shows_the_log_with_filters_to_admins_only(owner, viewer, acme):
    client = client_for(owner, acme)
    client.post("/environments/add/", {"name": "qa", "kind": "dev"})
    client.post("/settings/invitations/", {"email": "new@example.com", "role": "viewer"})
    page = client.get("/audit/?action=environment.")
    assert page.status_code == 200
    assert "environment.create" in page.content.decode()
    assert "invitation.create" not in page.content.decode()
    filtered = client.get("/audit/?action=invitation.", HTTP_HX_REQUEST="true")
    assert filtered.status_code == 200
    assert "invitation.create" in filtered.content.decode()  # the page loaded, filtered
    assert "environment.create" not in filtered.content.decode()
    assert client_for(viewer, acme).get("/audit/").status_code == 403


def test_it_exports_csv_and_json_lines(owner, acme):
    client = client_for(owner, acme)
    client.post("/environments/add/", {"name": "qa", "kind": "dev"})
    response = client.get("/audit/export.csv?action=environment.")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row["action"] for row in rows] == ["environment.create"]
    lines = b"".join(client.get("/audit/export.jsonl").streaming_content).decode().splitlines()
    events = [json.loads(line) for line in lines]
    assert {"hash", "prev_hash", "action"} <= set(events[0])


def test_it_refuses_an_impossible_date_range_with_a_clear_message(owner, acme):
    client = client_for(owner, acme)
    page = client.get("/audit/?since=2026-02-01T00:00&until=2026-01-01T00:00")
    assert page.status_code == 400
    assert "before its start" in page.content.decode()
    export = client.get("/audit/export.csv?since=2026-02-01T00:00&until=2026-01-01T00:00")
    assert export.status_code == 400
    api = api_client(owner, acme).get(
        "/api/v1/audit-events/?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z"
    )
    assert api.status_code == 400 and "after its end" in str(error_of(api))


def test_it_serves_a_read_only_api(owner, admin, operator, acme):
    api_client(owner, acme).post("/api/v1/environments/", {"name": "qa"}, format="json")
    body = api_client(admin, acme).get("/api/v1/audit-events/?action=environment.").json()
    assert [e["action"] for e in body["results"]] == ["environment.create"]
    event_id = body["results"][0]["id"]
    client = api_client(owner, acme)
    assert client.delete(f"/api/v1/audit-events/{event_id}/").status_code == 405
    assert client.patch(f"/api/v1/audit-events/{event_id}/", {}, format="json").status_code == 405
    assert api_client(operator, acme).get("/api/v1/audit-events/").status_code == 403


def test_it_keeps_each_organisation_to_its_own_trail(owner, outsider, acme, globex):
    api_client(owner, acme).post("/api/v1/environments/", {"name": "acme-env"}, format="json")
    api_client(outsider, globex).post(
        "/api/v1/environments/", {"name": "globex-env"}, format="json"
    )
    response = api_client(outsider, globex).get("/api/v1/audit-events/")
    assert response.status_code == 200
    body = json.dumps(response.json())
    assert "globex-env" in body  # globex's own trail is there
    assert "acme-env" not in body


def test_it_records_member_invitation_token_and_session_events(owner, viewer, acme):
    from apps.accounts.models import Membership

    client = client_for(owner, acme)
    member = Membership.objects.get(user=viewer, organization=acme)
    client.post(f"/settings/members/{member.pk}/role/", {"role": "developer"})
    client.post("/settings/invitations/", {"email": "new@example.com", "role": "viewer"})
    client.post("/settings/tokens/", {"name": "ci", "scope": "read"})
    client.post("/accounts/logout/")
    connection.set_tenant(acme)
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"member.role_change", "invitation.create", "token.create", "auth.logout"} <= actions
    change = AuditEvent.objects.get(action="member.role_change")
    assert change.changes == {"role": ["viewer", "developer"]}
    assert change.object_label == viewer.email
