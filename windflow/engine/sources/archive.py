"""Project archives: a safe unpack of an uploaded ``.tar.gz`` / ``.tgz`` / ``.tar`` / ``.zip``,
a deterministic pack of a folder (what ``windflow deploy`` uploads) and their digests.

    result = unpack(data, dest)                 # UnpackResult(files=12, size=40960, kind="tar.gz")
    data = pack(Path("."), keep=["compose.yaml"])   # tar.gz bytes, same folder -> same bytes
    digest(data)                                # sha256 hex
    manifest(dest)                              # {"compose.yaml": "<sha256 hex>", ...}

Unpacking refuses (``ArchiveError``, code ``archive_unsafe``) absolute names, ``..``
components, symbolic links whose target leaves the folder (checked on the name and again on
the unpacked tree, so that a chain of links cannot escape), any hard link, devices, fifos,
and entries written through a link. It refuses (``archive_too_large``) an archive over
``max_archive_size``, more than ``max_files`` entries, a file over ``max_file_size``, more
than ``max_total_size`` unpacked, or an unpacked size over ``max_ratio`` times the archive's
size (a zip bomb): all counted on the bytes actually written while streaming, never on the
sizes an archive declares. Anything else it cannot read is ``archive_invalid``. The message
names the offending entry. On error nothing is left in the destination.

The limits are module constants; ``Limits(...)`` overrides them (the sources app builds one
from its settings). Files are unpacked with modes 0644 / 0755 (no setuid, no owner).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .errors import ArchiveError
from .ignore import project_files

__all__ = [
    "DEFAULT_LIMITS",
    "ArchiveError",
    "Limits",
    "UnpackResult",
    "content_root",
    "digest",
    "manifest",
    "pack",
    "pack_into",
    "unpack",
]

MiB = 1024 * 1024
MAX_ARCHIVE_SIZE = 100 * MiB  # the archive itself (compressed)
MAX_TOTAL_SIZE = 500 * MiB  # all unpacked files together
MAX_FILE_SIZE = 200 * MiB  # one unpacked file
MAX_FILES = 20_000  # entries: files, folders and links
MAX_RATIO = 200  # unpacked bytes per archive byte ...
RATIO_FLOOR = 16 * MiB  # ... checked once this much is unpacked (small archives compress well)
CHUNK = 256 * 1024
MAX_LINK_TARGET = 4096
MACOS_METADATA = "__MACOSX"  # what macOS's "Compress" adds to a zip beside the folder
FOLDER_NOISE = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})
PACK_LEVEL = 3  # gzip level of pack(): twice as fast as 6 for ~6 % more bytes


@dataclass(frozen=True)
class Limits:
    max_archive_size: int = MAX_ARCHIVE_SIZE
    max_total_size: int = MAX_TOTAL_SIZE
    max_file_size: int = MAX_FILE_SIZE
    max_files: int = MAX_FILES
    max_ratio: float = MAX_RATIO
    ratio_floor: int = RATIO_FLOOR


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class UnpackResult:
    files: int  # entries unpacked (files, folders, links)
    size: int  # bytes of the files unpacked
    kind: str  # "tar.gz" | "tar" | "zip"


def _human(size: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} bytes"


def _unsafe(entry: str, why: str) -> ArchiveError:
    return ArchiveError("archive_unsafe", f"The archive entry {entry!r} {why}.")


def _too_large(message: str) -> ArchiveError:
    return ArchiveError("archive_too_large", message)


def _invalid(message: str) -> ArchiveError:
    return ArchiveError("archive_invalid", message)


# ------------------------------------------------------------------------------- reading


class _CountingReader(io.RawIOBase):
    """A read-only stream over `raw` that counts the bytes read and calls `check(total)`."""

    def __init__(self, raw: BinaryIO, check):
        self.raw = raw
        self.check = check
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
        if not data:
            return 0
        buffer[: len(data)] = data
        self.count += len(data)
        self.check(self.count)
        return len(data)


class _Unpacker:
    """Writes entries under `root`, enforcing the name rules and the limits."""

    def __init__(self, root: Path, limits: Limits, archive_size: int):
        self.root = root
        self.limits = limits
        self.archive_size = max(archive_size, 1)
        self.entries = 0
        self.size = 0
        self.links: list[str] = []

    # names
    def safe_name(self, name: str, *, zip_name: bool = False) -> str:
        if "\x00" in name:
            raise _unsafe(name, "has a NUL byte in its name")
        clean = name.replace("\\", "/") if zip_name else name
        if clean.startswith("/") or re.match(r"^[A-Za-z]:", clean):
            raise _unsafe(name, "has an absolute path")
        parts = [part for part in clean.split("/") if part not in ("", ".")]
        if any(part == ".." for part in parts) or any(".." in part.split("\\") for part in parts):
            raise _unsafe(name, "has a '..' component (it would be written outside the folder)")
        return "/".join(parts)

    # limits
    def count_entry(self, name: str) -> None:
        self.entries += 1
        if self.entries > self.limits.max_files:
            raise _too_large(
                f"The archive holds more than {self.limits.max_files} entries (at {name!r})."
            )

    def check_total(self, total: int, name: str) -> None:
        if total > self.limits.max_total_size:
            raise _too_large(
                f"The archive unpacks to more than {_human(self.limits.max_total_size)} "
                f"(at {name!r})."
            )
        if total > self.limits.ratio_floor and total > self.limits.max_ratio * self.archive_size:
            raise _too_large(
                f"The archive unpacks to more than {self.limits.max_ratio:g} times its size "
                f"({_human(self.archive_size)} compressed, at {name!r}): refused as a "
                "compression bomb."
            )

    # the tree
    def prepare_parent(self, rel: str, entry: str) -> Path:
        """Create the folders above `rel` (never through a link); returns root/rel."""
        current = self.root
        for part in rel.split("/")[:-1]:
            current = current / part
            try:
                mode = os.lstat(current).st_mode
            except FileNotFoundError:
                os.mkdir(current, 0o755)
                continue
            if stat.S_ISLNK(mode):
                raise _unsafe(entry, f"is written through the link {part!r}")
            if not stat.S_ISDIR(mode):
                raise _invalid(f"The archive entry {entry!r} is below a file, not a folder.")
        return self.root / rel

    def clear(self, path: Path, entry: str) -> None:
        """Make room for an entry that repeats an earlier one (tar appends)."""
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return
        if stat.S_ISDIR(mode):
            raise _invalid(f"The archive entry {entry!r} is both a folder and a file.")
        os.unlink(path)

    def directory(self, rel: str, entry: str) -> None:
        self.count_entry(entry)
        if not rel:
            return
        path = self.prepare_parent(rel, entry)
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            os.mkdir(path, 0o755)
            return
        if not stat.S_ISDIR(mode):
            raise _unsafe(entry, "is a folder where the archive has a file or link already")

    def file(self, rel: str, entry: str, stream: BinaryIO, executable: bool) -> None:
        self.count_entry(entry)
        if not rel:
            raise _invalid(f"The archive entry {entry!r} is a file without a name.")
        path = self.prepare_parent(rel, entry)
        self.clear(path, entry)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(path, flags, 0o600)
        written = 0
        with os.fdopen(fd, "wb") as out:
            while True:
                chunk = stream.read(CHUNK)
                if not chunk:
                    break
                written += len(chunk)
                if written > self.limits.max_file_size:
                    raise _too_large(
                        f"The archive entry {entry!r} is larger than "
                        f"{_human(self.limits.max_file_size)}."
                    )
                self.check_total(self.size + written, entry)
                out.write(chunk)
        self.size += written
        os.chmod(path, 0o755 if executable else 0o644)

    def symlink(self, rel: str, entry: str, target: str) -> None:
        self.count_entry(entry)
        if not rel:
            raise _invalid(f"The archive entry {entry!r} is a link without a name.")
        if not target or "\x00" in target:
            raise _unsafe(entry, "is a link without a valid target")
        if target.startswith("/"):
            raise _unsafe(entry, f"is a link to the absolute path {target!r}")
        resolved = os.path.normpath(os.path.join(os.path.dirname(rel), target))
        if resolved == ".." or resolved.startswith("../"):
            raise _unsafe(entry, f"is a link to {target!r}, outside the folder")
        path = self.prepare_parent(rel, entry)
        self.clear(path, entry)
        os.symlink(target, path)
        self.links.append(rel)

    def check_links(self) -> None:
        """Every link, resolved on the unpacked tree, stays inside it (chains included)."""
        root = os.path.realpath(self.root)
        for rel in self.links:
            real = os.path.realpath(self.root / rel)
            if real != root and not real.startswith(root + os.sep):
                raise _unsafe(rel, "is a link that resolves outside the folder")


def _tar_members(unpacker: _Unpacker, stream: BinaryIO) -> None:
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            rel = unpacker.safe_name(member.name)
            if member.islnk():
                raise _unsafe(member.name, "is a hard link (not supported)")
            if member.ischr() or member.isblk() or member.isfifo():
                raise _unsafe(member.name, "is a device or a fifo")
            if member.issym():
                unpacker.symlink(rel, member.name, member.linkname)
            elif member.isdir():
                unpacker.directory(rel, member.name)
            elif member.isreg():
                source = tar.extractfile(member)
                unpacker.file(rel, member.name, source, bool(member.mode & 0o100))
            else:
                raise _unsafe(member.name, f"has an unsupported type ({member.type!r})")


def _zip_members(unpacker: _Unpacker, stream: BinaryIO) -> None:
    with zipfile.ZipFile(stream) as archive:
        for info in archive.infolist():
            rel = unpacker.safe_name(info.filename, zip_name=True)
            if rel.split("/")[0] == MACOS_METADATA:
                continue  # macOS Finder's resource forks: not part of the project
            if info.flag_bits & 0x1:
                raise _invalid(f"The archive entry {info.filename!r} is encrypted.")
            mode = (info.external_attr >> 16) & 0xFFFF if info.create_system == 3 else 0
            kind = stat.S_IFMT(mode)
            if kind == stat.S_IFLNK:
                with archive.open(info) as source:
                    target = source.read(MAX_LINK_TARGET + 1)
                if len(target) > MAX_LINK_TARGET:
                    raise _unsafe(info.filename, "is a link with an overlong target")
                unpacker.symlink(rel, info.filename, target.decode("utf-8", "replace"))
            elif info.is_dir() or kind == stat.S_IFDIR:
                unpacker.directory(rel, info.filename)
            elif kind not in (0, stat.S_IFREG):
                raise _unsafe(info.filename, "is a device, a fifo or a socket")
            else:
                with archive.open(info) as source:
                    unpacker.file(rel, info.filename, source, bool(mode & 0o100))


def _open_source(source, limits: Limits) -> tuple[BinaryIO, int, bool]:
    """(stream, size in bytes, opened here) of bytes, a path or a binary file object."""
    if isinstance(source, bytes | bytearray | memoryview):
        stream, size, opened = io.BytesIO(bytes(source)), len(source), True
    elif isinstance(source, str | os.PathLike):
        stream = open(source, "rb")  # noqa: SIM115 - closed by unpack
        size, opened = os.fstat(stream.fileno()).st_size, True
    else:
        stream, opened = source, False
        start = stream.tell()
        size = stream.seek(0, io.SEEK_END) - start
        stream.seek(start)
    if size > limits.max_archive_size:
        if opened:
            stream.close()
        raise _too_large(
            f"The archive is {_human(size)}: the limit is {_human(limits.max_archive_size)}."
        )
    return stream, size, opened


def _kind(head: bytes) -> str:
    if head.startswith(b"\x1f\x8b"):
        return "tar.gz"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head[257:262] == b"ustar" or (len(head) >= 512 and head[:512] == bytes(512)):
        return "tar"
    raise _invalid("The file is not a .tar.gz, .tgz, .tar or .zip archive.")


def unpack(
    source: bytes | str | os.PathLike | BinaryIO,
    dest: Path,
    *,
    limits: Limits = DEFAULT_LIMITS,
) -> UnpackResult:
    """Unpack the archive `source` (bytes, a path, or a seekable binary file) into `dest`
    (created; it must not exist or be empty). Raises ArchiveError; then `dest` is left
    empty (removed when this call created it)."""
    dest = Path(dest)
    created = not dest.exists()
    if not created and any(dest.iterdir()):
        raise ValueError(f"unpack() needs an empty destination: {dest} is not")
    stream, size, opened = _open_source(source, limits)
    dest.mkdir(parents=True, exist_ok=True)
    unpacker = _Unpacker(dest, limits, size)
    try:
        start = stream.tell()
        kind = _kind(stream.read(512))
        stream.seek(start)
        if kind == "zip":
            _zip_members(unpacker, stream)
        elif kind == "tar.gz":
            gunzip = gzip.GzipFile(fileobj=stream, mode="rb")

            def check(total: int) -> None:
                # the tar stream itself (headers and padding included) is bounded as well
                unpacker.check_total(total - 1024 * unpacker.entries - 2 * CHUNK, "(tar stream)")

            reader = io.BufferedReader(_CountingReader(gunzip, check), CHUNK)
            _tar_members(unpacker, reader)
        else:
            _tar_members(unpacker, stream)
        unpacker.check_links()
    except ArchiveError:
        _discard(dest, created)
        raise
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, gzip.BadGzipFile) as exc:
        _discard(dest, created)
        raise _invalid(f"The archive is damaged or truncated: {exc}") from None
    except (NotImplementedError, UnicodeError, ValueError) as exc:
        _discard(dest, created)
        raise _invalid(f"The archive cannot be read: {exc}") from None
    except OSError as exc:
        _discard(dest, created)
        name = os.path.relpath(exc.filename, dest) if exc.filename else ""
        raise _invalid(
            f"The archive entry {name!r} cannot be unpacked: {exc.strerror or exc}"
        ) from None
    finally:
        if opened:
            stream.close()
    return UnpackResult(files=unpacker.entries, size=unpacker.size, kind=kind)


def _discard(dest: Path, created: bool) -> None:
    if created:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for child in list(dest.iterdir()):
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def content_root(folder: Path) -> Path:
    """`folder`, or its only entry when that is a folder (an archive of ``shop/...``, as
    zipping a folder or a Git host's tarball makes; .DS_Store and the like do not count)."""
    folder = Path(folder)
    entries = [entry for entry in folder.iterdir() if entry.name not in FOLDER_NOISE]
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return entries[0]
    return folder


# ------------------------------------------------------------------------------- packing


def _parents(paths: Sequence[str]) -> set[str]:
    return {"/".join(p.split("/")[:i]) for p in paths for i in range(1, p.count("/") + 1)}


def _sort_key(path: str) -> list[str]:
    return path.split("/")


def _link_inside(folder: Path, rel: str) -> str:
    target = os.readlink(folder / rel)
    resolved = os.path.normpath(os.path.join(os.path.dirname(rel), target))
    real = os.path.realpath(folder / rel)
    root = os.path.realpath(folder)
    if (
        os.path.isabs(target)
        or resolved == ".."
        or resolved.startswith("../")
        or not (real == root or real.startswith(root + os.sep))
    ):
        raise _unsafe(rel, f"is a link to {target!r}, outside the folder")
    return target


def pack_into(
    out: BinaryIO,
    folder: Path,
    *,
    ignore: bool = True,
    keep: Iterable[str] = (),
    files: Sequence[str] | None = None,
) -> list[str]:
    """Write `folder` as a tar.gz into `out`; returns the paths packed. Deterministic: sorted
    entries, mtime 0, owner 0/0 with no names, modes 0644/0755, gzip without a name or a
    time, so the same files give the same bytes (and digest). `ignore`: leave out what the
    folder's .gitignore / .dockerignore leave out (``ignore.project_files``; `keep` as
    there); `files` (relative paths) packs exactly these instead. Links must stay inside
    the folder (ArchiveError ``archive_unsafe`` otherwise)."""
    folder = Path(folder)
    if files is None:
        if ignore:
            files = project_files(folder, keep=keep)
        else:
            files = project_files(folder, gitignore=False, dockerignore=False)
    chosen = sorted(set(files), key=_sort_key)
    folders = sorted(_parents(chosen))
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=PACK_LEVEL) as gz,
        tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar,
    ):
        for rel in sorted([*folders, *chosen], key=_sort_key):
            info = tarfile.TarInfo(rel)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            path = folder / rel
            if rel in folders:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
                continue
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                info.type, info.mode = tarfile.SYMTYPE, 0o777
                info.linkname = _link_inside(folder, rel)
                tar.addfile(info)
            elif stat.S_ISREG(mode):
                info.mode = 0o755 if mode & 0o100 else 0o644
                info.size = os.lstat(path).st_size
                with open(path, "rb") as source:
                    tar.addfile(info, source)
    return chosen


def pack(
    folder: Path,
    *,
    ignore: bool = True,
    keep: Iterable[str] = (),
    files: Sequence[str] | None = None,
) -> bytes:
    """`folder` as deterministic tar.gz bytes (see ``pack_into``)."""
    buffer = io.BytesIO()
    pack_into(buffer, folder, ignore=ignore, keep=keep, files=files)
    return buffer.getvalue()


def digest(source: bytes | str | os.PathLike | BinaryIO) -> str:
    """sha256 hex of an archive's bytes (bytes, a path, or a binary file read to its end)."""
    sha = hashlib.sha256()
    if isinstance(source, bytes | bytearray | memoryview):
        sha.update(source)
        return sha.hexdigest()
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as stream:
            return digest(stream)
    while chunk := source.read(CHUNK):
        sha.update(chunk)
    return sha.hexdigest()


def manifest(folder: Path) -> dict[str, str]:
    """{relative path: sha256 hex} of every file and link of `folder` (a link hashes as
    ``symlink:<target>``), ``.git`` folders left out; sorted by path."""
    folder = Path(folder)
    result: dict[str, str] = {}
    for rel in project_files(folder, gitignore=False, dockerignore=False):
        path = folder / rel
        if path.is_symlink():
            result[rel] = hashlib.sha256(b"symlink:" + os.fsencode(os.readlink(path))).hexdigest()
            continue
        sha = hashlib.sha256()
        with open(path, "rb") as source:
            while chunk := source.read(CHUNK):
                sha.update(chunk)
        result[rel] = sha.hexdigest()
    return result
