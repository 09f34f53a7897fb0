"""Rules for organisation slugs: each slug becomes a DNS label and a PostgreSQL schema name."""

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

SLUG_MIN_LENGTH = 3
SLUG_MAX_LENGTH = 40
SLUG_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")

# Host names the platform needs for itself, or that would confuse users or PostgreSQL.
RESERVED_SLUGS = frozenset(
    {
        "admin",
        "api",
        "app",
        "apps",
        "assets",
        "auth",
        "billing",
        "blog",
        "cdn",
        "dashboard",
        "default",
        "demo-template",
        "docs",
        "ftp",
        "help",
        "imap",
        "info",
        "localhost",
        "login",
        "mail",
        "media",
        "metrics",
        "oidc",
        "pop",
        "public",
        "root",
        "signup",
        "smtp",
        "sso",
        "static",
        "status",
        "support",
        "system",
        "template",
        "test",
        "windflow",
        "ws",
        "www",
        "information-schema",
    }
)


def validate_slug(value: str) -> None:
    if len(value) < SLUG_MIN_LENGTH:
        raise ValidationError(
            _("The address must be at least %(n)d characters long."),
            code="too_short",
            params={"n": SLUG_MIN_LENGTH},
        )
    if len(value) > SLUG_MAX_LENGTH:
        raise ValidationError(
            _("The address must be at most %(n)d characters long."),
            code="too_long",
            params={"n": SLUG_MAX_LENGTH},
        )
    if not SLUG_PATTERN.match(value):
        raise ValidationError(
            _(
                "Use lower-case letters, digits and single hyphens only, starting with a letter "
                "(for example “acme” or “acme-labs”)."
            ),
            code="invalid",
        )
    if value in RESERVED_SLUGS or value.startswith("pg-"):
        raise ValidationError(
            _("“%(slug)s” is reserved. Please choose another address."),
            code="reserved",
            params={"slug": value},
        )


def schema_name_for(slug: str) -> str:
    """Slugs never contain underscores, so this mapping is one-to-one."""
    return slug.replace("-", "_")


def allowed_local_sockets() -> list[str]:
    """The unix sockets the operator allows (WINDFLOW_LOCAL_SOCKETS), normalised."""
    import os.path

    from django.conf import settings

    return [os.path.normpath(path) for path in settings.WINDFLOW_LOCAL_SOCKETS]


def local_socket_is_allowed(path: str) -> bool:
    """True only for an absolute path that is, once normalised, on the allow-list."""
    import os.path

    if not path or not path.startswith("/") or "\x00" in path:
        return False
    return os.path.normpath(path) in allowed_local_sockets()


def validate_local_socket(value: str) -> None:
    if not local_socket_is_allowed(value):
        raise ValidationError(
            _(
                "%(path)s is not an allowed Docker socket: the operator lists the allowed ones "
                "in WINDFLOW_LOCAL_SOCKETS (now: %(allowed)s)."
            ),
            code="socket_not_allowed",
            params={"path": value, "allowed": ", ".join(allowed_local_sockets()) or "-"},
        )
