"""One call from compose text to a deployable plan, or to the list of what is wrong.

The steps run in the order that gives the best messages: load (safe YAML with limits),
lint the file as written (so a finding points at the line the author typed), interpolate
``${VAR}`` from variables and secrets, validate the result against the Compose
Specification, list its host-level features (``hostaccess``: what the compose policy
judges), then plan. Each step runs whatever the earlier ones found (only unreadable YAML
stops them), so every kind of finding shows at once; a value that could not be
interpolated is left to its interpolation error. Every finding carries a line number when
the file has one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from . import ComposeError, Problem, format_path, from_project
from .hostaccess import HostFeature, host_features
from .interpolate import interpolate_checked, referenced_variables
from .lint import lint
from .load import load_compose_with_positions
from .plan import Plan, build_plan, env_file_notes, unsupported_keys
from .project import Project, remap
from .validate import SCHEMA_RULE, validate

# What a secret stands for while a file is edited: its value is never needed to check it.
PLACEHOLDER = "placeholder-value"
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
_LAST_SEGMENT = re.compile(r'(\.[^.\[]+|\[\d+\]|\["(?:[^"\\]|\\.)*"\])$')


@dataclass
class Analysis:
    """What :func:`analyse` found. ``plan`` is set only when there is no error."""

    problems: list[Problem] = field(default_factory=list)
    document: dict | None = None
    plan: Plan | None = None
    referenced: frozenset[str] = frozenset()
    missing: tuple[str, ...] = ()
    # Host-level features of the file as it deploys (interpolated); no allow-list applied.
    host_features: list[HostFeature] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity != "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def services(self) -> list[str]:
        return [spec.name for spec in self.plan.services] if self.plan else []

    def first_error(self) -> Problem | None:
        errors = self.errors
        return errors[0] if errors else None


def analyse(
    text: str | bytes,
    variables: Mapping[str, str | None],
    *,
    project: str,
    placeholders: Iterable[str] = (),
    origin: Project | None = None,
) -> Analysis:
    """Check `text` and plan it as compose project `project`. `variables` give
    ``${NAME}`` its value; names in `placeholders` (secrets, while editing) count as set
    without a value. Never raises for a bad file: the problems say what is wrong, every
    kind at once (a missing variable does not hide an unsupported key, nor an unsupported
    key an undeclared volume). Only a file that cannot be read as YAML stops the checks.

    `origin`: the :class:`~windflow.engine.compose.project.Project` that `text` (its
    ``compose_text``) was merged from. The file may then use what a project folder gives
    (``build:``, ``env_file:``, config and secret files), the project's ``.env`` fills in
    the variables not given, and each finding carries the ``file`` and ``line`` of the
    value in the project (``compose.override.yaml:12``). Without it, a merged text (it
    carries ``x-windflow-project``) may still use the project's files, but findings point
    at the merged text; any other text is a stack written inline: one file and nothing
    beside it."""
    try:
        document, positions = load_compose_with_positions(text)
    except ComposeError as error:
        return Analysis(problems=list(error.problems))
    analysis = _analyse(document, positions, variables, project, placeholders, origin)
    if origin is not None:
        analysis.problems = _sorted([remap(origin.source_map, p) for p in analysis.problems])
        analysis.host_features = [_moved(f, origin) for f in analysis.host_features]
    return analysis


def _moved(feature: HostFeature, origin: Project) -> HostFeature:
    """`feature` with the file and line of the project it comes from."""
    place = origin.locate(feature.path)
    return replace(feature, file=place[0], line=place[1]) if place else feature


def _analyse(document, positions, variables, project, placeholders, origin) -> Analysis:
    where = _locator(positions)
    problems = [where(p) for p in lint(document)]
    values = {name: PLACEHOLDER for name in placeholders}
    if origin is not None:
        values.update(origin.env_defaults)
    values.update(variables)
    resolved, error = interpolate_checked(document, values, positions=positions)
    unresolved = [p.path or "" for p in error.problems] if error else []
    if error is not None:
        problems.extend(error.problems)

    def fresh(found: Iterable[Problem]) -> list[Problem]:
        """The findings not about a value that could not be interpolated, nor already
        reported at the same place."""
        known = {(p.path, p.code) for p in problems}
        out = []
        for problem in found:
            if _under(problem.path, unresolved) or (problem.path, problem.code) in known:
                continue
            out.append(where(problem))
        return out

    checked = validate(resolved, project_files=True if origin is not None else None)
    problems.extend(fresh(checked))
    services = resolved.get("services") if isinstance(resolved, dict) else None
    if isinstance(services, dict):
        for name, config in services.items():
            problems.extend(fresh(unsupported_keys(str(name), config)))
    # A project's merged text checked without its folder (an edit of a project stack): its
    # env files are read when it deploys; the plan here leaves their values out.
    later = origin is None and from_project(resolved)
    if later:
        problems.extend(fresh(env_file_notes(resolved)))
    plan = None
    if not any(p.code == SCHEMA_RULE for p in checked):
        # The planner sees what the schema cannot (keys the driver does not apply,
        # undeclared volumes...); it needs a file of the right shape.
        try:
            plan = build_plan(
                resolved,
                project,
                env_files=origin.env_files if origin is not None else None,
                variables=values,
                env_files_later=later,
            )
        except ComposeError as refused:
            wrong = {p.path for p in problems if p.severity == "error" and p.path}
            problems.extend(p for p in fresh(refused.problems) if p.path not in wrong)
    analysis = Analysis(
        problems=_sorted(problems),
        document=resolved,
        referenced=frozenset(referenced_variables(document)),
        missing=error.missing_variables if error is not None else (),
        host_features=[
            feature
            for feature in host_features(resolved, project=project, positions=positions)
            if not _under(feature.path, unresolved)
        ],
    )
    if analysis.ok:
        analysis.plan = plan
    return analysis


def _under(path: str | None, prefixes: list[str]) -> bool:
    """Whether `path` is one of `prefixes` or inside one (``services.web.ports[0]`` is
    inside ``services.web.ports``)."""
    if not path:
        return False
    return any(
        path == prefix or path.startswith((prefix + ".", prefix + "["))
        for prefix in prefixes
        if prefix
    )


def _locator(positions):
    """A function adding the line and column of a problem's path (or of the nearest
    enclosing path) when it has none."""
    by_path = {format_path(path): place for path, place in positions.items()}

    def locate(problem: Problem) -> Problem:
        if problem.line is not None or problem.path is None:
            return problem
        path = problem.path
        while True:
            if path in by_path:
                line, column = by_path[path]
                return replace(problem, line=line, column=column)
            shorter = _LAST_SEGMENT.sub("", path)
            if shorter == path or not shorter:
                return problem
            path = shorter

    return locate


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(
        problems,
        key=lambda p: (
            _SEVERITY_ORDER.get(p.severity, 3),
            p.file or "",
            p.line or 0,
            p.path or "",
        ),
    )


__all__ = ["PLACEHOLDER", "Analysis", "analyse"]
