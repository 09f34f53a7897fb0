"""Validate a loaded compose document against the Compose Specification.

``validate(document) -> list[Problem]``: an empty list means the document can be
planned. Every problem names its place in the file (``services.web.ports[0]``)
and says what is wrong in plain words.

The schema is the official Compose Specification JSON schema, vendored in
``schema/compose-spec.json`` (see ``schema/NOTICE``), checked with ``jsonschema``.
A few keys added to the specification after that snapshot are layered over it
here (``_NEWER_KEYS``) so that current files are not refused for them.

Keys WindFlow cannot honour are refused with a clear message rather than silently
dropped: ``develop``, and ``extends`` / top-level ``include`` (the project loader,
:mod:`windflow.engine.compose.project`, resolves them before a file gets here). ``build``
and ``env_file`` need the files of a project folder: accepted in a file merged from a project
(it carries the loader's ``x-windflow-project`` field, or ``project_files=True``), refused
in a stack written inline. Compose ``secrets:`` come from a project ``file:`` or from
``environment: NAME`` (the stack's variable or WindFlow secret NAME); ``configs:`` from a
project ``file:``. ``external`` secrets and configs (Swarm's) are refused.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, NamedTuple

from jsonschema import Draft201909Validator
from jsonschema.exceptions import ValidationError, best_match

from windflow.engine.compose import Problem, finding, from_project

Severity = Literal["error", "warning", "info"]

SCHEMA_PATH = Path(__file__).parent / "schema" / "compose-spec.json"


# The id of a finding about the shape of the file (a key or a value the Compose
# Specification does not allow): the other checks need a file of the right shape.
SCHEMA_RULE = "compose-schema"


class Rule(NamedTuple):
    title: str
    severity: Severity
    hint: str


RULES: dict[str, Rule] = {
    "compose-schema": Rule(
        "The file does not follow the Compose Specification",
        "error",
        "Fix the key or value at the path shown; the Compose Specification lists every key.",
    ),
    "compose-unsupported": Rule(
        "A Compose feature WindFlow does not support yet",
        "error",
        "Remove the key; the message says what to use instead.",
    ),
    "service-no-image": Rule(
        "A service has no image",
        "error",
        "Add image: with the image to run, e.g. image: nginx:1.27.",
    ),
    "compose-no-services": Rule(
        "The file defines no services",
        "error",
        "Add a services: section with at least one service.",
    ),
    "service-no-build": Rule(
        "A service with pull_policy: build has no build: section",
        "error",
        "Add build: with the folder of its Dockerfile, or choose another pull_policy.",
    ),
}

# Keys that need the files of a project folder: refused in a stack written inline.
PROJECT_SERVICE_KEYS: dict[str, tuple[str, str]] = {
    "build": (
        "build is not supported yet: build the image in CI and reference it with image:",
        "Push the image to a registry from your CI and set image: registry/name:tag, or "
        "create the stack from a Git repository or an uploaded project folder, where "
        "WindFlow builds it.",
    ),
    "env_file": (
        "env_file is not supported: WindFlow keeps only the compose text, not files beside it",
        "Move the variables into environment: as ${NAME} and set them as stack variables "
        "or secrets, or create the stack from a Git repository or an uploaded project folder.",
    ),
}
# build: keys WindFlow applies (or may ignore safely: cache_from only speeds a build up).
BUILD_KEYS = frozenset({"context", "dockerfile", "args", "target", "labels", "cache_from"})

# key -> (message, hint) for keys we refuse, per service and at the top level.
UNSUPPORTED_SERVICE_KEYS: dict[str, tuple[str, str]] = {
    "extends": (
        "extends is not supported yet: write the service out in full",
        "Copy the keys of the extended service into this one, or use a YAML anchor (&/*).",
    ),
    "develop": (
        "develop is not supported: it only applies to `docker compose watch` on a laptop",
        "Remove the develop: section from the stack WindFlow deploys.",
    ),
}
UNSUPPORTED_TOP_KEYS: dict[str, tuple[str, str]] = {
    "include": (
        "include is not supported yet: WindFlow deploys a single compose file",
        "Merge the included files into this one.",
    ),
}

# Keys of the current specification missing from the vendored snapshot.
_NEWER_KEYS: dict[str, dict[str, Any]] = {
    "": {"name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]*$"}},
    "service": {
        "annotations": {"$ref": "#/definitions/list_or_dict"},
        "attach": {"type": "boolean"},
        "cgroup": {"type": "string", "enum": ["host", "private"]},
        "gpus": {},
        "uts": {"type": "string"},
        # env_file entries may be {path, required, format} (newer specification)
        "env_file": {
            "oneOf": [
                {"type": "string"},
                {
                    "type": "array",
                    "items": {
                        "oneOf": [
                            {"type": "string"},
                            {
                                "type": "object",
                                "properties": {
                                    "path": {"type": "string"},
                                    "required": {"type": ["boolean", "string"]},
                                    "format": {"type": "string"},
                                },
                                "required": ["path"],
                                "additionalProperties": False,
                            },
                        ]
                    },
                },
            ]
        },
    },
    "healthcheck": {"start_interval": {"type": "string", "format": "duration"}},
    "secret": {"environment": {"type": "string"}},
    "config": {"content": {"type": "string"}, "environment": {"type": "string"}},
    # build: keys of the current specification (WindFlow refuses them with its own words)
    "build": {
        key: {}
        for key in (
            "additional_contexts",
            "cache_to",
            "dockerfile_inline",
            "entitlements",
            "no_cache",
            "platforms",
            "privileged",
            "pull",
            "secrets",
            "ssh",
            "tags",
            "ulimits",
        )
    },
}

_NAMED_SECTIONS = {"services", "networks", "volumes", "secrets", "configs"}
_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "null": "empty",
}


@functools.cache
def _validator() -> Draft201909Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    schema["properties"].update(_NEWER_KEYS[""])
    defs = schema["definitions"]
    defs["service"]["properties"].update(_NEWER_KEYS["service"])
    defs["healthcheck"]["properties"].update(_NEWER_KEYS["healthcheck"])
    defs["secret"]["properties"].update(_NEWER_KEYS["secret"])
    defs["config"]["properties"].update(_NEWER_KEYS["config"])
    build_long = defs["service"]["properties"]["build"]["oneOf"][1]
    build_long["properties"].update(_NEWER_KEYS["build"])
    # depends_on long syntax gained `restart` and `required`.
    long_form = defs["service"]["properties"]["depends_on"]["oneOf"][1]
    condition = next(iter(long_form["patternProperties"].values()))
    condition["properties"].update(
        {"restart": {"type": "boolean"}, "required": {"type": "boolean"}}
    )
    # ports long syntax: `published` may be a string ("8000-8001") in the current spec.
    port_long = defs["service"]["properties"]["ports"]["items"]["oneOf"][2]
    port_long["properties"]["published"] = {"type": ["string", "integer"]}
    Draft201909Validator.check_schema(schema)
    return Draft201909Validator(schema)


def format_path(parts: Iterable[Any]) -> str:
    """``("services", "web", "ports", 0)`` -> ``services.web.ports[0]``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _where(path: str) -> str:
    return path or "the top level of the file"


def _type_words(types: Any) -> str:
    if isinstance(types, str):
        types = [types]
    words = [_TYPE_WORDS.get(t, t) for t in types]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _instance_words(instance: Any) -> str:
    if isinstance(instance, bool):
        return "true or false"
    if isinstance(instance, dict):
        return "a mapping"
    if isinstance(instance, list):
        return "a list"
    if instance is None:
        return "empty"
    if isinstance(instance, int | float):
        return "a number"
    return "a string"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unexpected_keys(error: ValidationError) -> list[str]:
    schema = error.schema
    allowed = set(schema.get("properties", {}))
    patterns = list(schema.get("patternProperties", {}))
    return [
        key
        for key in error.instance
        if key not in allowed and not any(re.search(p, str(key)) for p in patterns)
    ]


def _problems_from_error(error: ValidationError) -> list[Problem]:
    """Turn one jsonschema error into plain-worded problems."""
    parts = list(error.absolute_path)
    path = format_path(parts)
    kind = error.validator

    def problem(message: str, at: str = path, hint: str = "") -> Problem:
        return finding(SCHEMA_RULE, "error", message, at, hint or RULES[SCHEMA_RULE].hint)

    if kind == "additionalProperties" and isinstance(error.instance, dict):
        problems = []
        known = sorted(error.schema.get("properties", {}))
        for key in _unexpected_keys(error):
            key_path = format_path([*parts, key])
            if len(parts) == 1 and parts[0] in _NAMED_SECTIONS:
                problems.append(
                    problem(
                        f"{_where(path)}: {key!r} is not a valid name "
                        "(use letters, digits, '.', '_' and '-' only)",
                        key_path,
                        "Rename it with letters, digits, '.', '_' and '-' only.",
                    )
                )
                continue
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = (
                f"Did you mean {close[0]!r}?"
                if close
                else ("Remove it, or prefix it with x- to keep it as an extension field.")
            )
            problems.append(
                problem(
                    f"{key_path}: unknown key {key!r} (not part of the Compose Specification)",
                    key_path,
                    hint,
                )
            )
        return problems
    if kind == "type":
        return [
            problem(
                f"{_where(path)} must be {_type_words(error.validator_value)}, "
                f"not {_instance_words(error.instance)}"
            )
        ]
    if kind == "enum":
        choices = ", ".join(str(c) for c in error.validator_value)
        return [problem(f"{_where(path)} must be one of: {choices} (got {_show(error.instance)})")]
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return [problem(f"{_where(path)} is missing the required key {missing!r}")]
    if kind in ("oneOf", "anyOf"):
        context = list(error.context or [])
        direct = [e for e in context if not e.relative_path]
        if context and all(e.validator == "type" for e in direct) and len(direct) == len(context):
            types: list[str] = []
            for e in direct:
                value = e.validator_value
                types.extend([value] if isinstance(value, str) else value)
            types = list(dict.fromkeys(types))
            return [
                problem(
                    f"{_where(path)} must be {_type_words(types)}, "
                    f"not {_instance_words(error.instance)}"
                )
            ]
        if context:
            # The branch whose type matched the value says the most.
            matching = [e for e in context if e.validator != "type" or e.relative_path]
            return _problems_from_error(best_match(matching or context))
        return [problem(f"{_where(path)} is not valid here ({_show(error.instance)})")]
    if kind == "pattern":
        return [
            problem(f"{_where(path)}: {_show(error.instance)} does not have the expected format")
        ]
    if kind == "uniqueItems":
        return [problem(f"{_where(path)} lists the same entry more than once")]
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return [problem(f"{_where(path)}: {error.message}")]
    if kind in ("minItems", "minProperties"):
        return [problem(f"{_where(path)} must not be empty")]
    return [problem(f"{_where(path)}: {error.message}")]


def _strip_unsupported(
    document: dict[str, Any], project_files: bool
) -> tuple[dict[str, Any], list[Problem]]:
    """Report unsupported keys and return a copy of the document without them."""
    refused = dict(UNSUPPORTED_SERVICE_KEYS)
    if not project_files:
        refused.update(PROJECT_SERVICE_KEYS)
    problems: list[Problem] = []
    doc = copy.copy(document)
    for key, (message, hint) in UNSUPPORTED_TOP_KEYS.items():
        if key in doc:
            problems.append(finding("compose-unsupported", "error", message, key, hint))
            del doc[key]
    services = doc.get("services")
    if isinstance(services, dict):
        services = dict(services)
        for name, service in services.items():
            if not isinstance(service, dict):
                continue
            trimmed = dict(service)
            for key, (message, hint) in refused.items():
                if key in trimmed:
                    at = format_path(["services", name, key])
                    problems.append(
                        finding("compose-unsupported", "error", f"{at}: {message}", at, hint)
                    )
                    del trimmed[key]
            services[name] = trimmed
        doc["services"] = services
    return doc, problems


def _image_problems(document: dict[str, Any]) -> list[Problem]:
    services = document.get("services")
    if services is None or (isinstance(services, dict) and not services):
        return [
            finding(
                "compose-no-services",
                "error",
                "The file defines no services.",
                "services",
                RULES["compose-no-services"].hint,
            )
        ]
    if not isinstance(services, dict):
        return []  # the schema reports the wrong type
    problems = []
    for name, service in services.items():
        if not isinstance(service, dict):
            continue
        if "build" in service:
            continue  # the build: refusal already says what to do
        image = service.get("image")
        if image is None or (isinstance(image, str) and not image.strip()):
            at = format_path(["services", name])
            problems.append(
                finding(
                    "service-no-image",
                    "error",
                    f"{at} has no image: say which image to run",
                    format_path(["services", name, "image"]),
                    RULES["service-no-image"].hint,
                )
            )
    return problems


def _unsupported(message: str, path: str, hint: str) -> Problem:
    return finding("compose-unsupported", "error", f"{path}: {message}", path, hint)


def _service_problems(name: str, service: dict[str, Any], project_files: bool) -> list[Problem]:
    """build: keys WindFlow does not apply, and pull_policy."""
    problems = []
    build = service.get("build")
    if isinstance(build, dict) and project_files:
        for key in build:
            if str(key).startswith("x-") or key in BUILD_KEYS:
                continue
            problems.append(
                _unsupported(
                    f"build.{key} is not supported: WindFlow builds with context, "
                    "dockerfile, args, target and labels",
                    format_path(["services", name, "build", key]),
                    "Remove it; put what it does in the Dockerfile where it can be.",
                )
            )
    policy = service.get("pull_policy")  # the schema lists the values
    at = format_path(["services", name, "pull_policy"])
    if policy == "build" and build is None:
        problems.append(
            finding(
                "service-no-build",
                "error",
                f"{at}: build means the image is built, but the service has no build: section",
                at,
                RULES["service-no-build"].hint,
            )
        )
    return problems


_SOURCE_HINTS = {
    "secret": "Use file: with a file of the project, or environment: NAME to take the value "
    "of the stack's variable or WindFlow secret NAME.",
    "config": "Use file: with a file of the project.",
}


def _source_problems(document: dict[str, Any], project_files: bool) -> list[Problem]:
    """Where each top-level secret and config comes from: a project ``file:``, or for a
    secret ``environment: NAME``; never ``external`` (Swarm's)."""
    problems = []
    for section in ("secrets", "configs"):
        entries = document.get(section)
        if not isinstance(entries, dict):
            continue
        noun = section[:-1]
        hint = _SOURCE_HINTS[noun]
        for name, entry in entries.items():
            if not isinstance(entry, dict):
                continue  # the schema reports it
            if entry.get("external"):
                message = (
                    f"an external {noun} belongs to Docker Swarm; containers started "
                    "without Swarm cannot use it"
                )
                problems.append(
                    _unsupported(message, format_path([section, name, "external"]), hint)
                )
                continue
            if "file" in entry and not project_files:
                message = (
                    f"a {noun} file needs the project's files; a stack written inline has none"
                )
                problems.append(
                    _unsupported(
                        message,
                        format_path([section, name, "file"]),
                        "Create the stack from a Git repository or an uploaded project folder.",
                    )
                )
            allowed = {"file", "environment"} if noun == "secret" else {"file"}
            others = [
                key for key in ("content", "environment") if key in entry and key not in allowed
            ]
            for key in others:
                message = f"a {noun} from {key}: is not supported yet"
                problems.append(_unsupported(message, format_path([section, name, key]), hint))
            if not allowed & set(entry) and not others:
                message = f"say where the {noun} comes from"
                problems.append(_unsupported(message, format_path([section, name]), hint))
    return problems


def validate(document: Any, *, project_files: bool | None = None) -> list[Problem]:
    """Check a loaded compose document; return its problems (empty when valid).
    `project_files`: the document was merged from a project folder, so ``build:``,
    ``env_file:`` and config or secret files have the files they need (None: when the
    document carries the loader's ``x-windflow-project`` field)."""
    if project_files is None:
        project_files = from_project(document)
    if not isinstance(document, dict):
        return [
            finding(
                "compose-schema",
                "error",
                f"A compose file must be a mapping of keys (services:, volumes:...), "
                f"not {_instance_words(document)}.",
                "",
                "Start the file with services: and list each service under it.",
            )
        ]
    doc, problems = _strip_unsupported(document, project_files)
    problems.extend(_source_problems(document, project_files))
    seen: set[tuple[str, str]] = set()
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    for error in errors:
        for found in _problems_from_error(error):
            if (found.path, found.message) not in seen:
                seen.add((found.path, found.message))
                problems.append(found)
    problems.extend(_image_problems(document))
    services = document.get("services")
    if isinstance(services, dict):
        for name, service in services.items():
            if isinstance(service, dict):
                problems.extend(_service_problems(str(name), service, project_files))
    return problems
