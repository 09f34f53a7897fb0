from apps.accounts.models import Membership
from apps.targets import services
from apps.targets.models import Target
from tests.base import APIViewTestMixin, api_client, client_for, error_of


class TestTargetAPI(APIViewTestMixin):
    list_url = "/api/v1/targets/"
    minimum_write_role = "admin"
    create_payload = {"name": "box", "kind": "local"}


def test_it_adds_a_server_from_the_api_with_a_generated_key(owner, acme, sshd):
    response = api_client(owner, acme).post(
        "/api/v1/targets/",
        {
            "name": "web-1",
            "kind": "ssh",
            "host": sshd.host,
            "port": sshd.port,
            "user": "root",
            "generate_key": True,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["public_key"].startswith("ssh-ed25519 ")
    assert body["pending_host_key_fingerprint"] == sshd.host_key_fingerprint
    assert "PRIVATE KEY" not in response.content.decode()


def test_it_pins_tests_and_lists_through_the_api(owner, operator, viewer, acme, sshd, root_key):
    client = api_client(owner, acme)
    client.post(
        "/api/v1/targets/",
        {
            "name": "web-1",
            "kind": "ssh",
            "host": sshd.host,
            "port": sshd.port,
            "user": "root",
            "private_key": root_key[0],
        },
        format="json",
    )
    pinned = client.post(
        "/api/v1/targets/web-1/confirm-host-key/",
        {"fingerprint": sshd.host_key_fingerprint},
        format="json",
    )
    assert pinned.json()["host_key_fingerprint"] == sshd.host_key_fingerprint
    check = api_client(operator, acme).post("/api/v1/targets/web-1/check/")
    assert check.status_code == 200 and check.json()["status"] == "online"
    listed = api_client(viewer, acme, scope="read").get("/api/v1/targets/").json()
    assert listed["results"][0]["status"] == "online"
    history = client.get("/api/v1/targets/web-1/checks/").json()
    assert history["count"] == 1


def test_it_answers_bad_servers_with_clear_errors(owner, acme, root_key, in_acme):
    from devtools import free_port

    client = api_client(owner, acme)
    closed = client.post(
        "/api/v1/targets/",
        {
            "name": "nowhere",
            "kind": "ssh",
            "host": "127.0.0.1",
            "port": free_port(),
            "user": "root",
            "private_key": root_key[0],
        },
        format="json",
    )
    assert closed.status_code == 400 and "host" in error_of(closed)["fields"]
    bad_key = client.post(
        "/api/v1/targets/",
        {
            "name": "bad",
            "kind": "ssh",
            "host": "127.0.0.1",
            "port": 22,
            "user": "root",
            "private_key": "nope",
        },
        format="json",
    )
    assert bad_key.status_code == 400 and "private_key" in error_of(bad_key)["fields"]
    assert not Target.objects.exists()


def test_it_refuses_viewers_and_operators_adding_servers(operator, viewer, acme):
    for user in (operator, viewer):
        response = api_client(user, acme).post(
            "/api/v1/targets/", {"name": "local", "kind": "local"}, format="json"
        )
        assert response.status_code == 403


def test_it_shows_the_server_pages(owner, acme, sshd, root_key, in_acme):
    membership = Membership.objects.get(user=owner, organization=acme)
    target = services.create_target(
        membership,
        name="web-1",
        kind="ssh",
        host=sshd.host,
        port=sshd.port,
        user="root",
        private_key=root_key[0],
    )
    client = client_for(owner, acme)
    detail = client.get("/servers/web-1/").content.decode()
    assert sshd.host_key_fingerprint in detail and "pin this key" in detail
    client.post(
        "/servers/web-1/confirm-host-key/", {"fingerprint": target.pending_host_key_fingerprint}
    )
    client.post("/servers/web-1/check/")
    page = client.get("/servers/web-1/").content.decode()
    assert "docker" in page.lower() and "Online" in page
    assert "web-1" in client.get("/servers/").content.decode()


def test_it_keeps_the_private_key_out_of_a_failed_form(owner, acme, in_acme):
    response = client_for(owner, acme).post(
        "/servers/add/",
        {
            "name": "bad",
            "kind": "ssh",
            "host": "127.0.0.1",
            "port": 22,
            "user": "root",
            "private_key": "-----BEGIN nonsense secretkey",
        },
    )
    assert response.status_code == 200
    assert "secretkey" not in response.content.decode()
    assert not Target.objects.exists()


def test_it_lists_the_containers_of_a_server(owner, acme, docker_socket, in_acme):
    membership = Membership.objects.get(user=owner, organization=acme)
    services.create_target(membership, name="local", kind="local", socket_path=docker_socket)
    response = client_for(owner, acme).get("/servers/local/containers/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body and ("No container" in body or "<table" in body)


def test_it_edits_labels_and_environments(owner, acme, docker_socket, in_acme):
    from apps.environments.models import Environment

    staging = Environment.objects.create(name="staging", slug="staging")
    membership = Membership.objects.get(user=owner, organization=acme)
    target = services.create_target(
        membership, name="local", kind="local", socket_path=docker_socket
    )
    client = client_for(owner, acme)
    bad = client.post("/servers/local/edit/", {"labels": "no equals"})
    assert "expected key=value" in bad.content.decode()
    client.post(
        "/servers/local/edit/", {"labels": "region=eu\ntier=web", "environments": [staging.pk]}
    )
    target.refresh_from_db()
    assert target.labels == {"region": "eu", "tier": "web"}
    assert list(target.environments.all()) == [staging]


def test_it_lists_the_stacks_that_use_a_server_on_its_page(viewer, owner, acme, in_acme):
    from apps.environments.models import Environment
    from apps.stacks.models import Stack, StackRevision

    membership = Membership.objects.get(user=owner, organization=acme)
    target = services.create_target(membership, name="local", kind="local")
    environment = Environment.objects.create(name="staging", slug="staging")
    shop = Stack.objects.create(name="shop", environment=environment, target=target)
    revision = StackRevision.objects.create(stack=shop, number=1, compose="services: {}\n")
    Stack.objects.filter(pk=shop.pk).update(current_revision=revision)
    Stack.objects.create(name="blog", environment=environment, target=target)
    page = client_for(viewer, acme).get("/servers/local/").content.decode()
    assert 'href="/stacks/shop/"' in page and "running r1" in page
    assert 'href="/stacks/blog/"' in page and "not deployed" in page


def test_it_shows_byte_sizes_in_binary_units_everywhere(owner, acme, in_acme):
    """One unit system (GiB, as the checks' messages) and one filter (windflow `bytes`)."""
    from pathlib import Path

    from windflow.engine.checks import _disk_check
    from windflow.engine.units import GiB, MiB

    membership = Membership.objects.get(user=owner, organization=acme)
    target = services.create_target(membership, name="local", kind="local")
    Target.objects.filter(pk=target.pk).update(
        facts={"memory_bytes": 8 * GiB, "disk_free_bytes": 512 * MiB, "cpus": 2}
    )
    page = client_for(owner, acme).get("/servers/local/").content.decode()
    assert "8.0 GiB" in page and "512 MiB" in page
    assert " GB" not in page and " MB" not in page
    assert "2.0 GiB free" in _disk_check(2 * GiB, None, "/", "local").detail
    templates = Path(__file__).resolve().parents[2] / "templates"
    users = [p.name for p in templates.rglob("*.html") if "filesizeformat" in p.read_text()]
    assert users == [], "byte sizes go through the `bytes` filter"
