"""The files of a stack's revisions on its server: what relative bind mounts and compose
``configs:`` need (copied from the project), and compose ``secrets:`` (written mode 0400
into a tmpfs-backed folder).

    store = FileStore(LocalFiles(), files_root="/var/lib/windflow/stacks",
                      secrets_root="/run/windflow/secrets", stack="<stack uid>")
    files_dir, secrets_dir = store.publish(7, project_dir, plan.files, {"db_password": b"..."})
    store.prune(keep=5, protect={7, 6})    # the newest 5, and those protected
    store.discard(8)                        # a revision that never ran

Each revision has its own folders (``<root>/<stack>/<revision>``): a rollback deploys the
older revision, which points at its own. A copy is atomic: everything is written into a
temporary folder beside, then renamed into place; a failed copy leaves no folder.

One algorithm over a small filesystem interface, implemented by :class:`LocalFiles` (the
machine WindFlow runs on) and :class:`SFTPFiles` (an SFTP channel of the server's SSH
session). Secret values are never logged. Pure Python (paramiko; no Django).
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import secrets as token
import shutil
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol

from windflow.engine.compose.plan import ProjectFile
from windflow.engine.errors import EngineError

__all__ = ["FileStore", "FilesError", "LocalFiles", "SFTPFiles"]

SECRET_MODE = 0o400
FOLDER_MODE = 0o755
SECRETS_FOLDER_MODE = 0o700


class FilesError(EngineError):
    """The files of a revision could not be put on (or removed from) the server."""

    error_code = "project_files"
    default_hint = (
        "Check that the folders of WINDFLOW_STACK_FILES_ROOT and WINDFLOW_STACK_SECRETS_ROOT "
        "exist or can be created by the user WindFlow connects as, and that the disk has room."
    )


class Filesystem(Protocol):
    def makedirs(self, path: str, mode: int) -> None: ...

    def write(self, path: str, data: bytes, mode: int) -> None: ...

    def rename(self, source: str, target: str) -> None: ...

    def remove_tree(self, path: str) -> None: ...

    def listdir(self, path: str) -> list[str]: ...

    def exists(self, path: str) -> bool: ...


class LocalFiles:
    """The filesystem of the machine WindFlow runs on (a local Docker engine's)."""

    def makedirs(self, path: str, mode: int) -> None:
        os.makedirs(path, mode=mode, exist_ok=True)
        os.chmod(path, mode)

    def write(self, path: str, data: bytes, mode: int) -> None:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.chmod(path, mode)

    def rename(self, source: str, target: str) -> None:
        os.rename(source, target)

    def remove_tree(self, path: str) -> None:
        if os.path.lexists(path):
            for folder, dirs, _files in os.walk(path):  # 0400 files in 0500 folders
                for name in dirs:
                    os.chmod(os.path.join(folder, name), 0o700)
            os.chmod(path, 0o700)
            shutil.rmtree(path)

    def listdir(self, path: str) -> list[str]:
        try:
            return os.listdir(path)
        except FileNotFoundError:
            return []

    def exists(self, path: str) -> bool:
        return os.path.lexists(path)


class SFTPFiles:
    """The filesystem of an SSH server, through an SFTP channel of its session (a
    paramiko ``SFTPClient``)."""

    def __init__(self, sftp):
        self.sftp = sftp

    def makedirs(self, path: str, mode: int) -> None:
        missing = []
        current = path
        while current not in ("", "/") and not self.exists(current):
            missing.append(current)
            current = posixpath.dirname(current)
        for folder in reversed(missing):
            with contextlib.suppress(OSError):
                self.sftp.mkdir(folder, mode)
        self.sftp.chmod(path, mode)

    def write(self, path: str, data: bytes, mode: int) -> None:
        with self.sftp.open(path, "wx") as handle:
            self.sftp.chmod(path, 0o600)
            handle.write(data)
        self.sftp.chmod(path, mode)

    def rename(self, source: str, target: str) -> None:
        self.sftp.posix_rename(source, target)

    def remove_tree(self, path: str) -> None:
        try:
            attributes = self.sftp.lstat(path)
        except FileNotFoundError:
            return
        if not stat.S_ISDIR(attributes.st_mode or 0):
            self.sftp.remove(path)
            return
        self.sftp.chmod(path, 0o700)
        for entry in self.sftp.listdir_attr(path):
            self.remove_tree(posixpath.join(path, entry.filename))
        self.sftp.rmdir(path)

    def listdir(self, path: str) -> list[str]:
        try:
            return self.sftp.listdir(path)
        except FileNotFoundError:
            return []

    def exists(self, path: str) -> bool:
        try:
            self.sftp.lstat(path)
        except FileNotFoundError:
            return False
        return True


class FileStore:
    """The revision folders of one stack under a files root and a secrets root."""

    def __init__(self, fs: Filesystem, *, files_root: str, secrets_root: str, stack: str):
        self.fs = fs
        self.files_root = posixpath.join(files_root, stack)
        self.secrets_root = posixpath.join(secrets_root, stack)

    def folders(self, revision: int) -> tuple[str, str]:
        """(files folder, secrets folder) of `revision` on the server."""
        return (
            posixpath.join(self.files_root, str(revision)),
            posixpath.join(self.secrets_root, str(revision)),
        )

    def publish(
        self,
        revision: int,
        project_dir: str | Path | None,
        files: Iterable[ProjectFile],
        secret_values: Mapping[str, str | bytes],
    ) -> tuple[str, str]:
        """Put the files of `revision` on the server: the project files that binds and
        configs mount (from `project_dir`) and the secrets (a project file, or the value of
        the WindFlow secret in `secret_values`, by its name). The files folder of a revision
        that is already there, with every file asked for, is kept as it is (a revision never
        changes); its secrets are written again (a WindFlow secret's value may have
        changed)."""
        files = list(files)
        files_dir, secrets_dir = self.folders(revision)
        plain = [item for item in files if item.kind != "secret"]
        secret = [item for item in files if item.kind == "secret"]
        try:
            complete = all(self.fs.exists(posixpath.join(files_dir, item.source)) for item in plain)
            if plain and not complete:  # (a variable may have changed which files are mounted)
                self.replace(
                    files_dir,
                    FOLDER_MODE,
                    lambda temp: self.copy(temp, project_dir, plain),
                )
            if secret:
                self.replace(
                    secrets_dir,
                    SECRETS_FOLDER_MODE,
                    lambda temp: self.write_secrets(temp, project_dir, secret, secret_values),
                )
        except OSError as exc:
            raise FilesError(
                f"the files of revision {revision} could not be copied: {exc}"
            ) from exc
        return files_dir, secrets_dir

    def replace(self, final: str, mode: int, fill) -> None:
        """Fill a temporary folder beside `final`, then rename it into place (the old one,
        if any, is removed after). A failure removes the temporary folder."""
        parent = posixpath.dirname(final)
        self.fs.makedirs(parent, mode)
        temp = posixpath.join(parent, f".tmp-{posixpath.basename(final)}-{token.token_hex(4)}")
        self.fs.makedirs(temp, 0o700)
        try:
            fill(temp)
            self.fs.makedirs(temp, mode)
            old = None
            if self.fs.exists(final):
                old = posixpath.join(
                    parent, f".old-{posixpath.basename(final)}-{token.token_hex(4)}"
                )
                self.fs.rename(final, old)
            self.fs.rename(temp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                self.fs.remove_tree(temp)
            raise
        if old is not None:
            with contextlib.suppress(OSError):
                self.fs.remove_tree(old)

    def copy(self, temp: str, project_dir, items: list[ProjectFile]) -> None:
        root = _project_root(project_dir)
        for item in items:
            source = _inside(root, item.source)
            if source.is_dir():
                for path in sorted(source.rglob("*")):
                    relative = path.relative_to(root).as_posix()
                    if path.is_dir() and not path.is_symlink():
                        self.fs.makedirs(posixpath.join(temp, relative), FOLDER_MODE)
                    elif path.is_file() and path.resolve().is_relative_to(root):
                        self.put(temp, relative, path)
                self.fs.makedirs(posixpath.join(temp, item.source), FOLDER_MODE)
            elif source.is_file():
                self.put(temp, item.source, source)
            else:
                raise FilesError(f'"{item.source}" is not a file or folder of the project')

    def put(self, temp: str, relative: str, path: Path) -> None:
        target = posixpath.join(temp, relative)
        if self.fs.exists(target):
            return  # mounted twice (two services, or a config and a bind)
        self.fs.makedirs(posixpath.dirname(target), FOLDER_MODE)
        mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
        self.fs.write(target, path.read_bytes(), mode)

    def write_secrets(
        self,
        temp: str,
        project_dir,
        items: list[ProjectFile],
        values: Mapping[str, str | bytes],
    ) -> None:
        for item in items:
            target = posixpath.join(temp, item.stored_as)
            if self.fs.exists(target):
                continue
            if item.secret:
                if item.secret not in values:
                    raise FilesError(
                        f'the secret "{item.name}" needs the WindFlow secret {item.secret}, '
                        "which this revision does not have",
                        f"Add the secret {item.secret} to the stack's secrets.",
                    )
                value = values[item.secret]
                data = value.encode() if isinstance(value, str) else bytes(value)
            else:
                source = _inside(_project_root(project_dir), item.source)
                if not source.is_file():
                    raise FilesError(f'the secret file "{item.source}" is not in the project')
                data = source.read_bytes()
            self.fs.write(target, data, SECRET_MODE)

    def revisions(self) -> list[int]:
        """The revisions with a folder on the server, newest first."""
        found = {
            int(name)
            for root in (self.files_root, self.secrets_root)
            for name in self.fs.listdir(root)
            if name.isdigit()
        }
        return sorted(found, reverse=True)

    def discard(self, revision: int) -> None:
        """Remove the folders of `revision` (one that never ran), and what a failed copy of
        it left."""
        for folder in self.folders(revision):
            parent, name = posixpath.split(folder)
            for entry in self.fs.listdir(parent):
                if entry.startswith((f".tmp-{name}-", f".old-{name}-")):
                    self.fs.remove_tree(posixpath.join(parent, entry))
            self.fs.remove_tree(folder)

    def prune(self, *, keep: int, protect: Iterable[int] = ()) -> list[int]:
        """Remove the folders of every revision but the newest `keep` and those of
        `protect` (the one running, the previous good one), and the temporary folders of a
        copy that never ended (a worker lost mid-copy); the revisions removed."""
        protected = set(protect)
        removed = []
        for root in (self.files_root, self.secrets_root):  # what a lost worker left mid-copy
            for entry in self.fs.listdir(root):
                if entry.startswith((".tmp-", ".old-")):
                    self.fs.remove_tree(posixpath.join(root, entry))
        for index, revision in enumerate(self.revisions()):
            if index < keep or revision in protected:
                continue
            for folder in self.folders(revision):
                self.fs.remove_tree(folder)
            removed.append(revision)
        return removed


def _project_root(project_dir) -> Path:
    if project_dir is None:
        raise FilesError(
            "the stack mounts files of its project, and this revision has no project folder",
            "Deploy the stack from a Git repository or an uploaded folder.",
        )
    return Path(project_dir).resolve()


def _inside(root: Path, relative: str) -> Path:
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise FilesError(f'"{relative}" is outside the project')
    if not path.exists():
        raise FilesError(
            f'"{relative}" is not in the project',
            "Add the file to the project, or remove the mount that names it.",
        )
    return path
