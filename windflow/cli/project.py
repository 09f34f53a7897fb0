"""A project folder on the developer's machine, with the engine the server uses: checked
offline (validate and lint: windflow.engine.compose.project + analyse) and packed for
upload (windflow.engine.sources: .gitignore / .dockerignore honoured, deterministic)."""

from __future__ import annotations

from pathlib import Path

from .errors import REFUSED, CliError


def _load(root: Path, files: tuple[str, ...], variables: dict | None = None):
    """(Project, []) or (None, the refusal's problems as dicts)."""
    from windflow.engine.compose import ComposeError
    from windflow.engine.compose.project import load_project

    if not root.is_dir():
        raise CliError(f"{root} is not a folder.", REFUSED)
    try:
        return load_project(root, files, variables=variables or {}), []
    except ComposeError as error:
        return None, [_as_dict(p) for p in (error.problems or [])] or [
            {"severity": "error", "message": str(error), "rule": "", "file": None, "line": None}
        ]


def check(root: Path, files: tuple[str, ...] = (), variables: dict | None = None) -> list[dict]:
    """Every finding of the engine on the project at `root` (Problem.as_dict() with its
    "file" and "line" in the file that holds it), loading, validation and lint together.
    Nothing leaves the machine."""
    from windflow.engine.compose.analyse import analyse

    project, refused = _load(root, files, variables)
    if project is None:
        return refused
    found = [_as_dict(p) for p in project.problems]
    analysis = analyse(
        project.compose_text,
        project.variables(variables or {}),
        project=root.resolve().name or "project",
        origin=project,
    )
    found.extend(_as_dict(problem) for problem in analysis.problems)
    return found


def load_text(root: Path, files: tuple[str, ...] = ()) -> str:
    """The project's merged compose text, as the server stores it in a revision."""
    from .api import problem_line

    project, refused = _load(root, files)
    if project is None:
        raise CliError(f"The project is refused: {problem_line(refused[0])}", REFUSED)
    return project.compose_text


def pack(root: Path, files: tuple[str, ...] = ()) -> bytes:
    """The folder as .tar.gz bytes, without what its ignore files leave out, but with every
    file the compose files use (so a .gitignore listing .env does not break the deploy)."""
    from windflow.engine.sources import ArchiveError
    from windflow.engine.sources.archive import pack as pack_folder

    project, _refused = _load(root, files)
    keep = [*project.compose_files, *project.files] if project is not None else []
    try:
        return pack_folder(root, keep=keep)
    except ArchiveError as error:
        raise CliError(f"Cannot pack {root}: {error}", REFUSED) from None


def _as_dict(problem) -> dict:
    item = problem.as_dict()
    item.setdefault("file", getattr(problem, "file", None))
    return item
