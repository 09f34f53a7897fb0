"""Every id that a compose finding carries (``Problem.code``: the ``rule`` of the API, the
editor's checks and the form errors). One scheme: lowercase words joined by hyphens, that
say what was found. The ids are stable: a client may match on them, so an id is never
renamed nor reused for another finding. They are listed in docs/stacks.md ("Finding
ids"); a new finding takes a new id, added here and there.

The validation and lint rules have a title, a severity and a fix hint
(:data:`windflow.engine.compose.validate.RULES`, :data:`windflow.engine.compose.lint.RULES`);
the other steps (YAML, interpolation, plan) say their fix in each finding.
"""

from __future__ import annotations

from .lint import RULES as LINT_RULES
from .validate import RULES as VALIDATION_RULES

# id -> what it means, for the findings of loading, interpolating and planning a file.
STEP_IDS: dict[str, str] = {
    "compose-too-large": "The file is larger than the limit (1 MiB)",
    "compose-empty": "The file is empty",
    "compose-not-mapping": "The file is not a mapping of keys",
    "compose-multiple-documents": "The file holds more than one YAML document",
    "compose-invalid": "The file cannot be used as it is",
    "yaml-syntax": "The file is not valid YAML",
    "yaml-encoding": "The file is not UTF-8 text",
    "yaml-tag": "A YAML tag that is not allowed",
    "yaml-duplicate-anchor": "A YAML anchor defined twice",
    "yaml-recursive-alias": "A YAML alias that refers to itself",
    "yaml-unknown-alias": "A YAML alias to an anchor that does not exist",
    "yaml-alias-bomb": "YAML aliases that expand beyond the limit",
    "yaml-too-deep": "Nesting deeper than the limit",
    "yaml-duplicate-key": "The same key twice in a mapping",
    "variable-missing": "A ${NAME} that is neither set nor given a default",
    "variable-required": "A ${NAME:?message} that is not set",
    "interpolation-syntax": "A malformed ${...}",
    "compose-invalid-value": "A value WindFlow cannot read (duration, size, port...)",
    "compose-undeclared-volume": "A named volume not declared under volumes:",
    "compose-undeclared-network": "A network not declared under networks:",
    "compose-conflicting-values": "Two keys that set the same thing differently",
    "compose-unknown-service": "A dependency on a service that is not in the file",
    "compose-dependency-cycle": "Services that depend on each other in a cycle",
    # reading a project folder (windflow.engine.compose.project)
    "project-no-compose-file": "The project folder has no compose file",
    "project-file-missing": "A file the compose uses is not in the project",
    "project-path-outside": "A path outside the project folder (../, absolute, escaping link)",
    "project-path-invalid": "A path that uses a variable that is not set",
    "project-home-path": "A ~ path (a home directory)",
    "project-file-too-large": "A compose or env file larger than the limit (1 MiB)",
    "project-too-many-files": "The project makes WindFlow read too many files",
    "project-too-deep": "include or extends nested deeper than the limit",
    "project-include-invalid": "An include entry without a file",
    "project-include-cycle": "Files that include each other in a cycle",
    "project-include-conflict": "An included file defines a resource the project already has",
    "project-extends-invalid": "extends names no service, or a service that does not exist",
    "project-extends-cycle": "Services that extend each other in a cycle",
    "project-env-file-invalid": "A line of an env file that is not KEY=VALUE",
    "project-build-context": "A build context that is not a folder of the project",
}


def finding_ids() -> dict[str, str]:
    """Every compose finding id -> its title (validation, lint, then the other steps)."""
    ids = {rule: meta.title for rule, meta in VALIDATION_RULES.items()}
    ids.update((rule, meta.title) for rule, meta in LINT_RULES.items())
    ids.update(STEP_IDS)
    return ids


__all__ = ["STEP_IDS", "finding_ids"]
