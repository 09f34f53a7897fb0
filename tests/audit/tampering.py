"""Changing the audit trail behind the database trigger's back, as a superuser could: for
tests of what verification notices."""

from django.db import connection


def tamper(event_id, **changes):
    """Change a row behind the trigger's back, as a database superuser could."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only")
        for column, value in changes.items():
            cursor.execute(
                f"UPDATE audit_auditevent SET {column} = %s WHERE id = %s",  # noqa: S608
                [value, event_id],
            )
        cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_append_only")


def delete_behind_the_trigger(event_id):
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only")
        cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [event_id])
        cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_append_only")
