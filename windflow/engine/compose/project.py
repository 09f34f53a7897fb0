"""Load a compose *project*: a folder holding compose files, Dockerfiles, configuration
files and ``.env`` files, into the one merged compose text the rest of the engine reads.

``load_project(root, files=(), *, variables={}) -> Project``:

- the compose files (``-f a -f b``; by default the first of :data:`DEFAULT_FILES` and
  its ``.override`` file, as ``docker compose`` does) are merged in order with the
  Compose Specification's merge rules: mappings merged, scalars replaced, ``command`` /
  ``entrypoint`` / ``healthcheck.test`` replaced, ``environment`` / ``labels`` /
  ``sysctls`` / ``build.args`` merged by key, ``ports`` / ``volumes`` / ``secrets`` /
  ``configs`` / ``devices`` merged by their unique key (target...), other sequences
  appended without duplicates;
- ``include:`` (a path, or ``path`` / ``project_directory`` / ``env_file``) and
  ``extends:`` (a service of the same file, or of another ``file:``; recursive, cycles
  refused) are resolved;
- relative paths are resolved against the file that declares them (an included or
  extended file in a subfolder; override files given with ``-f`` resolve against the
  first file's folder, as compose does) and written back project-relative (``./sub/x``);
- every file the compose uses must be in the project: relative bind sources, build
  contexts with their Dockerfile, ``env_file:`` entries (parsed as compose parses them),
  config and secret ``file:`` sources. ``~`` paths, paths leaving the project (``../x``)
  and symbolic links pointing outside it are refused with a hint;
- the project's ``.env`` gives interpolation defaults (explicit variables win).

The merged text is *not* interpolated (``${VAR}`` stays), so ``analyse()`` checks it as it
checks an inline stack. It ends with the extension field ``x-windflow-project:
{compose_files: [...]}`` (the compose files read), which tells ``validate()`` the text
comes from a project folder wherever it is checked again (a revision moved, deployed):
``build:``, ``env_file:`` and config or secret files are then accepted, as they are not
in a stack written inline. :attr:`Project.source_map` tells, for each place of the merged
document, the file and line it came from, and ``analyse(..., origin=project)`` reports
findings there. Every refusal is a :class:`ComposeError` listing all the problems found,
each with its ``file`` and ``line``.

The merge rules live in :mod:`windflow.engine.compose.merge` (with the located values
that carry each value's file and line), env file reading in
:mod:`windflow.engine.compose.envfile`.

Limits: :data:`MAX_FILES` files read, :data:`~windflow.engine.compose.load.MAX_BYTES` per
file, :data:`MAX_NESTING` levels of ``include`` / ``extends``.

Pure Python, no Django, no Docker.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path as FsPath
from typing import Any

import yaml

from windflow.engine.compose import PROJECT_MARKER, ComposeError, Problem, format_path
from windflow.engine.compose.envfile import EnvFileError, parse_env_file, parse_raw_env_file
from windflow.engine.compose.interpolate import interpolate_string
from windflow.engine.compose.load import MAX_BYTES, load_compose, load_compose_with_positions
from windflow.engine.compose.merge import (
    LocatedList,
    LocatedMap,
    Origin,
    as_list,
    copy_located,
    fill_source_map,
    located,
    merge_models,
    merge_service,
    plain,
)

DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
"""The compose file looked for when none is named (the first found), as compose does."""
MAX_FILES = 100
"""Files a project may make the loader read (compose files, env files)."""
MAX_NESTING = 8
"""Levels of ``include`` (an included file including another...) and of ``extends``."""

OUTSIDE_HINT = "Put the file in the project folder, or use a named volume."
_LAST_SEGMENT = re.compile(r'(\.[^.\[]+|\[\d+\]|\["(?:[^"\\]|\\.)*"\])$')
_URL = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|git@|github\.com/)", re.IGNORECASE)
_SECTIONS = ("services", "networks", "volumes", "secrets", "configs")


@dataclass
class Project:
    """A loaded project folder. ``compose_text`` is the merged YAML (not interpolated),
    ``document`` the same as Python values. ``files``: the project-relative paths the
    compose uses (bind sources, env files, build contexts, config and secret files);
    ``compose_files``: every compose file read (``-f`` files, included, extended).
    ``source_map``: ``"services.web.image" -> (file, line)`` for every place of the merged
    document. ``problems``: findings that do not stop the project (warnings).
    ``env_defaults``: the values of the project's ``.env`` (and of ``include`` env files):
    defaults for interpolation, below the stack's own variables. ``env_files``: the values
    of every env file read (project-relative path -> KEY -> value; None: a bare ``KEY``
    not set); :meth:`service_env` gives a service's."""

    compose_text: str
    document: dict
    files: list[str]
    source_map: dict[str, Origin]
    problems: list[Problem] = field(default_factory=list)
    compose_files: list[str] = field(default_factory=list)
    env_defaults: dict[str, str] = field(default_factory=dict)
    env_files: dict[str, dict[str, str | None]] = field(default_factory=dict)

    def service_env(self, name: str) -> dict[str, str | None]:
        """What service `name` gets from its ``env_file:`` entries, in their order (a later
        file wins; an optional file that is missing gives nothing). At deploy its
        ``environment:`` goes on top of these, as compose does."""
        services = self.document.get("services")
        service = services.get(name) if isinstance(services, dict) else None
        entries = service.get("env_file") if isinstance(service, dict) else None
        if isinstance(entries, str):
            entries = [entries]
        values: dict[str, str | None] = {}
        for entry in entries if isinstance(entries, list) else []:
            path = entry.get("path") if isinstance(entry, dict) else entry
            if isinstance(path, str):
                values.update(self.env_files.get(posixpath.normpath(path), {}))
        return values

    def variables(self, explicit: Mapping[str, str | None]) -> dict[str, str | None]:
        """The interpolation values: the project's ``.env`` under `explicit`."""
        values: dict[str, str | None] = dict(self.env_defaults)
        values.update(explicit)
        return values

    def locate(self, path: str | None) -> Origin | None:
        """(file, line) of `path` in the merged document, or of its nearest enclosing
        place; None when unknown."""
        return locate(self.source_map, path)

    def remap(self, problem: Problem) -> Problem:
        """`problem` (about the merged text) with the file and line it comes from."""
        return remap(self.source_map, problem)


def locate(source_map: Mapping[str, Origin], path: str | None) -> Origin | None:
    """(file, line) of `path` or of its nearest enclosing place in `source_map`."""
    if path is None:
        return None
    while True:
        if path in source_map:
            return source_map[path]
        shorter = _LAST_SEGMENT.sub("", path)
        if shorter == path or not shorter:
            return source_map.get("")
        path = shorter


def remap(source_map: Mapping[str, Origin], problem: Problem) -> Problem:
    """`problem` moved to the original file and line of its path (column dropped: it was
    the merged text's). A problem without a path is left as it is."""
    if problem.file is not None or problem.path is None:
        return problem
    origin = locate(source_map, problem.path)
    if origin is None:
        return problem
    return replace(problem, file=origin[0], line=origin[1], column=None)


# --- the loader ------------------------------------------------------------------------------


class _Stop(Exception):
    """The project cannot be read further: the problems collected say why."""


@dataclass
class _File:
    rel: str  # project-relative path of the compose file
    base: str  # project-relative folder its relative paths resolve against ("." = root)
    doc: LocatedMap


def _join(base: str, path: str) -> str:
    return posixpath.normpath(posixpath.join(base, path))


def _written(rel: str) -> str:
    """A project-relative path as the merged file writes it: ``.`` or ``./sub/x``."""
    return "." if rel == "." else f"./{rel}"


def _within(path: FsPath, real_root: FsPath) -> bool:
    """Whether `path`, its links followed, stays under `real_root` (a loop: it does not)."""
    try:
        return path.resolve().is_relative_to(real_root)
    except (OSError, RuntimeError):
        return False


def _relative_bind(source: str) -> bool:
    """Whether the source of a short-syntax volume is a path that is not absolute
    (``./x``, ``x/y``, ``~/x``) rather than a volume name, as the planner reads it."""
    return source.startswith((".", "~")) or ("/" in source and not source.startswith("/"))


def _outside(rel: str) -> bool:
    return rel == ".." or rel.startswith("../")


class _Loader:
    def __init__(self, root: FsPath, variables: Mapping[str, str | None]):
        self.root = root
        self.real_root = root.resolve()
        self.explicit = dict(variables)
        self.env_defaults: dict[str, str] = {}
        self.reads = 0
        self.errors: list[Problem] = []
        self.warnings: list[Problem] = []
        self.compose_files: list[str] = []
        self.used: dict[str, None] = {}
        self.texts: dict[str, tuple[str, dict]] = {}  # compose file -> (text, as read)
        self.env_files: dict[str, dict[str, str | None]] = {}
        self.walked: dict[str, str | None] = {}  # folder -> first escaping link in it
        self.loaded: dict[tuple[str, str], _File] = {}
        self.services: dict[tuple[str, str, str], LocatedMap] = {}
        self.depths: dict[tuple[str, str, str], int] = {}  # service -> extends levels

    # problems

    def error(
        self,
        message: str,
        origin: Origin | None,
        *,
        code: str,
        hint: str = "",
        path: str | None = None,
        stop: bool = False,
    ) -> None:
        file, line = origin if origin else (None, None)
        self.errors.append(Problem("error", message, line, path, None, code, hint, file=file))
        if stop:
            raise _Stop

    @property
    def values(self) -> dict[str, str | None]:
        values: dict[str, str | None] = dict(self.env_defaults)
        values.update(self.explicit)
        return values

    # reading files

    def real(self, rel: str) -> FsPath:
        return self.root / rel

    def escapes(self, rel: str) -> bool:
        """Whether `rel` (inside the project lexically) is reached through a symbolic
        link that points outside the project."""
        return not _within(self.real(rel), self.real_root)

    def escaping_link(self, folder: str) -> str | None:
        """The first symbolic link under project folder `folder` that points outside the
        project (project-relative), or None. A folder is mounted or sent as a build
        context whole: a link in it must not reach the rest of the machine."""
        if folder in self.walked:
            return self.walked[folder]
        found = None
        for current, dirs, files in os.walk(self.real(folder)):
            for name in sorted(dirs + files):
                path = FsPath(current) / name
                if path.is_symlink() and not _within(path, self.real_root):
                    found = path.relative_to(self.root).as_posix()
                    break
            if found is not None:
                break
        self.walked[folder] = found
        return found

    def read(self, rel: str, what: str, origin: Origin | None, path: str | None = None) -> str:
        """The text of project file `rel` (stops the load when it cannot be read)."""
        self.reads += 1
        if self.reads > MAX_FILES:
            self.error(
                f"The project makes WindFlow read more than {MAX_FILES} files (compose and "
                "env files); stopping here.",
                origin,
                code="project-too-many-files",
                hint="Merge some of the included or env files.",
                stop=True,
            )
        if _outside(rel) or self.escapes(rel):
            self.error(
                f"The {what} {rel} is outside the project folder.",
                origin,
                code="project-path-outside",
                hint=OUTSIDE_HINT,
                path=path,
                stop=True,
            )
        file = self.real(rel)
        if not file.is_file():
            self.error(
                f"The {what} {rel} is not in the project.",
                origin,
                code="project-file-missing",
                hint="Add the file to the project, or correct the path.",
                path=path,
                stop=True,
            )
        size = file.stat().st_size
        if size > MAX_BYTES:
            self.error(
                f"The {what} {rel} is too large: {size:,} bytes, the limit is {MAX_BYTES:,}.",
                origin,
                code="project-file-too-large",
                hint="Keep compose and env files small; move large content into the image.",
                path=path,
                stop=True,
            )
        data = file.read_bytes()
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            self.error(
                f"The {what} {rel} is not UTF-8 text.",
                origin,
                code="yaml-encoding",
                hint="Save it as UTF-8 text.",
                path=path,
                stop=True,
            )
            raise  # pragma: no cover - error(stop=True) raised

    def compose_file(
        self, rel: str, base: str, origin: Origin | None, path: str | None = None
    ) -> _File:
        key = (rel, base)
        if key in self.loaded:
            return self.loaded[key]
        text = self.read(rel, "compose file", origin, path)
        try:
            document, positions = load_compose_with_positions(text)
        except ComposeError as refused:
            self.errors.extend(replace(p, file=rel) for p in refused.problems)
            raise _Stop from None
        if rel not in self.compose_files:
            self.compose_files.append(rel)
            self.texts[rel] = (text, document)
        doc = located(document, positions, rel, (), 1)
        self.rewrite_paths(doc, base)
        loaded = _File(rel, base, doc)
        self.loaded[key] = loaded
        return loaded

    def env_file(
        self, rel: str, origin: Origin | None, path: str | None = None, *, raw: bool = False
    ) -> dict[str, str | None]:
        if rel in self.env_files:
            return self.env_files[rel]
        text = self.read(rel, "env file", origin, path)
        try:
            values = parse_raw_env_file(text) if raw else parse_env_file(text, self.values)
        except EnvFileError as bad:
            self.error(
                f"The env file {rel}, {bad}.",
                (rel, bad.line),
                code="project-env-file-invalid",
                hint="Write one KEY=VALUE per line; quote values that hold spaces or '#'.",
            )
            values = {}
        self.env_files[rel] = values
        return values

    # paths: written project-relative as each file is read

    def resolved_text(self, raw: str, base: str) -> str | None:
        """A path as written, ${VAR} resolved when it must be (None: cannot be)."""
        if "$" not in raw:
            return raw
        try:
            return interpolate_string(raw, self.values)
        except ComposeError:
            return None

    def rewrite(self, raw: Any, base: str) -> Any:
        """A relative path of a file whose paths resolve against `base`, written
        project-relative (``./sub/x``); ``~``, absolute paths and URLs are left for the
        checks. A path with ``${VAR}`` in a file of the root folder is kept as written."""
        if not isinstance(raw, str) or not raw.strip():
            return raw
        if "$" in raw and base == ".":
            return raw
        text = self.resolved_text(raw.strip(), base)
        if text is None or text.startswith(("/", "~")) or _URL.match(text):
            return raw
        return _written(_join(base, text))

    def rewrite_paths(self, doc: LocatedMap, base: str) -> None:
        services = doc.get("services")
        if isinstance(services, LocatedMap):
            for service in services.values():
                if isinstance(service, LocatedMap):
                    self.rewrite_service(service, base)
        for section in ("configs", "secrets"):
            entries = doc.get(section)
            if not isinstance(entries, LocatedMap):
                continue
            for entry in entries.values():
                if isinstance(entry, LocatedMap) and isinstance(entry.get("file"), str):
                    entry["file"] = self.rewrite(entry["file"], base)

    def rewrite_service(self, service: LocatedMap, base: str) -> None:
        volumes = service.get("volumes")
        if isinstance(volumes, LocatedList):
            for index, volume in enumerate(volumes):
                if isinstance(volume, str):
                    if "$" in volume and base != ".":
                        volume = self.resolved_text(volume, base) or volume
                    source, sep, rest = volume.partition(":")
                    if sep and _relative_bind(source) and not source.startswith("~"):
                        volumes[index] = f"{self.rewrite(source, base)}:{rest}"
                elif isinstance(volume, LocatedMap) and volume.get("type") == "bind":
                    source = volume.get("source")
                    if isinstance(source, str) and not source.startswith(("/", "~")):
                        volume["source"] = self.rewrite(source, base)
        build = service.get("build")
        if isinstance(build, str):
            service["build"] = self.rewrite(build, base)
        elif isinstance(build, LocatedMap):
            build.put(
                "context",
                self.rewrite(build.get("context", "."), base),
                build.where.get("context", service.where["build"]),
            )
        env_file = service.get("env_file")
        if isinstance(env_file, str):
            service["env_file"] = self.rewrite(env_file, base)
        elif isinstance(env_file, LocatedList):
            for index, item in enumerate(env_file):
                if isinstance(item, str):
                    env_file[index] = self.rewrite(item, base)
                elif isinstance(item, LocatedMap) and isinstance(item.get("path"), str):
                    item["path"] = self.rewrite(item["path"], base)

    # a compose file's model: extends and include resolved

    def model(self, file: _File, chain: tuple[str, ...]) -> LocatedMap:
        doc = copy_located(file.doc)
        services = doc.get("services")
        if isinstance(services, LocatedMap):
            for name in list(services):
                if isinstance(services[name], LocatedMap):
                    services[name] = self.service(file, str(name), ())
        include = doc.get("include")
        if include is not None:
            origin = doc.where["include"]
            doc.drop("include")
            self.include(doc, file, include, origin, chain)
        return doc

    def service(self, file: _File, name: str, chain: tuple[tuple[str, str], ...]) -> LocatedMap:
        key = (file.rel, file.base, name)
        if key in self.services:
            return self.services[key]
        services = file.doc.get("services")
        service = services[name]
        extends = service.get("extends")
        if extends is None:
            self.services[key] = service
            return service
        origin = service.where["extends"]
        at = format_path(("services", name, "extends"))
        if isinstance(extends, str):
            target_name, target_file = extends, None
        elif isinstance(extends, LocatedMap):
            target_name, target_file = extends.get("service"), extends.get("file")
        else:
            target_name = target_file = None
        if not isinstance(target_name, str) or not target_name:
            self.error(
                f"{at}: say which service to extend (extends: NAME, or service: and file:).",
                origin,
                code="project-extends-invalid",
                path=at,
                stop=True,
            )
        target = file
        if target_file is not None:
            resolved = self.resolved_text(str(target_file), file.base)
            if resolved is None or resolved.startswith(("/", "~")):
                self.error(
                    f"{at}: the file {target_file} must be a path inside the project.",
                    origin,
                    code="project-path-outside",
                    hint=OUTSIDE_HINT,
                    path=at,
                    stop=True,
                )
            rel = _join(file.base, resolved)
            target = self.compose_file(rel, posixpath.dirname(rel) or ".", origin, at)
        link = (target.rel, target_name)
        here = (*chain, (file.rel, name))
        if link in here:
            loop = " → ".join(f"{s} ({f})" for f, s in (*here, link))
            self.error(
                f"{at}: extends goes round in a circle: {loop}.",
                origin,
                code="project-extends-cycle",
                hint="Make one of these services stop extending the others.",
                path=at,
                stop=True,
            )
        bases = target.doc.get("services")
        if not isinstance(bases, LocatedMap) or not isinstance(bases.get(target_name), LocatedMap):
            self.error(
                f"{at}: there is no service {target_name} in {target.rel} to extend.",
                origin,
                code="project-extends-invalid",
                hint="Check the service name and the file.",
                path=at,
                stop=True,
            )
        parent = self.service(target, target_name, here) if len(here) <= MAX_NESTING else None
        depth = self.depths.get((target.rel, target.base, target_name), 0) + 1
        if parent is None or depth > MAX_NESTING:
            self.error(
                f"{at}: extends is nested deeper than {MAX_NESTING} levels.",
                origin,
                code="project-too-deep",
                hint="Extend the services nearer the base directly.",
                path=at,
                stop=True,
            )
        own = copy_located(service)
        own.drop("extends")
        merged = merge_service(parent, own)
        self.services[key] = merged
        self.depths[key] = depth
        return merged

    def include(
        self, doc: LocatedMap, file: _File, include: Any, origin: Origin, chain: tuple[str, ...]
    ) -> None:
        entries = include if isinstance(include, LocatedList) else as_list(include, origin)
        if not isinstance(entries, LocatedList):
            self.error(
                "include: must be a list of files.",
                origin,
                code="project-include-invalid",
                path="include",
                stop=True,
            )
        imported: dict[tuple[str, str], str] = {}
        for index, entry in enumerate(entries):
            where = entries.where[index]
            at = format_path(("include", index))
            if isinstance(entry, str):
                paths, directory, env_files = [entry], None, None
            elif isinstance(entry, LocatedMap):
                paths = entry.get("path")
                paths = [paths] if isinstance(paths, str) else paths
                paths = paths if isinstance(paths, list) else []
                directory, env_files = entry.get("project_directory"), entry.get("env_file")
            else:
                paths = []
            if not paths or not all(isinstance(p, str) and p for p in paths):
                self.error(
                    f"{at}: give the path of the compose file to include.",
                    where,
                    code="project-include-invalid",
                    path=at,
                    stop=True,
                )
            rels = [self.inside_path(p, file.base, where, at, "included file") for p in paths]
            base = posixpath.dirname(rels[0]) or "."
            if isinstance(directory, str):
                base = self.inside_path(directory, file.base, where, at, "project_directory")
            for rel in rels:
                if rel in chain or rel == file.rel:
                    loop = " → ".join((*chain, file.rel, rel))
                    self.error(
                        f"{at}: include goes round in a circle: {loop}.",
                        where,
                        code="project-include-cycle",
                        hint="Remove the include that leads back to a file already included.",
                        path=at,
                        stop=True,
                    )
            if len(chain) >= MAX_NESTING:
                self.error(
                    f"{at}: include is nested deeper than {MAX_NESTING} levels.",
                    where,
                    code="project-too-deep",
                    path=at,
                    stop=True,
                )
            self.include_env(env_files, base, file.base, where, at)
            model = None
            for rel in rels:
                part = self.model(self.compose_file(rel, base, where, at), (*chain, file.rel))
                model = part if model is None else merge_models(model, part)
            self.add_imported(doc, model, rels[0], imported, where)

    def include_env(
        self, env_files: Any, base: str, declared_in: str, where: Origin, at: str
    ) -> None:
        if env_files is None:
            default = _join(base, ".env")
            if base != "." and self.real(default).is_file() and not self.escapes(default):
                self.defaults(self.env_file(default, where, at))
            return
        for item in env_files if isinstance(env_files, list) else [env_files]:
            rel = self.inside_path(str(item), declared_in, where, at, "env file")
            self.defaults(self.env_file(rel, where, at))

    def defaults(self, values: Mapping[str, str | None]) -> None:
        for key, value in values.items():
            if value is not None:
                self.env_defaults.setdefault(key, value)

    def inside_path(self, raw: str, base: str, where: Origin, at: str, what: str) -> str:
        text = self.resolved_text(raw.strip(), base)
        if text is None:
            self.error(
                f"{at}: the {what} {raw} uses a variable that is not set.",
                where,
                code="project-path-invalid",
                path=at,
                stop=True,
            )
        rel = _join(base, text)
        if text.startswith(("/", "~")) or _outside(rel):
            self.error(
                f"{at}: the {what} {raw} is outside the project folder.",
                where,
                code="project-path-outside",
                hint=OUTSIDE_HINT,
                path=at,
                stop=True,
            )
        return rel

    def add_imported(
        self, doc: LocatedMap, model: LocatedMap, rel: str, imported: dict, where: Origin
    ) -> None:
        for section in _SECTIONS:
            entries = model.get(section)
            if not isinstance(entries, LocatedMap):
                continue
            mine = doc.get(section)
            if not isinstance(mine, LocatedMap):
                mine = LocatedMap()
                doc.put(section, mine, model.where[section])
            for name, value in entries.items():
                if name in mine:
                    other = imported.get((section, name))
                    clash = f"the file {other}" if other else "this file"
                    self.error(
                        f"{section}.{name} from the included file {rel} is also defined by "
                        f"{clash}.",
                        where,
                        code="project-include-conflict",
                        hint="Rename one of them, or override it in a file given after "
                        "this one instead of including it.",
                        path=f"{section}.{name}",
                    )
                    continue
                mine.put(name, value, entries.where[name])
                imported[(section, name)] = rel

    # the checks of the merged document

    def check(self, doc: LocatedMap, source_map: Mapping[str, Origin]) -> None:
        services = doc.get("services")
        if isinstance(services, LocatedMap):
            for name, service in services.items():
                if isinstance(service, LocatedMap):
                    self.check_service(str(name), service, source_map)
        for section in ("configs", "secrets"):
            entries = doc.get(section)
            if not isinstance(entries, LocatedMap):
                continue
            for name, entry in entries.items():
                if isinstance(entry, LocatedMap) and isinstance(entry.get("file"), str):
                    at = format_path((section, name, "file"))
                    what = "config file" if section == "configs" else "secret file"
                    self.need(entry["file"], at, source_map, what, kind="file")

    def check_service(
        self, name: str, service: LocatedMap, source_map: Mapping[str, Origin]
    ) -> None:
        volumes = service.get("volumes")
        if isinstance(volumes, LocatedList):
            for index, volume in enumerate(volumes):
                at = format_path(("services", name, "volumes", index))
                source = None
                if isinstance(volume, str):
                    text = self.resolved_text(volume, ".") or ""
                    head, sep, _rest = text.partition(":")
                    if sep and _relative_bind(head):
                        source = head
                elif isinstance(volume, LocatedMap) and volume.get("type") == "bind":
                    source = volume.get("source")
                if isinstance(source, str) and source and not source.startswith("/"):
                    self.need(source, at, source_map, "bind mount source", kind="any", bind=True)
        build = service.get("build")
        if build is not None:
            self.check_build(name, build, source_map)
        env_file = service.get("env_file")
        base = ("services", name, "env_file")
        if isinstance(env_file, str):
            entries: list[tuple[Any, tuple]] = [(env_file, base)]
        elif isinstance(env_file, list):
            entries = [
                (item, (*base, index, "path") if isinstance(item, dict) else (*base, index))
                for index, item in enumerate(env_file)
            ]
        else:
            entries = []
        for item, path in entries:
            required, parse = True, True
            if isinstance(item, dict):
                parse = item.get("format") != "raw"  # raw: values taken as they are
                item, required = item.get("path"), item.get("required", True) is not False
            if not isinstance(item, str):
                continue
            at = format_path(path)
            rel = self.need(item, at, source_map, "env file", kind="file", required=required)
            if rel is not None:
                self.env_file(rel, locate(source_map, at), at, raw=not parse)

    def check_build(self, name: str, build: Any, source_map: Mapping[str, Origin]) -> None:
        base = ("services", name, "build")
        if isinstance(build, str):
            context, dockerfile, at = build, "Dockerfile", format_path(base)
        elif isinstance(build, dict):
            context = build.get("context", ".")
            dockerfile = build.get("dockerfile") or "Dockerfile"
            at = format_path((*base, "context"))
            if "dockerfile_inline" in build and "dockerfile" not in build:
                dockerfile = None
        else:
            return
        if not isinstance(context, str):
            return
        if _URL.match(context.strip()):
            self.error(
                f"{at}: {context} is a remote build context; WindFlow builds from the project "
                "folder only.",
                locate(source_map, at),
                code="project-build-context",
                hint="Put the sources in the project and set context: to their folder.",
                path=at,
            )
            return
        rel = self.need(context, at, source_map, "build context", kind="dir")
        if rel is None or not isinstance(dockerfile, str):
            return
        file_at = (
            format_path((*base, "dockerfile"))
            if isinstance(build, dict) and "dockerfile" in build
            else at
        )
        if dockerfile.startswith(("/", "~")):
            self.error(
                f"{file_at}: the Dockerfile {dockerfile} must be a path inside the project.",
                locate(source_map, file_at),
                code="project-path-outside",
                hint=OUTSIDE_HINT,
                path=file_at,
            )
            return
        if "$" in dockerfile:
            dockerfile = self.resolved_text(dockerfile, ".") or ""
            if not dockerfile:
                return
        self.need(
            _written(_join(rel, dockerfile)),
            file_at,
            source_map,
            "Dockerfile",
            kind="file",
            record=False,
        )

    def need(
        self,
        value: str,
        at: str,
        source_map: Mapping[str, Origin],
        what: str,
        *,
        kind: str,
        bind: bool = False,
        required: bool = True,
        record: bool = True,
    ) -> str | None:
        """The project-relative path of `value` when it is a file (or folder) of the
        project; otherwise an error (None)."""
        origin = locate(source_map, at)
        text = value.strip()
        if "$" in text:
            resolved = self.resolved_text(text, ".")
            if resolved is None:
                return None  # the variable's own finding says it is missing
            text = resolved.strip()
        if text.startswith("~"):
            self.error(
                f"{at}: the {what} {value} is in a home directory, outside the project folder.",
                origin,
                code="project-home-path",
                hint=OUTSIDE_HINT if bind else "Put the file in the project folder.",
                path=at,
            )
            return None
        if text.startswith("/"):
            if bind:
                return None  # a host path: the compose policy judges it
            self.error(
                f"{at}: the {what} {value} is an absolute path; it must be inside the project "
                "folder.",
                origin,
                code="project-path-outside",
                hint="Write it relative to the compose file, e.g. ./config/app.conf.",
                path=at,
            )
            return None
        rel = posixpath.normpath(text)
        if _outside(rel):
            self.error(
                f"{at}: the {what} {value} is outside the project folder.",
                origin,
                code="project-path-outside",
                hint=OUTSIDE_HINT if bind else "Put the file in the project folder.",
                path=at,
            )
            return None
        if self.escapes(rel):
            self.error(
                f"{at}: the {what} {value} is a symbolic link that points outside the project "
                "folder.",
                origin,
                code="project-path-outside",
                hint=OUTSIDE_HINT if bind else "Put the file itself in the project folder.",
                path=at,
            )
            return None
        real = self.real(rel)
        exists = (
            real.is_dir() if kind == "dir" else real.is_file() if kind == "file" else real.exists()
        )
        if not exists:
            if not required:
                return None
            shape = "folder" if kind == "dir" else "file"
            self.error(
                f"{at}: the {what} {value} is not in the project.",
                origin,
                code="project-file-missing",
                hint=f"Add the {shape} {rel} to the project, or correct the path."
                + (
                    " WindFlow copies bind mount sources from the project; it does not create them."
                    if bind
                    else ""
                ),
                path=at,
            )
            return None
        link = self.escaping_link(rel) if real.is_dir() else None
        if link is not None:
            self.error(
                f"{at}: the {what} {value} holds {link}, a symbolic link that points outside "
                "the project folder.",
                origin,
                code="project-path-outside",
                hint="Replace the link with the file itself, or remove it.",
                path=at,
            )
            return None
        if record:
            self.used[rel] = None
        return rel


def default_files(root: FsPath) -> list[str]:
    """The compose files ``docker compose`` reads in `root` when none is named: the first
    of :data:`DEFAULT_FILES`, then its override file when there is one."""
    for name in DEFAULT_FILES:
        if (root / name).is_file():
            stem, ext = name.rsplit(".", 1)
            override = f"{stem}.override.{ext}"
            return [name, override] if (root / override).is_file() else [name]
    return []


def load_project(
    root: os.PathLike | str,
    files: Sequence[str] = (),
    *,
    variables: Mapping[str, str | None] = {},
) -> Project:
    """Read the project folder `root` into one merged compose document (see the module).
    `files` are project-relative compose files in ``-f`` order (default: as compose
    finds them). `variables` resolve ``${VAR}`` in paths, above the project's ``.env``.
    Raises :class:`ComposeError` listing every problem (each with ``file`` and ``line``)."""
    root = FsPath(root)
    loader = _Loader(root, variables)
    try:
        if not root.is_dir():
            loader.error(
                f"The project folder {root} does not exist.",
                None,
                code="project-no-compose-file",
                stop=True,
            )
        names = [str(f) for f in files] or default_files(root)
        if not names:
            loader.error(
                "The project has no compose file (compose.yaml, compose.yml, "
                "docker-compose.yaml or docker-compose.yml).",
                None,
                code="project-no-compose-file",
                hint="Add a compose.yaml at the root of the project, or say which file to use.",
                stop=True,
            )
        rels = []
        for name in names:
            rel = posixpath.normpath(name.replace(os.sep, "/"))
            if name.startswith(("/", "~")) or _outside(rel):
                loader.error(
                    f"The compose file {name} is outside the project folder.",
                    None,
                    code="project-path-outside",
                    hint="Name compose files relative to the project folder.",
                    stop=True,
                )
            rels.append(rel)
        if (root / ".env").is_file():
            loader.defaults(loader.env_file(".env", None))
        base = posixpath.dirname(rels[0]) or "."
        merged: LocatedMap | None = None
        for rel in rels:
            model = loader.model(loader.compose_file(rel, base, None), ())
            merged = model if merged is None else merge_models(merged, model)
        merged.drop(PROJECT_MARKER)
        marker = LocatedMap()
        marker.put("compose_files", LocatedList(loader.compose_files), (rels[0], 1))
        marker["compose_files"].where = [(rels[0], 1)] * len(loader.compose_files)
        merged.put(PROJECT_MARKER, marker, (rels[0], 1))
        source_map: dict[str, Origin] = {"": (rels[0], 1)}
        fill_source_map(merged, (), source_map)
        loader.check(merged, source_map)
    except _Stop:
        pass
    if loader.errors:
        first = loader.errors[0]
        raise ComposeError(
            first.message,
            line=first.line,
            path=first.path,
            code=first.code,
            hint=first.hint or None,
            problems=loader.errors,
        )
    document = plain(merged)
    return Project(
        compose_text=_text(document, loader.texts),
        document=document,
        files=sorted(loader.used),
        source_map=source_map,
        problems=loader.warnings,
        compose_files=loader.compose_files,
        env_defaults=dict(loader.env_defaults),
        env_files=dict(loader.env_files),
    )


# --- writing the merged file -------------------------------------------------------------


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):
    """Writes strings that YAML 1.2 (how the loader reads) would take for something else
    (``0o17``, ``.inf``) in quotes, as well as those YAML 1.1 would."""


_CORE_PLAIN = re.compile(
    r"^(?:~|null|Null|NULL|true|True|TRUE|false|False|FALSE|[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+"
    r"|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)"
    r"|\.(?:nan|NaN|NAN)|<<)$"
)


def _represent_str(dumper: yaml.SafeDumper, data: str):
    style = '"' if _CORE_PLAIN.match(data) or data == "" else None
    if "\n" in data and style is None:
        style = "|"  # the emitter falls back to quotes when a block cannot hold it
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _represent_str)


def _text(document: dict, texts: Mapping[str, tuple[str, dict]]) -> str:
    """The merged text: the compose file as written (comments, order, lines kept) when the
    project is that one file and nothing changed in it, else the document written anew."""
    if len(texts) == 1:
        ((text, as_read),) = texts.values()
        if {**as_read, PROJECT_MARKER: document.get(PROJECT_MARKER)} == document:
            kept = text.rstrip("\n") + "\n" + dump({PROJECT_MARKER: document[PROJECT_MARKER]})
            with contextlib.suppress(ComposeError):
                if load_compose(kept) == document:
                    return kept
    return dump(document)


def dump(document: Mapping) -> str:
    """A compose document as YAML text the loader reads back to the same values."""
    return yaml.dump(
        document,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=1000,
    )


def needs_project(document: Any) -> Iterable[tuple[str, str]]:
    """(path, key) of what a compose document needs project files for: ``build``,
    ``env_file``, config and secret ``file:`` sources."""
    if not isinstance(document, dict):
        return
    services = document.get("services")
    if isinstance(services, dict):
        for name, service in services.items():
            if isinstance(service, dict):
                for key in ("build", "env_file"):
                    if key in service:
                        yield format_path(("services", name, key)), key
    for section in ("configs", "secrets"):
        entries = document.get(section)
        if isinstance(entries, dict):
            for name, entry in entries.items():
                if isinstance(entry, dict) and "file" in entry:
                    yield format_path((section, name, "file")), f"{section} file"


__all__ = [
    "DEFAULT_FILES",
    "MAX_FILES",
    "MAX_NESTING",
    "EnvFileError",
    "Project",
    "default_files",
    "dump",
    "load_project",
    "locate",
    "parse_env_file",
    "remap",
]
