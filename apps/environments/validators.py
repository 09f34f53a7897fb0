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


# --- NAME=value lines ------------------------------------------------------------------------
#
# The one parser for text typed as `NAME=value` lines: environment and stack variables, and
# server labels (any name). Rules: lines split on LF, CRLF or CR; blank
# lines and lines starting with # are skipped; name and value are stripped; the value is
# everything after the first "=" (so it may hold "="). Every bad line is reported, with its
# number, in one ValidationError: no "=", a name that breaks the rule, a name set twice.

MAX_LINE_ERRORS = 20  # a pasted file of garbage gets a readable answer, not one per line


def parse_lines(text: str, *, any_name: bool = False) -> dict:
    """`NAME=value` lines into a dict. Names follow the variable rule (VARIABLE_NAME) unless
    `any_name` (labels: any non-empty name, and errors that say key=value)."""
    pairs: dict[str, str] = {}
    errors: list[str] = []
    text = (text or "").removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not name:
            expected = (
                _("Line %(n)d: expected key=value.")
                if any_name
                else _("Line %(n)d: expected NAME=value.")
            )
            errors.append(expected % {"n": number})
        elif not any_name and not VARIABLE_NAME.match(name):
            errors.append(
                _(
                    "Line %(n)d: “%(name)s” is not a valid variable name (letters, digits and _, "
                    "not starting with a digit)."
                )
                % {"n": number, "name": name}
            )
        elif name in pairs:
            errors.append(_("Line %(n)d: %(name)s is set twice.") % {"n": number, "name": name})
        else:
            pairs[name] = value.strip()
    if len(errors) > MAX_LINE_ERRORS:
        more = len(errors) - MAX_LINE_ERRORS
        errors = [*errors[:MAX_LINE_ERRORS], _("… and %(n)d more lines like these.") % {"n": more}]
    if errors:
        raise ValidationError(errors)
    return pairs


def parse_variables(text: str) -> dict[str, str]:
    """Variables typed as `NAME=value` lines, held to the same limits as variables sent as a
    JSON object (validate_variables)."""
    variables = parse_lines(text)
    validate_variables(variables)
    return variables


def format_lines(pairs: dict[str, str] | None) -> str:
    """The text parse_lines reads back: one `NAME=value` line per entry, sorted by name."""
    return "\n".join(f"{name}={value}" for name, value in sorted((pairs or {}).items()))
