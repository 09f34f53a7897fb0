from django.conf import settings
from django.db import models


def public_user_reference(**options) -> models.ForeignKey:
    """A reference from an organisation's table to a user. Users live in the public schema:
    no database constraint and no cascade, so that deleting a user from the public schema never
    makes Django look for this tenant table there."""
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        **options,
    )
