from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    """Roles inside one organisation, from the most to the least powerful."""

    OWNER = "owner", _("Owner")
    ADMIN = "admin", _("Admin")
    OPERATOR = "operator", _("Operator")
    DEVELOPER = "developer", _("Developer")
    VIEWER = "viewer", _("Viewer")

    @property
    def rank(self) -> int:
        return ROLE_RANKS[self]


ROLE_RANKS = {
    Role.VIEWER: 10,
    Role.DEVELOPER: 20,
    Role.OPERATOR: 30,
    Role.ADMIN: 40,
    Role.OWNER: 50,
}


class TokenScope(models.TextChoices):
    READ = "read", _("Read only")
    WRITE = "write", _("Read and write")
