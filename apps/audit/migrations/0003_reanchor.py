"""Masking secret values stored before issue 9 (`manage.py mask_stored_secrets`) rewrites the
events that held one and re-hashes the chain from the first of them. The trigger allows that
UPDATE only inside a transaction that set `windflow.audit_reanchoring`; the re-anchoring
service records the old and the new head in an `audit.reanchor` event that is itself
chained. Everything else stays refused as before."""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION public.windflow_audit_forbid_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('windflow.audit_archiving', true) = 'on' THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND current_setting('windflow.audit_reanchoring', true) = 'on' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit events are append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""

PREVIOUS = """
CREATE OR REPLACE FUNCTION public.windflow_audit_forbid_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('windflow.audit_archiving', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit events are append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_immutable")]

    operations = [migrations.RunSQL(FUNCTION, PREVIOUS)]
