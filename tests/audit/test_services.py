import json
from datetime import UTC

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.utils import DatabaseError

from apps.accounts.models import Membership
from apps.audit import services
from apps.audit.models import AuditEvent
from apps.environments import services as environments
from tests.audit.tampering import delete_behind_the_trigger, tamper


def owner_membership(owner, acme):
    return Membership.objects.get(user=owner, organization=acme)


def test_it_chains_each_event_to_the_previous_one(in_acme):
    first = services.record("test.first", object_type="thing", object_label="one")
    second = services.record("test.second", object_type="thing", object_label="two")
    assert second.prev_hash == first.hash
    checked, broken = services.verify()
    assert broken is None and checked >= 2


def test_it_records_environment_changes_with_a_diff(owner, acme, in_acme):
    environment = environments.create_environment(owner_membership(owner, acme), name="qa")
    environments.update_environment(
        owner_membership(owner, acme), environment, description="for testers"
    )
    event = AuditEvent.objects.filter(action="environment.update").get()
    assert event.changes == {"description": ["", "for testers"]}
    # No request here: the member the service was given is the actor all the same.
    assert (event.actor_type, event.actor_label) == ("user", owner.email)


def test_it_records_the_system_when_no_one_acts(in_acme):
    event = services.record("test.job")
    assert (event.actor_type, event.actor_id, event.actor_label) == ("system", "", "system")


def test_it_refuses_update_and_delete_at_the_database(in_acme):
    event = services.record("test.event")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="forged")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE audit_auditevent")


def test_it_names_the_first_altered_event(in_acme):
    events = [services.record(f"test.{n}") for n in range(5)]
    tamper(events[2].id, changes=json.dumps({"role": ["viewer", "owner"]}))
    _checked, broken = services.verify()
    assert broken[0]["id"] == events[2].id
    assert "content was changed" in broken[1]


def test_it_notices_a_deleted_event(in_acme):
    events = [services.record(f"test.{n}") for n in range(4)]
    delete_behind_the_trigger(events[1].id)
    _checked, broken = services.verify()
    assert broken[0]["id"] == events[2].id
    assert "predecessor" in broken[1]


def test_audit_verify_command_fails_on_tampering(acme, capsys):
    connection.set_tenant(acme)
    event = services.record("test.event")
    services.record("test.later")
    connection.set_schema_to_public()
    call_command("audit_verify", "--org", "acme")
    assert "acme:" in capsys.readouterr().out
    connection.set_tenant(acme)
    tamper(event.id, actor_label="someone-else")
    connection.set_schema_to_public()
    with pytest.raises(CommandError):
        call_command("audit_verify", "--org", "acme")
    assert f"BROKEN at event {event.id}" in capsys.readouterr().err


def test_audit_verify_refuses_an_unknown_organisation(db):
    with pytest.raises(CommandError, match="No organisation"):
        call_command("audit_verify", "--org", "nope")


def test_it_archives_old_events_and_the_rest_still_verifies(in_acme, tmp_path):
    from datetime import timedelta

    from django.utils import timezone

    old = [services.record(f"test.old.{n}") for n in range(3)]
    cutoff = timezone.now() + timedelta(microseconds=1)
    recent = services.record("test.recent")
    anchor = services.archive_before(cutoff, tmp_path)
    assert anchor.archived_through_id == old[-1].id
    lines = (tmp_path / anchor.archive_file.rsplit("/", 1)[1]).read_text().splitlines()
    assert json.loads(lines[-1])["hash"] == old[-1].hash
    remaining = list(AuditEvent.objects.values_list("id", flat=True))
    assert recent.id in remaining and old[0].id not in remaining
    assert services.verify()[1] is None
    services.record("test.after-archive")
    assert services.verify()[1] is None


def test_it_records_sign_ins_and_failures_without_the_password(owner, acme):
    from tests.base import PASSWORD, client_for

    client = client_for(None, acme)
    client.post("/accounts/login/", {"login": owner.email, "password": "wrong-password"})
    client.post("/accounts/login/", {"login": owner.email, "password": PASSWORD})
    connection.set_tenant(acme)
    failed = AuditEvent.objects.get(action="auth.login_failed")
    assert failed.changes == {"login": owner.email}
    assert "wrong-password" not in json.dumps(services.as_dict(failed))
    login = AuditEvent.objects.get(action="auth.login")
    assert login.actor_label == owner.email and login.ip == "127.0.0.1"


def test_it_rejects_an_impossible_date_range(in_acme):
    from datetime import datetime

    from windflow.errors import ServiceError

    with pytest.raises(ServiceError, match="after its end"):
        services.filtered(
            since=datetime(2026, 2, 1, tzinfo=UTC), until=datetime(2026, 1, 1, tzinfo=UTC)
        )


def test_it_names_secret_events_plainly(owner, acme, in_acme):
    from apps.secrets import services as secrets

    secrets.create_secret(owner_membership(owner, acme), name="DB_PASSWORD", value="pw-123456")
    event = AuditEvent.objects.get(action="secret.create")
    assert (event.object_type, event.object_label) == ("secret", "DB_PASSWORD")


def test_it_archives_an_organisations_old_events_with_the_command(
    acme, globex, tmp_path, monkeypatch, capsys
):
    from datetime import timedelta

    from django.utils import timezone

    connection.set_tenant(acme)
    old = list(AuditEvent.objects.order_by("id").values_list("id", flat=True))
    assert old  # acme's provisioning, at least
    connection.set_tenant(globex)
    globex_events = AuditEvent.objects.count()
    # Forty days pass: everything so far is older than the 30 days kept.
    later = timezone.now() + timedelta(days=40)
    monkeypatch.setattr(timezone, "now", lambda: later)
    connection.set_tenant(acme)
    recent = services.record("test.recent")
    connection.set_schema_to_public()

    call_command("audit_archive", "--days", "30", "--org", "acme", "--out", str(tmp_path))
    archive = tmp_path / f"audit-{acme.schema_name}-through-{old[-1]}.jsonl"
    assert capsys.readouterr().out == f"acme: {len(old)} events → {archive}\n"
    lines = archive.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines[1:]] == old
    connection.set_tenant(acme)
    assert list(AuditEvent.objects.values_list("id", flat=True)) == [recent.id]
    assert services.verify()[1] is None  # what remains still verifies, from the anchor
    connection.set_tenant(globex)
    assert AuditEvent.objects.count() == globex_events  # only the organisation asked for

    connection.set_schema_to_public()
    call_command("audit_archive", "--days", "30", "--org", "acme", "--out", str(tmp_path))
    assert capsys.readouterr().out.startswith("acme: nothing older than ")


def test_it_refuses_bad_archive_arguments(db, tmp_path):
    with pytest.raises(CommandError, match="at least 1"):
        call_command("audit_archive", "--days", "0", "--out", str(tmp_path))
    with pytest.raises(CommandError, match="No organisation"):
        call_command("audit_archive", "--days", "30", "--org", "nope", "--out", str(tmp_path))
    assert list(tmp_path.iterdir()) == []
