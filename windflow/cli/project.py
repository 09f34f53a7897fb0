"""A project folder on the developer's machine: packed for upload (honouring .dockerignore
and .gitignore), and checked offline with the engine (validate and lint)."""

from __future__ import annotations

import fnmatch
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

from .errors import REFUSED, CliError

COMPOSE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
IGNORE_FILES = (".gitignore", ".dockerignore")
ALWAYS_IGNORED = (".git",)


# --- packing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    pattern: str
    negated: bool
    directory_only: bool
    anchored: bool

    def matches(self, path: str, is_dir: bool) -> bool:
        if self.directory_only and not is_dir:
            return False
        if self.anchored:
            return fnmatch.fnmatchcase(path, self.pattern) or _globstar(path, self.pattern)
        return fnmatch.fnmatchcase(path.rsplit("/", 1)[-1], self.pattern)


def _globstar(path: str, pattern: str) -> bool:
    """`**/x` and `a/**` as gitignore reads them."""
    if pattern.startswith("**/"):
        rest = pattern[3:]
        parts = path.split("/")
        return any(fnmatch.fnmatchcase("/".join(parts[i:]), rest) for i in range(len(parts)))
    return False


def ignore_rules(root: Path) -> list[Rule]:
    """The rules of the root's .gitignore then .dockerignore (a later rule wins)."""
    rules = []
    for name in IGNORE_FILES:
        path = root / name
        if not path.is_file():
            continue
        for raw in path.read_text(errors="replace").splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            line = line.lstrip("!")
            directory_only = line.endswith("/")
            line = line.strip("/") if name == ".gitignore" else line.lstrip("./").rstrip("/")
            if not line:
                continue
            anchored = "/" in line or name == ".dockerignore"  # .dockerignore is root-relative
            rules.append(Rule(line, negated, directory_only, anchored))
    return rules


def _ignored(rules: list[Rule], path: str, is_dir: bool) -> bool:
    ignored = False
    for rule in rules:
        if rule.matches(path, is_dir):
            ignored = not rule.negated
    return ignored


def project_files(root: Path) -> list[str]:
    """The folder's files (project-relative posix paths, sorted) after the ignore rules.
    The ignore files themselves are kept; links are kept as links."""
    rules = ignore_rules(root)
    found = []

    def walk(folder: Path, prefix: str):
        for entry in sorted(folder.iterdir(), key=lambda p: p.name):
            relative = f"{prefix}{entry.name}"
            is_dir = entry.is_dir() and not entry.is_symlink()
            if entry.name in ALWAYS_IGNORED or _ignored(rules, relative, is_dir):
                continue
            if is_dir:
                walk(entry, relative + "/")
            elif entry.is_file() or entry.is_symlink():
                found.append(relative)

    walk(root, "")
    return found


def pack(root: Path) -> bytes:
    """A .tar.gz of the project's files, paths relative to `root`, owners cleared."""
    if not root.is_dir():
        raise CliError(f"{root} is not a folder.", REFUSED)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as archive:
        for relative in project_files(root):
            info = archive.gettarinfo(str(root / relative), arcname=relative)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if info.isreg():
                with open(root / relative, "rb") as handle:
                    archive.addfile(info, handle)
            else:
                archive.addfile(info)
    return buffer.getvalue()


# --- offline checks --------------------------------------------------------------------------


def check(root: Path, files: tuple[str, ...] = (), variables: dict | None = None) -> list[dict]:
    """Every finding of the engine on the project at `root` (as Problem.as_dict() with a
    "file"), validation and lint together. Nothing leaves the machine."""
    from windflow.engine.compose import ComposeError

    try:
        from windflow.engine.compose.project import load_project
    except ImportError:  # the project loader is not in this version of the engine
        load_project = None
    if not root.is_dir():
        raise CliError(f"{root} is not a folder.", REFUSED)
    if load_project is not None:
        try:
            project = load_project(root, files, variables=variables or {})
        except ComposeError as error:
            return [_as_dict(p) for p in error.problems]
        text, default_file = project.compose_text, None
        found = [_as_dict(p) for p in project.problems]
    else:
        default_file = _compose_file(root, files)
        text = (root / default_file).read_text(errors="replace")
        found = []
    from windflow.engine.compose.analyse import analyse

    analysis = analyse(text, variables or {}, project=root.resolve().name or "project")
    for problem in analysis.problems:
        item = _as_dict(problem)
        item["file"] = item.get("file") or default_file
        found.append(item)
    return found


def load_text(root: Path, files: tuple[str, ...] = ()) -> str:
    """The project's compose text as the server would store it (merged when the engine has
    the project loader)."""
    from windflow.engine.compose import ComposeError

    try:
        from windflow.engine.compose.project import load_project
    except ImportError:
        load_project = None
    if load_project is None:
        return (root / _compose_file(root, files)).read_text(errors="replace")
    try:
        return load_project(root, files).compose_text
    except ComposeError as error:
        raise CliError(f"The project is refused: {error}", REFUSED) from None


def _as_dict(problem) -> dict:
    item = problem.as_dict()
    item.setdefault("file", getattr(problem, "file", None))
    return item


def _compose_file(root: Path, files: tuple[str, ...]) -> str:
    if len(files) > 1:
        raise CliError("Several compose files need the project loader of a newer engine.")
    for name in files or COMPOSE_NAMES:
        if (root / name).is_file():
            return name
    wanted = ", ".join(files or COMPOSE_NAMES)
    raise CliError(f"No compose file in {root} (looked for {wanted}).", REFUSED)
