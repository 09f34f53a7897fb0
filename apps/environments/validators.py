import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_VARIABLES = 200
MAX_VALUE_LENGTH = 8192
# Environment slugs that would shadow a page of /environments/.
RESERVED_SLUGS = frozenset({"add", "compose-policy"})


def validate_not_reserved_slug(value) -> None:
    if value in RESERVED_SLUGS:
        raise ValidationError(
            _("“%(slug)s” is reserved for a page: choose another name.") % {"slug": value}
        )


def validate_variables(value) -> None:
    if not isinstance(value, dict):
        raise ValidationError(_("Variables must be an object of NAME: value pairs."))
    if len(value) > MAX_VARIABLES:
        raise ValidationError(_("At most %(n)d variables.") % {"n": MAX_VARIABLES})
    for name, item in value.items():
        if not VARIABLE_NAME.match(str(name)):
            raise ValidationError(
                _(
                    "“%(name)s” is not a valid variable name (letters, digits and _, not starting "
                    "with a digit)."
                )
                % {"name": name}
            )
        if not isinstance(item, str):
            raise ValidationError(_("The value of %(name)s must be text.") % {"name": name})
        if len(item) > MAX_VALUE_LENGTH:
            raise ValidationError(
                _("The value of %(name)s is longer than %(n)d characters.")
                % {"name": name, "n": MAX_VALUE_LENGTH}
            )


def parse_dotenv(text: str) -> dict[str, str]:
    """`NAME=value` lines (blank lines and # comments ignored) into a dict, with line numbers
    in the errors."""
    variables: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep:
            raise ValidationError(_("Line %(n)d: expected NAME=value.") % {"n": number})
        if not VARIABLE_NAME.match(name):
            raise ValidationError(
                _("Line %(n)d: “%(name)s” is not a valid variable name.")
                % {"n": number, "name": name}
            )
        if name in variables:
            raise ValidationError(
                _("Line %(n)d: %(name)s is set twice.") % {"n": number, "name": name}
            )
        variables[name] = value.strip()
    validate_variables(variables)
    return variables


def format_dotenv(variables: dict[str, str]) -> str:
    return "\n".join(f"{name}={value}" for name, value in sorted(variables.items()))
