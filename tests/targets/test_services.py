import pytest

from apps.accounts.models import Membership
from apps.audit.models import AuditEvent
from apps.secrets.models import SecretRef
from apps.targets import connect, services
from apps.targets.models import Target
from devtools import start_sshd
from tests.base import add_ssh_target, create_ssh_target, run_queued_jobs
from windflow.errors import Conflict, Forbidden, ServiceError


@pytest.fixture
def admin_membership(owner, acme, in_acme):
    return Membership.objects.get(user=owner, organization=acme)


def test_it_reads_the_host_key_and_pins_it_only_once_confirmed(admin_membership, sshd, root_key):
    target = add_ssh_target(admin_membership, sshd, root_key, confirm=False)
    assert target.pending_host_key_fingerprint == sshd.host_key_fingerprint
    assert target.host_key_fingerprint == ""
    assert target.status == "unknown"
    with pytest.raises(ServiceError, match="does not match"):
        services.confirm_host_key(admin_membership, target, "SHA256:forged")
    services.confirm_host_key(admin_membership, target, sshd.host_key_fingerprint)
    target.refresh_from_db()
    assert target.host_key_fingerprint == sshd.host_key_fingerprint
    assert AuditEvent.objects.filter(action="target.pin_host_key").exists()


def test_it_keeps_the_private_key_in_the_secrets_store(admin_membership, sshd, root_key):
    target = add_ssh_target(admin_membership, sshd, root_key)
    assert target.credential.name == "TARGET_WEB_1_SSH_KEY"
    assert root_key[0] not in str(Target.objects.filter(pk=target.pk).values().get())
    assert root_key[0] not in str(list(AuditEvent.objects.values()))


def test_it_reports_a_healthy_target_check_by_check(admin_membership, sshd, root_key):
    target = add_ssh_target(admin_membership, sshd, root_key)
    check = connect.check_target(target)
    target.refresh_from_db()
    assert check.status == "online", check.results
    assert all(result["ok"] for result in check.results)
    assert target.status == "online" and target.last_seen
    assert target.facts["docker_version"]


def test_it_generates_a_key_pair_and_shows_the_public_key(admin_membership, sshd):
    target = services.create_target(
        admin_membership,
        name="gen-1",
        kind="ssh",
        host=sshd.host,
        port=sshd.port,
        user="root",
        generate_key=True,
    )
    assert target.public_key.startswith("ssh-ed25519 ")
    services.confirm_host_key(admin_membership, target, target.pending_host_key_fingerprint)
    before = connect.check_target(target)
    assert before.status == "offline"  # not authorised on the server yet
    failed = [r for r in before.results if not r["ok"]]
    assert failed[0]["name"] == "authenticated" and "authorized_keys" in failed[0]["hint"]
    sshd.authorize("root", target.public_key)
    assert connect.check_target(target).status == "online"


def test_it_refuses_a_changed_host_key_until_an_admin_confirms(
    admin_membership, sshd_of_its_own, root_key, docker_socket
):
    server = sshd_of_its_own  # its host key changes: not the shared server's
    target = add_ssh_target(admin_membership, server, root_key)
    old = server.host_key_fingerprint
    assert connect.check_target(target).status == "online"
    server.rotate_host_key()
    check = connect.check_target(target)
    assert check.status == "offline"
    failing = next(r for r in check.results if not r["ok"])
    assert failing["name"] == "host key" and old in failing["detail"]
    services.rescan_host_key(admin_membership, target)
    target.refresh_from_db()
    assert target.pending_host_key_fingerprint == server.host_key_fingerprint != old
    services.confirm_host_key(admin_membership, target, server.host_key_fingerprint)
    assert connect.check_target(target).status == "online"


def test_it_audits_a_re_read_host_key(admin_membership, sshd_of_its_own, root_key):
    server = sshd_of_its_own
    target = add_ssh_target(admin_membership, server, root_key)
    old = server.host_key_fingerprint
    server.rotate_host_key()
    services.rescan_host_key(admin_membership, target)
    event = AuditEvent.objects.get(action="target.rescan_host_key")
    assert event.object_id == str(target.pk)
    assert event.changes["pending_host_key"] == ["", server.host_key_fingerprint]
    assert event.changes["pinned_host_key"] == old
    assert event.actor_id == str(admin_membership.user.pk)


def test_it_tells_when_the_server_allows_too_few_sessions_per_connection(
    admin_membership, root_key, docker_socket, tmp_path
):
    """Test connection opens as many sessions as a deployment uses: a server whose sshd allows
    fewer (MaxSessions) is degraded, not Online, and the hint says what to change."""
    with start_sshd(
        tmp_path / "sshd", docker_host=f"unix://{docker_socket}", options={"MaxSessions": "4"}
    ) as server:
        server.authorize("root", root_key[1])
        target = add_ssh_target(admin_membership, server, root_key, name="few-sessions")
        check = connect.check_target(target)
    assert check.status == "degraded"
    failing = [r for r in check.results if not r["ok"]]
    assert [r["name"] for r in failing] == ["ssh sessions"]
    assert "only 4 session(s)" in failing[0]["detail"]
    assert "MaxSessions" in failing[0]["hint"]


def test_it_finds_a_stock_server_online(admin_membership, sshd, root_key):
    target = add_ssh_target(admin_membership, sshd, root_key, name="stock")
    check = connect.check_target(target)
    assert check.status == "online", check.results
    sessions = next(r for r in check.results if r["name"] == "ssh sessions")
    assert sessions["ok"] and "8 sessions" in sessions["detail"]


def test_it_marks_a_user_without_docker_access_degraded(admin_membership, sshd, root_key):
    target = add_ssh_target(admin_membership, sshd, root_key, name="nodocker", user="wf-nodocker")
    check = connect.check_target(target)
    assert check.status == "degraded"  # reachable, logged in; Docker refused
    failing = next(r for r in check.results if not r["ok"])
    assert "docker" in failing["name"] and "usermod -aG docker" in failing["hint"]


def test_it_checks_the_local_docker_socket(admin_membership, docker_socket):
    target = services.create_target(
        admin_membership, name="local", kind="local", socket_path=docker_socket
    )
    check = connect.check_target(target)
    assert check.status == "online", check.results


def test_it_refuses_an_unreachable_host_and_creates_nothing(admin_membership, root_key):
    from devtools import free_port

    with pytest.raises(ServiceError) as error:
        services.create_target(
            admin_membership,
            name="nowhere",
            kind="ssh",
            host="127.0.0.1",
            port=free_port(),
            user="root",
            private_key=root_key[0],
        )
    assert error.value.field == "host"
    assert not Target.objects.exists() and not SecretRef.all_purposes.exists()


@pytest.mark.parametrize(
    ("key", "field"),
    [
        ("not a key", "private_key"),
        (
            "-----BEGIN OPENSSH PRIVATE KEY-----\ngarbage\n-----END OPENSSH PRIVATE KEY-----\n",
            "private_key",
        ),
    ],
)
def test_it_refuses_a_malformed_key(admin_membership, sshd, key, field):
    with pytest.raises(ServiceError) as error:
        create_ssh_target(admin_membership, sshd, key, name="bad-key")
    assert error.value.field == field
    assert key not in error.value.message
    assert not Target.objects.exists()


def test_it_asks_for_the_passphrase_of_a_protected_key(admin_membership, sshd):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    protected = (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.BestAvailableEncryption(b"open sesame"),
        )
        .decode()
    )
    with pytest.raises(ServiceError) as error:
        create_ssh_target(admin_membership, sshd, protected, name="locked")
    assert error.value.field == "passphrase"
    target = create_ssh_target(
        admin_membership, sshd, protected, name="locked", passphrase="open sesame"
    )
    assert target.public_key.startswith("ssh-ed25519")


def test_it_refuses_duplicates_and_bad_names(admin_membership, docker_socket):
    services.create_target(admin_membership, name="local", kind="local")
    with pytest.raises(Conflict):
        services.create_target(admin_membership, name="local", kind="local")
    with pytest.raises(ServiceError):
        services.create_target(admin_membership, name="Bad Name!", kind="local")


def test_it_explains_a_deleted_credential(admin_membership, sshd, root_key):
    from apps.secrets.services import delete_secret

    target = add_ssh_target(admin_membership, sshd, root_key)
    delete_secret(admin_membership, target.credential)
    target.refresh_from_db()
    check = connect.check_target(target)
    assert check.status == "offline"
    assert "was deleted" in check.results[0]["detail"]


def test_it_lets_only_admins_add_targets(operator, acme, in_acme):
    membership = Membership.objects.get(user=operator, organization=acme)
    with pytest.raises(Forbidden):
        services.create_target(membership, name="local", kind="local")


def test_it_prepares_a_server_that_already_has_docker(
    admin_membership, sshd, root_key, compose_plugin_for_root, django_capture_on_commit_callbacks
):
    target = add_ssh_target(admin_membership, sshd, root_key)
    with django_capture_on_commit_callbacks(execute=True):
        run = services.request_prepare(admin_membership, target)
    assert "prepare_target" in run_queued_jobs()
    run.refresh_from_db()
    assert run.status == "succeeded", run.output
    assert "already" in run.output.lower()


@pytest.mark.live
def test_it_sweeps_every_target_with_bounded_concurrency(live_db, sshd, root_key, docker_socket):
    """The sweep checks targets in threads (their own connections): committed data."""
    from django.db import connection

    from apps.targets.tasks import sweep_targets
    from tests.live import live_organization

    with live_organization() as world:
        connection.set_tenant(world.organization)
        membership = Membership.objects.get(user=world.owner)
        for name in ("one", "two", "three"):
            add_ssh_target(membership, sshd, root_key, name=name)
        services.create_target(membership, name="local", kind="local", socket_path=docker_socket)
        sweep_targets.fn()
        assert set(Target.objects.values_list("status", flat=True)) == {"online"}
        assert all(t.checks.count() == 1 for t in Target.objects.all())
        connection.set_schema_to_public()


def test_it_checks_a_docker_engine_over_tcp_and_tls(admin_membership, tls_proxy):
    target = services.create_target(
        admin_membership,
        name="tls-1",
        kind="tcp_tls",
        host=tls_proxy.host,
        port=tls_proxy.port,
        ca_pem=tls_proxy.ca_pem,
        cert_pem=tls_proxy.client_cert_pem,
        key_pem=tls_proxy.client_key_pem,
    )
    assert target.credential.name == "TARGET_TLS_1_TLS"
    check = connect.check_target(target)
    assert check.status == "online", check.results
    assert services.list_containers(target) is not None


def test_it_refuses_bad_tls_material_by_field(admin_membership, tls_proxy):
    with pytest.raises(ServiceError) as error:
        services.create_target(
            admin_membership,
            name="tls-bad",
            kind="tcp_tls",
            host=tls_proxy.host,
            port=tls_proxy.port,
            ca_pem="not a certificate",
            cert_pem=tls_proxy.client_cert_pem,
            key_pem=tls_proxy.client_key_pem,
        )
    assert error.value.field == "ca_pem"
    assert tls_proxy.client_key_pem not in error.value.message
    assert not Target.objects.exists()


def test_it_refuses_to_delete_a_server_that_stacks_use(admin_membership):
    from apps.environments.models import Environment
    from apps.stacks.models import Stack

    target = services.create_target(admin_membership, name="local", kind="local")
    environment = Environment.objects.create(name="staging", slug="staging")
    Stack.objects.create(name="shop", environment=environment, target=target)
    with pytest.raises(Conflict) as refused:
        services.delete_target(admin_membership, target)
    assert refused.value.code == "target_in_use"
    assert "1 stack uses local" in refused.value.message
    assert Target.objects.filter(pk=target.pk).exists()
