"""Masking secret values that audit events recorded before redaction covered everything
(issue 9): the chain is hashed again from the first changed event, an `audit.reanchor` event
records the old and the new head, and the chain verifies; nothing else may change events."""

import pytest
from django.db import transaction
from django.db.utils import DatabaseError

from apps.audit import services
from apps.audit.models import AuditEvent
from windflow.errors import ServiceError
from windflow.redaction import MASK, Redactor

VALUE = "leaked-value-1234"


def seed():
    """Events recorded in clear (no scope was active for them)."""
    services.record("test.before", object_label="clean")
    leaked = services.record(
        "test.leak", object_label=f"label {VALUE}", changes={"reason": f"printed {VALUE}"}
    )
    services.record("test.after", changes={"n": 1})
    return leaked


def test_it_masks_events_rehashes_the_chain_and_records_the_anchor(in_acme):
    leaked = seed()
    head = AuditEvent.objects.order_by("-id").first().hash
    summary = services.remask(Redactor([VALUE]))
    assert summary["changed"] == 1 and summary["first_changed_id"] == leaked.id
    assert summary["rehashed"] == 2 and summary["old_head"] == head
    leaked.refresh_from_db()
    assert leaked.changes == {"reason": f"printed {MASK}"}
    assert leaked.object_label == f"label {MASK}"
    assert not AuditEvent.objects.filter(changes__icontains=VALUE).exists()
    anchor = services.reanchors().get()
    assert anchor.changes["old_head"] == head
    assert anchor.changes["new_head"] == summary["new_head"] == anchor.prev_hash
    assert anchor.changes["events_changed"] == 1
    assert services.verify()[1] is None
    # Idempotent: nothing left to mask, nothing rewritten, no second anchor.
    again = services.remask(Redactor([VALUE]))
    assert again["changed"] == 0 and again["rehashed"] == 0
    assert services.reanchors().count() == 1
    # The trigger refuses changes again once the re-anchoring is over.
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=leaked.pk).update(action="forged")


def test_it_changes_nothing_on_a_dry_run(in_acme):
    leaked = seed()
    summary = services.remask(Redactor([VALUE]), dry_run=True)
    assert summary["changed"] == 1
    leaked.refresh_from_db()
    assert VALUE in leaked.changes["reason"]
    assert not services.reanchors().exists()
    assert services.verify()[1] is None


def test_it_refuses_to_rewrite_a_chain_that_does_not_verify(in_acme):
    from tests.audit.tampering import tamper

    leaked = seed()
    tamper(leaked.id, action="forged")
    with pytest.raises(ServiceError, match="broken"):
        services.remask(Redactor([VALUE]))
    leaked.refresh_from_db()
    assert VALUE in leaked.changes["reason"]
