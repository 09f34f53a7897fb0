"""A build context: the files of a ``build:`` context folder (``.dockerignore`` honoured by
:func:`windflow.engine.sources.ignore.context_files`),
their digest, and the tar the Docker engine builds from.

    context = BuildContext.of(project_dir, spec.build, limit=512 * 1024**2)
    context.digest                  # same files, Dockerfile and build options -> same digest
    with context.tar() as stream:   # a file object, spooled to disk past a few MB
        api.build(fileobj=stream, custom_context=True, ...)

A context larger than `limit` raises :class:`ContextTooLarge` before anything is read.
Pure Python (no Django, no Docker).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from windflow.engine.compose.plan import BuildSpec
from windflow.engine.errors import EngineError
from windflow.engine.sources.ignore import context_files

__all__ = ["BuildContext", "ContextTooLarge"]

SPOOL_BYTES = 8 * 1024 * 1024  # a context tar stays in memory up to this size
_CHUNK = 1024 * 1024


class ContextTooLarge(EngineError):
    """The build context is larger than the limit."""

    default_hint = (
        "List what the image does not need (node_modules, .git, build output, data) in a "
        ".dockerignore file beside the Dockerfile's context."
    )


# --- the context -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildContext:
    root: Path
    build: BuildSpec
    files: tuple[str, ...]
    size: int

    @classmethod
    def of(cls, project_dir: str | Path, build: BuildSpec, *, limit: int) -> BuildContext:
        """The context of `build` in `project_dir`. Raises ContextTooLarge past `limit`
        bytes, EngineError when the context folder or the Dockerfile is missing."""
        root = (Path(project_dir) / build.context).resolve()
        project = Path(project_dir).resolve()
        if not root.is_relative_to(project) or not root.is_dir():
            raise EngineError(
                f'the build context "{build.context}" is not a folder of the project',
                "Give build: context: a folder of the project, relative to the compose file.",
            )
        dockerfile = (root / build.dockerfile).resolve()
        if not dockerfile.is_relative_to(root) or not dockerfile.is_file():
            raise EngineError(
                f'the Dockerfile "{build.dockerfile}" is not in the build context '
                f'"{build.context}"',
                "Give build: dockerfile: the Dockerfile's path relative to the context.",
            )
        files = context_files(root, dockerfile=build.dockerfile)
        size = 0
        for path in files:
            size += (root / path).lstat().st_size
            if size > limit:
                raise ContextTooLarge(
                    f'the build context "{build.context}" is larger than the limit of '
                    f"{limit // (1024 * 1024)} MB"
                )
        return cls(root, build, tuple(files), size)

    @property
    def digest(self) -> str:
        """SHA-256 over the files (path, executable bit, link target or content) and the
        build options: an image built from the same digest is the same image."""
        digest = hashlib.sha256()
        options = dataclasses.asdict(self.build)
        options.pop("context")
        digest.update(json.dumps(options, sort_keys=True).encode())
        for path in self.files:
            full = self.root / path
            info = full.lstat()
            digest.update(b"\0" + path.encode() + b"\0")
            if stat.S_ISLNK(info.st_mode):
                digest.update(b"link:" + os.readlink(full).encode())
                continue
            digest.update(b"x" if info.st_mode & 0o111 else b"-")
            with open(full, "rb") as handle:
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
        return digest.hexdigest()

    @contextmanager
    def tar(self) -> Iterator:
        """The context as an uncompressed tar, in a file object at its start."""
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
            with tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT) as archive:
                for path in self.files:
                    info = archive.gettarinfo(str(self.root / path), arcname=path)
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    if info.isfile():
                        with open(self.root / path, "rb") as handle:
                            archive.addfile(info, handle)
                    else:
                        archive.addfile(info)
            spool.seek(0)
            yield spool
