"""A server changed in the organisation's admin (issue 12) goes through the services, as on
its pages: validation, host-key re-scan, RBAC and audit; its address is checked as a new
server's."""

import socket

from django.db import connection

from apps.audit.models import AuditEvent
from apps.targets.models import Target
from tests.base import add_ssh_target, client_for


def _form(target, **changes) -> dict:
    data = {
        "name": target.name,
        "host": target.host,
        "port": target.port,
        "user": target.user,
        "labels": "{}",
        "environments": [],
    }
    return {**data, **changes}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_it_changes_a_server_in_the_admin_through_the_services(
    membership, sshd, root_key, acme, owner
):
    target = add_ssh_target(membership, sshd, root_key)
    pinned = target.host_key_fingerprint
    connection.set_schema_to_public()
    client = client_for(owner, acme)
    url = f"/admin/targets/target/{target.pk}/change/"
    assert client.get(url).status_code == 200
    refused = {
        "port": _form(target, port=0),
        "host": _form(target, host="not a host!"),
        "user": _form(target, user="bad user;"),
    }
    for field, data in refused.items():
        response = client.post(url, data)
        assert response.status_code == 200, field
        assert response.context["adminform"].form.errors, field
    # Nothing answers there: the host key cannot be read, nothing is saved.
    response = client.post(url, _form(target, port=_free_port()))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["host"]
    connection.set_tenant(acme)
    assert Target.objects.get(pk=target.pk).port == sshd.port
    assert not AuditEvent.objects.filter(action="target.change_address").exists()
    connection.set_schema_to_public()
    # The same server under another name: re-scanned, its key still the pinned one.
    response = client.post(url, _form(target, host="localhost", name="web-2"))
    assert response.status_code == 302, response.context and response.context["errors"]
    connection.set_tenant(acme)
    target.refresh_from_db()
    assert (target.host, target.name, target.host_key_fingerprint) == ("localhost", "web-2", pinned)
    moved = AuditEvent.objects.get(action="target.change_address")
    assert moved.actor_label == owner.email
    assert moved.changes["address"] == [
        f"ssh://root@{sshd.host}:{sshd.port}",
        f"ssh://root@localhost:{sshd.port}",
    ]
    assert AuditEvent.objects.get(action="target.update").changes["name"] == ["web-1", "web-2"]


def test_it_adds_and_deletes_no_server_in_the_admin(membership, local_target, acme, owner):
    connection.set_schema_to_public()
    client = client_for(owner, acme)
    assert client.get("/admin/targets/target/add/").status_code == 403
    delete_url = f"/admin/targets/target/{local_target.pk}/delete/"
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    # A local server's engine is the operator's: nothing about its address changes here.
    page = client.get(f"/admin/targets/target/{local_target.pk}/change/").content.decode()
    assert 'name="socket_path"' not in page
