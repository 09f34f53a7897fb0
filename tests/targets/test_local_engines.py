"""Local Docker sockets belong to the platform operator (issue 9): WINDFLOW_LOCAL_TARGETS (off,
staff, all), the WINDFLOW_LOCAL_SOCKETS allow-list checked each time a server is connected
(not only when it is added), and the engines platform staff assign to organisations."""

import pytest
from django.db import connection
from django_tenants.utils import schema_context, tenant_context

from apps.accounts.models import Membership, User
from apps.audit.models import AuditEvent
from apps.targets import connect, services
from apps.targets.models import Target
from apps.tenants.models import LocalEngine, Organization
from apps.tenants.services import set_local_engine_organizations
from tests.base import PASSWORD, TEST_ENGINE, api_client, client_for, error_of
from windflow.errors import ServiceError

OTHER_SOCKET = "/run/windflow-test/other-docker.sock"  # allowed by some tests; never dialled


@pytest.fixture
def membership(owner, acme, in_acme):
    return Membership.objects.get(user=owner, organization=acme)


@pytest.fixture
def engine(db):
    """The test engine: platform staff assigned it to acme only (tests.base.build_world)."""
    return LocalEngine.objects.get(name=TEST_ENGINE)


def dial(target) -> bool:
    """True once the target's engine answered a call."""
    with connect.connect(target, timeout=5) as driver:
        driver.status("windflow-test-no-such-project")
        return True


def refusal(target) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        dial(target)
    return caught.value


# --- off --------------------------------------------------------------------------------------


def test_it_refuses_local_servers_everywhere_when_the_operator_turned_them_off(
    settings, owner, acme, membership
):
    settings.WINDFLOW_LOCAL_TARGETS = "off"
    with pytest.raises(ServiceError) as caught:
        services.create_target(membership, name="local", kind="local")
    assert caught.value.field == "kind"
    assert "WINDFLOW_LOCAL_TARGETS=off" in caught.value.message
    client = client_for(owner, acme)
    form = client.get("/servers/add/").content.decode()
    assert 'value="local"' not in form and 'name="socket_path"' not in form
    posted = client.post("/servers/add/", {"name": "local", "kind": "local"})
    assert posted.status_code == 200
    assert "WINDFLOW_LOCAL_TARGETS=off" in posted.content.decode()
    response = api_client(owner, acme).post(
        "/api/v1/targets/",
        {"name": "local", "kind": "local", "socket_path": "/var/run/docker.sock"},
        format="json",
    )
    assert response.status_code == 400
    error = error_of(response)
    assert "WINDFLOW_LOCAL_TARGETS=off" in error["fields"]["kind"][0]
    connection.set_tenant(acme)
    assert not Target.objects.exists()


def test_it_refuses_to_connect_a_local_server_made_before_it_was_turned_off(
    settings, membership, engine
):
    target = services.create_target(membership, name="local", kind="local")
    settings.WINDFLOW_LOCAL_TARGETS = "off"
    error = refusal(target)
    assert error.code == "local_targets_off"
    assert "WINDFLOW_LOCAL_TARGETS=off" in error.message
    check = connect.check_target(target)
    assert check.status == "offline"
    assert "WINDFLOW_LOCAL_TARGETS=off" in check.results[0]["detail"]


# --- staff ------------------------------------------------------------------------------------


def test_it_makes_a_local_server_from_an_engine_assigned_to_the_organisation(
    membership, engine, docker_socket
):
    target = services.create_target(
        membership, name="local", kind="local", engine=TEST_ENGINE, socket_path="/etc/passwd"
    )
    # The engine's socket, whatever was asked for.
    assert target.engine_id == engine.pk and target.socket_path == engine.socket_path
    assert dial(target) is True
    assert connect.check_target(target).status == "online"


def test_it_offers_only_the_engines_assigned_to_the_organisation(
    settings, owner, acme, globex, membership, engine
):
    settings.WINDFLOW_LOCAL_SOCKETS = [*settings.WINDFLOW_LOCAL_SOCKETS, OTHER_SOCKET]
    theirs = LocalEngine.objects.create(name="globex-only", socket_path=OTHER_SOCKET)
    theirs.organizations.add(globex)
    client = client_for(owner, acme)
    form = client.get("/servers/add/").content.decode()
    assert f">{TEST_ENGINE}</option>" in form and "globex-only" not in form
    assert 'name="socket_path"' not in form  # never a free-text path
    posted = client.post(
        "/servers/add/", {"name": "local", "kind": "local", "engine": str(theirs.pk)}
    )
    assert "not assigned to your organisation" in posted.content.decode()
    api = api_client(owner, acme)
    response = api.post(
        "/api/v1/targets/",
        {"name": "local", "kind": "local", "engine": "globex-only"},
        format="json",
    )
    assert response.status_code == 400
    assert TEST_ENGINE in error_of(response)["fields"]["engine"][0]
    connection.set_tenant(acme)
    assert not Target.objects.exists()
    created = api.post(
        "/api/v1/targets/",
        {"name": "local", "kind": "local", "engine": TEST_ENGINE},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["engine"] == TEST_ENGINE
    assert created.json()["socket_path"] == engine.socket_path


def test_it_tells_an_organisation_without_an_engine_to_ask_platform_staff(globex, outsider):
    connection.set_tenant(globex)
    membership = Membership.objects.get(user=outsider, organization=globex)
    with pytest.raises(ServiceError) as caught:
        services.create_target(membership, name="local", kind="local")
    assert caught.value.field == "engine" and "platform staff" in caught.value.message
    response = api_client(outsider, globex).post(
        "/api/v1/targets/", {"name": "local", "kind": "local"}, format="json"
    )
    assert response.status_code == 400 and "engine" in error_of(response)["fields"]


def test_it_stops_connecting_when_platform_staff_remove_the_assignment(
    owner, viewer, acme, membership, engine, docker_socket
):
    target = services.create_target(membership, name="local", kind="local")
    assert dial(target) is True
    set_local_engine_organizations(engine, [])
    error = refusal(target)
    assert error.code == "engine_not_assigned" and "no longer assigned" in error.message
    partial = client_for(viewer, acme).get("/servers/local/containers/", HTTP_HX_REQUEST="true")
    assert partial.status_code == 200
    assert "no longer assigned" in partial.content.decode()
    check = api_client(owner, acme).post("/api/v1/targets/local/check/")
    assert check.status_code == 200 and check.json()["status"] == "offline"
    assert "no longer assigned" in check.json()["results"][0]["detail"]
    connection.set_tenant(acme)
    assert AuditEvent.objects.filter(
        action="local_engine.unassign", object_label=TEST_ENGINE
    ).exists()


def test_it_stops_connecting_when_platform_staff_delete_the_engine(membership, engine):
    target = services.create_target(membership, name="local", kind="local")
    with schema_context("public"):
        engine.delete()
    error = refusal(target)
    assert error.code == "engine_removed" and "removed by the platform staff" in error.message


def test_it_refuses_a_local_server_that_names_its_own_socket_in_staff_mode(
    membership, docker_socket
):
    # Made before engines existed (or written straight into the table).
    target = Target.objects.create(
        name="legacy", slug="legacy", kind="local", socket_path=docker_socket
    )
    error = refusal(target)
    assert error.code == "engine_required" and "WINDFLOW_LOCAL_TARGETS=staff" in error.message


def test_it_refuses_an_engine_whose_socket_left_the_allow_list(settings, membership, engine):
    target = services.create_target(membership, name="local", kind="local")
    settings.WINDFLOW_LOCAL_SOCKETS = [OTHER_SOCKET]
    error = refusal(target)
    assert error.code == "socket_not_allowed" and "WINDFLOW_LOCAL_SOCKETS" in error.message


# --- all --------------------------------------------------------------------------------------


def test_it_lets_owners_pick_an_allowed_socket_in_a_single_organisation_install(
    settings, owner, acme, membership, docker_socket
):
    settings.WINDFLOW_LOCAL_TARGETS = "all"
    client = client_for(owner, acme)
    form = client.get("/servers/add/").content.decode()
    assert f'<option value="{docker_socket}"' in form and 'name="engine"' not in form
    posted = client.post(
        "/servers/add/",
        {"name": "evil", "kind": "local", "socket_path": "/run/containerd/containerd.sock"},
    )
    assert "not an allowed Docker socket" in posted.content.decode()
    with pytest.raises(ServiceError) as caught:
        services.create_target(
            membership, name="evil", kind="local", socket_path="/run/containerd/containerd.sock"
        )
    assert caught.value.field == "socket_path"
    assert "WINDFLOW_LOCAL_SOCKETS" in caught.value.message
    connection.set_tenant(acme)
    assert not Target.objects.exists()
    target = services.create_target(
        membership, name="local", kind="local", socket_path=docker_socket
    )
    assert target.engine_id is None
    assert dial(target) is True


@pytest.mark.parametrize(
    "path",
    [
        "/run/containerd/containerd.sock",
        "/var/run/docker.sock.evil",
        "relative/docker.sock",
        "",
    ],
)
def test_it_never_dials_a_socket_off_the_allow_list(settings, membership, path):
    settings.WINDFLOW_LOCAL_TARGETS = "all"
    target = Target.objects.create(name="odd", slug="odd", kind="local", socket_path=path)
    error = refusal(target)
    assert error.code == "socket_not_allowed"
    assert "allow-list (WINDFLOW_LOCAL_SOCKETS)" in error.message
    check = connect.check_target(target)
    assert check.status == "offline" and "WINDFLOW_LOCAL_SOCKETS" in check.results[0]["detail"]


# --- shared engines ---------------------------------------------------------------------------


def test_it_tells_whether_the_engine_of_a_server_is_shared(
    settings, viewer, acme, globex, membership, engine, docker_socket
):
    target = services.create_target(membership, name="local", kind="local")
    assert services.is_shared_engine(target) is False
    assert services.is_shared_engine(Target(kind="ssh", host="192.0.2.1")) is False
    assert services.is_shared_engine(Target(kind="tcp_tls", host="192.0.2.1")) is False
    page = client_for(viewer, acme).get("/servers/local/").content.decode()
    assert TEST_ENGINE in page and "you see only your stacks" not in page
    set_local_engine_organizations(engine, [acme, globex])
    assert services.is_shared_engine(target) is True
    page = client_for(viewer, acme).get("/servers/local/").content.decode()
    assert "you see only your stacks" in page
    connection.set_tenant(acme)
    set_local_engine_organizations(engine, [acme])
    assert services.is_shared_engine(target) is False
    # "all" with several organisations on the platform: any of them may pick that socket.
    settings.WINDFLOW_LOCAL_TARGETS = "all"
    own = Target.objects.create(name="own", slug="own", kind="local", socket_path=docker_socket)
    assert services.is_shared_engine(own) is True


# --- the admin --------------------------------------------------------------------------------


def test_it_lets_platform_staff_create_and_assign_engines_in_the_admin(settings, acme, globex):
    settings.WINDFLOW_LOCAL_SOCKETS = [*settings.WINDFLOW_LOCAL_SOCKETS, OTHER_SOCKET]
    staff = User.objects.create_superuser("ops@windflow.test", PASSWORD)
    client = client_for(staff)
    refused = client.post(
        "/admin/tenants/localengine/add/",
        {"name": "evil", "socket_path": "/etc/shadow", "organizations": [acme.pk]},
    )
    assert refused.status_code == 200
    assert "not an allowed Docker socket" in refused.content.decode()
    assert not LocalEngine.objects.filter(name="evil").exists()
    made = client.post(
        "/admin/tenants/localengine/add/",
        {"name": "second", "socket_path": OTHER_SOCKET, "organizations": [acme.pk, globex.pk]},
    )
    assert made.status_code == 302, made.content.decode()[:2000]
    engine = LocalEngine.objects.get(name="second")
    assert set(engine.organizations.all()) == {acme, globex}
    listing = client.get("/admin/tenants/localengine/").content.decode()
    assert "second" in listing and TEST_ENGINE in listing
    with tenant_context(globex):
        assert AuditEvent.objects.filter(action="local_engine.assign", object_label="second")
    with schema_context("public"):
        assert AuditEvent.objects.filter(action="local_engine.organizations").exists()
    # One engine per socket: a second engine on the same socket would hide the sharing.
    duplicate = client.post(
        "/admin/tenants/localengine/add/",
        {"name": "third", "socket_path": OTHER_SOCKET, "organizations": [globex.pk]},
    )
    assert duplicate.status_code == 200 and not LocalEngine.objects.filter(name="third")
    # The platform's own (public) tenant is not an organisation to assign.
    public = Organization.objects.get(schema_name="public")
    form = client.get("/admin/tenants/localengine/add/").content.decode()
    assert f'<option value="{acme.pk}">' in form
    assert f'<option value="{public.pk}">' not in form
    # Deleting the engine takes it from each organisation, in its audit trail.
    deleted = client.post(f"/admin/tenants/localengine/{engine.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302 and not LocalEngine.objects.filter(name="second")
    with tenant_context(acme):
        assert AuditEvent.objects.filter(action="local_engine.unassign", object_label="second")


# --- make run -----------------------------------------------------------------------------------


def test_it_gives_the_demo_organisation_a_local_engine_so_its_first_deploy_can_work(
    db, docker_socket
):
    """`make run` (devtools.runlocal) runs setup_demo with WINDFLOW_LOCAL_TARGETS=staff."""
    from io import StringIO

    from django.core.management import call_command

    from apps.stacks.models import Stack
    from apps.tenants.models import Organization

    call_command("setup_demo", stdout=StringIO())
    demo = Organization.objects.get(slug="demo")
    engine = LocalEngine.objects.get(organizations=demo)
    assert engine.socket_path == docker_socket  # the one engine on this socket
    with tenant_context(demo):
        server = Target.objects.get(name="local")
        assert server.engine_id == engine.pk
        assert Stack.objects.get(name="hello").target == server
        assert dial(server) is True
    call_command("setup_demo", stdout=StringIO())  # again: nothing doubled
    assert LocalEngine.objects.filter(organizations=demo).count() == 1
