"""apps.targets.connect: one transport per kind of target, picked by the target's kind from
one registry; a kind without a transport is a clear error wherever a target is used."""

import pytest

from apps.targets import connect, services
from apps.targets.choices import TargetKind
from apps.targets.connect import (
    LocalSocketTransport,
    SSHTransport,
    TLSTransport,
    Transport,
)
from apps.targets.models import Target
from windflow.errors import ServiceError

KINDS = [
    (TargetKind.LOCAL, LocalSocketTransport),
    (TargetKind.SSH, SSHTransport),
    (TargetKind.TCP_TLS, TLSTransport),
]


@pytest.mark.parametrize(("kind", "transport"), KINDS)
def test_it_picks_the_transport_of_the_targets_kind(kind, transport):
    target = Target(name="web-1", kind=kind)
    picked = connect.transport_for(target)
    assert type(picked) is transport and picked.target is target
    assert connect.transport_class(kind) is transport
    assert transport.kind == kind


def test_it_has_a_transport_for_every_kind_of_target():
    assert set(connect.TRANSPORTS) == set(TargetKind.values)
    assert all(issubclass(t, Transport) for t in connect.TRANSPORTS.values())


def test_it_says_what_each_kind_of_server_is():
    local, ssh, tls = (connect.transport_for(Target(name="web-1", kind=k)) for k, _ in KINDS)
    # Only the platform's own machine shows just the organisation's stacks.
    assert [t.platform_machine for t in (local, ssh, tls)] == [True, False, False]
    # Only a server reached over SSH can be prepared (a shell is needed).
    assert [t.can_prepare for t in (local, ssh, tls)] == [False, True, False]
    assert (ssh.credential_suffix, tls.credential_suffix, local.credential_suffix) == (
        "SSH_KEY",
        "TLS",
        "",
    )
    # The organisation's own servers are neither shared nor the platform's.
    for remote in (ssh, tls):
        assert not remote.is_shared_engine() and not remote.is_platform_engine()
    with pytest.raises(ServiceError) as caught:
        local.session()
    assert caught.value.code == "not_ssh"


def test_it_refuses_an_unknown_kind_with_a_clear_error(membership):
    odd = Target(name="odd-1", kind="swarm")
    with pytest.raises(ServiceError) as caught:
        connect.transport_for(odd)
    assert caught.value.code == "unknown_kind"
    assert "odd-1" in caught.value.message and "swarm" in caught.value.message
    with pytest.raises(ServiceError) as caught, connect.connect(odd):
        pass
    assert caught.value.code == "unknown_kind"

    # Adding one: the form's kind field says so, and nothing is stored.
    for kind in ("swarm", "", None, ["ssh"]):
        with pytest.raises(ServiceError) as caught:
            services.create_target(membership, name="odd-1", kind=kind, host="192.0.2.1")
        assert caught.value.field == "kind" and caught.value.message == "Unknown kind of target."
    assert not Target.objects.filter(name="odd-1").exists()

    # A stored target of a kind this version does not know: its check is recorded, offline,
    # saying why, and the questions pages ask about its engine get an answer, not a crash.
    stored = Target.objects.create(name="odd-1", slug="odd-1", kind="swarm")
    check = connect.check_target(stored)
    assert check.status == "offline"
    assert [r["name"] for r in check.results] == ["credential"]
    assert "swarm" in check.results[0]["detail"]
    stored.refresh_from_db()
    assert stored.status == "offline"
    with pytest.raises(ServiceError) as caught:
        services.list_containers(stored)
    assert caught.value.code == "unknown_kind"
