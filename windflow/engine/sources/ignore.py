"""Which files of a folder a project or a build context holds: ``.gitignore`` and
``.dockerignore`` rules.

Two rule sets, two semantics, as the tools that read them:

- ``.gitignore`` (git's semantics): ``#`` comments, ``!`` negation, a trailing ``/`` for
  directories only, a pattern with a ``/`` before its end is anchored to the folder of its
  ``.gitignore`` (others match at any depth), ``**`` for any number of directories, nested
  ``.gitignore`` files apply below their folder and win over the outer ones, the last matching
  rule wins, and nothing is re-included below an ignored directory (git does not descend).
- ``.dockerignore`` (Docker's semantics, moby/patternmatcher): one file at the root of the
  build context, every pattern anchored to that root (a leading ``/`` is dropped), ``*`` and
  ``?`` stop at ``/``, ``**`` crosses directories, a pattern that matches a directory
  excludes everything under it, ``!`` exceptions re-include (even below an excluded
  directory), the last matching pattern wins.

    context_files(Path("app"), dockerfile="Dockerfile")  # build context (package C)
    project_files(Path("."), keep=["compose.yaml", ".env"])  # what `windflow deploy` packs

Paths are relative, with ``/`` separators, sorted. Symbolic links are listed as files (never
followed); sockets, fifos and devices are never listed. ``.git`` directories are never part
of a project (``project_files``); Docker's own rule applies to build contexts (``.git`` is sent
unless ``.dockerignore`` excludes it).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DockerIgnore",
    "GitIgnoreRule",
    "context_files",
    "gitignore_rules",
    "project_files",
]

GITIGNORE = ".gitignore"
DOCKERIGNORE = ".dockerignore"
ALWAYS_LEFT_OUT = frozenset({".git"})  # directory names never packed into a project


# ------------------------------------------------------------------------------ gitignore


@dataclass(frozen=True)
class GitIgnoreRule:
    """One line of a .gitignore, for paths relative to ``base`` (its folder, "" = root)."""

    pattern: str
    regex: re.Pattern
    negate: bool
    dir_only: bool
    base: str = ""

    def matches(self, path: str, is_dir: bool) -> bool:
        """`path` is relative to the root of the walk."""
        if self.dir_only and not is_dir:
            return False
        if self.base:
            if not path.startswith(self.base + "/"):
                return False
            path = path[len(self.base) + 1 :]
        return self.regex.match(path) is not None


def _char_class(pattern: str, start: int) -> tuple[str, int] | None:
    """``[...]`` at `start`: (regex, index after it), None when it does not close."""
    i = start + 1
    negate = i < len(pattern) and pattern[i] in "!^"
    if negate:
        i += 1
    body_start = i
    if i < len(pattern) and pattern[i] == "]":
        i += 1  # a leading ] is a member
    while i < len(pattern) and pattern[i] != "]":
        i += 1
    if i >= len(pattern):
        return None
    body = pattern[body_start:i].replace("\\", "\\\\").replace("[", "\\[")
    return ("[^" if negate else "[") + body + "]", i + 1


def _glob_to_regex(pattern: str, *, docker: bool) -> str:
    """The body of a regex for a glob where ``*``/``?`` stop at ``/`` and ``**`` crosses."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if pattern.startswith("**", i) and (docker or i == 0 or pattern[i - 1] == "/"):
                j = i + 2
                while j < n and pattern[j] == "*":
                    j += 1
                if j == n:
                    out.append(".*")
                    i = j
                    continue
                if pattern[j] == "/":
                    out.append("(?:.*/)?")
                    i = j + 1
                    continue
                if docker:
                    out.append("(?:.*/)?")
                    i = j
                    continue
            while i < n and pattern[i] == "*":
                i += 1
            out.append("[^/]*")
            continue
        if ch == "?":
            out.append("[^/]")
        elif ch == "[":
            found = _char_class(pattern, i)
            if found is not None:
                out.append(found[0])
                i = found[1]
                continue
            out.append(re.escape(ch))
        elif ch == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


def _gitignore_rule(line: str, base: str) -> GitIgnoreRule | None:
    line = line.rstrip("\r\n")
    if not line or line.startswith("#"):
        return None
    while line.endswith(" ") and not line.endswith("\\ "):
        line = line[:-1]
    if not line:
        return None
    negate = line.startswith("!")
    if negate:
        line = line[1:]
    dir_only = line.endswith("/")
    line = line.rstrip("/")
    if not line:
        return None
    anchored = "/" in line
    body = _glob_to_regex(line.lstrip("/"), docker=False)
    regex = re.compile(("^" if anchored else "^(?:.*/)?") + body + "$", re.DOTALL)
    return GitIgnoreRule(line, regex, negate, dir_only, base)


def gitignore_rules(text: str, base: str = "") -> list[GitIgnoreRule]:
    """The rules of one .gitignore file whose folder is `base` (relative, "" = root)."""
    rules = (_gitignore_rule(line, base) for line in text.splitlines())
    return [rule for rule in rules if rule is not None]


def _git_ignored(rules: Sequence[GitIgnoreRule], path: str, is_dir: bool) -> bool:
    """Last matching rule wins (rules ordered outer files first, then file order)."""
    for rule in reversed(rules):
        if rule.matches(path, is_dir):
            return not rule.negate
    return False


# ---------------------------------------------------------------------------- dockerignore


@dataclass(frozen=True)
class _DockerPattern:
    regex: re.Pattern
    exclusion: bool


class DockerIgnore:
    """The patterns of one .dockerignore, anchored at the root of the build context."""

    def __init__(self, text: str = ""):
        self.patterns: list[_DockerPattern] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exclusion = line.startswith("!")
            if exclusion:
                line = line[1:].strip()
            line = os.path.normpath(line.replace("\\", "/")) if line else line
            if len(line) > 1 and line.startswith("/"):
                line = line.lstrip("/")
            if not line:
                continue
            body = _glob_to_regex(line, docker=True)
            self.patterns.append(_DockerPattern(re.compile("^" + body + "$", re.DOTALL), exclusion))

    @classmethod
    def of(cls, context_dir: Path) -> DockerIgnore:
        """The .dockerignore at the root of `context_dir` (no rules when there is none)."""
        try:
            return cls((Path(context_dir) / DOCKERIGNORE).read_text(errors="replace"))
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return cls()

    @property
    def has_exceptions(self) -> bool:
        return any(pattern.exclusion for pattern in self.patterns)

    def excluded(self, path: str) -> bool:
        """Docker's MatchesOrParentMatches: a pattern matches the path or one of its
        parent directories; the last matching pattern wins."""
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts) - 1)]
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue
            hit = pattern.regex.match(path) is not None or any(
                pattern.regex.match(prefix) for prefix in prefixes
            )
            if hit:
                matched = not pattern.exclusion
        return matched


# ---------------------------------------------------------------------------------- walks


def _normalise(paths: Iterable[str]) -> set[str]:
    out = set()
    for path in paths:
        clean = os.path.normpath(str(path).replace("\\", "/")).lstrip("/")
        if clean and clean != "." and not clean.startswith(".."):
            out.add(clean)
    return out


def _ancestors(paths: Iterable[str]) -> set[str]:
    out = set()
    for path in paths:
        parts = path.split("/")
        out.update("/".join(parts[:i]) for i in range(1, len(parts)))
    return out


def _walk(
    root: Path,
    *,
    use_gitignore: bool,
    docker: DockerIgnore | None,
    keep: Iterable[str] = (),
    leave_out_names: frozenset[str] = frozenset(),
) -> list[str]:
    root = Path(root)
    kept = _normalise(keep)
    kept_parents = _ancestors(kept)
    found: list[str] = []

    def is_kept(rel: str) -> bool:
        return rel in kept or any(rel.startswith(k + "/") for k in kept)

    def visit(folder: Path, rel_folder: str, rules: list[GitIgnoreRule]) -> None:
        if use_gitignore:
            try:
                text = (folder / GITIGNORE).read_text(errors="replace")
            except OSError:
                text = None
            if text is not None:
                rules = rules + gitignore_rules(text, rel_folder)
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError:
            return
        for entry in entries:
            rel = f"{rel_folder}/{entry.name}" if rel_folder else entry.name
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError:
                continue
            is_dir = stat.S_ISDIR(mode)
            if not (is_dir or stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
                continue  # sockets, fifos, devices
            forced = is_kept(rel)
            if is_dir and entry.name in leave_out_names and not forced:
                continue
            ignored = use_gitignore and _git_ignored(rules, rel, is_dir)
            excluded = docker is not None and docker.excluded(rel)
            if is_dir:
                if forced or rel in kept_parents:
                    visit(Path(entry.path), rel, rules)
                elif ignored or (excluded and not docker.has_exceptions):
                    continue
                else:
                    visit(Path(entry.path), rel, rules)
            elif forced or not (ignored or excluded):
                found.append(rel)

    visit(root, "", [])
    return sorted(found)


def context_files(context_dir: Path, *, dockerfile: str | None = None) -> list[str]:
    """The files (and symbolic links) of a Docker build context, after its .dockerignore,
    as Docker's CLI sends them: relative ``/`` paths, sorted; directories are not listed
    (a tar of these files recreates the folders that hold something). `dockerfile`
    (relative to the context) and the .dockerignore are always included, as Docker does,
    even when .dockerignore names them."""
    context_dir = Path(context_dir)
    always = [DOCKERIGNORE]
    if dockerfile:
        always.append(dockerfile)
    keep = [path for path in always if (context_dir / path).is_file()]
    return _walk(context_dir, use_gitignore=False, docker=DockerIgnore.of(context_dir), keep=keep)


def project_files(
    folder: Path,
    *,
    gitignore: bool = True,
    dockerignore: bool = True,
    keep: Iterable[str] = (),
) -> list[str]:
    """The files (and symbolic links) of a project folder that `windflow deploy` packs:
    relative ``/`` paths, sorted. A file is left out when the folder's .gitignore files
    (git's semantics, nested ones included) or the .dockerignore at its root (Docker's
    semantics) leave it out; ``.git`` folders are always left out. `keep` names files (or
    folders: all they hold) that are packed whatever the rules say: the compose files and
    the files they reference (``env_file``, bind sources, Dockerfiles), so that a
    ``.gitignore`` listing ``.env`` does not break a deploy."""
    folder = Path(folder)
    docker = DockerIgnore.of(folder) if dockerignore else None
    return _walk(
        folder,
        use_gitignore=gitignore,
        docker=docker,
        keep=keep,
        leave_out_names=ALWAYS_LEFT_OUT,
    )
