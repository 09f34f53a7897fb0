"""The worker's source cache: one folder of entries (Git mirrors, exported commit trees,
unpacked archives) with a size limit, shared by the worker processes of a machine.

    cache = Cache(Path("var/cache/sources"), max_bytes=2 * 1024**3)
    tree = cache.entry("archive-<digest>", lambda tmp: archive.unpack(data, tmp))
    with cache.locked("mirror-<hash>") as mirror:   # a mutable entry, one user at a time
        ...
    with cache.hold("archive-<digest>") as tree:    # not evicted while held (None if absent)
        ...

- ``entry(key, fill)`` builds an immutable entry atomically: `fill` writes into an empty
  temporary folder, which is made read-only and renamed into place; a concurrent worker
  asking for the same key waits for it, then reuses it. A failed `fill` leaves nothing.
- Eviction: after each new or grown entry, the least recently used whole entries go until
  the cache is under `max_bytes`. An entry in use (being built, ``locked`` or ``hold``)
  or used less than `grace` seconds ago is never evicted, so a deployment that just
  materialised a tree keeps it; the cache may then stay over its limit for a while.
- Locks are ``fcntl.flock`` on files under ``locks/``: they hold between processes and
  vanish with a process that dies. Nothing here keeps state that the database lacks: the
  cache can be removed at any time when no worker runs.

Layout: ``entries/<key>/`` (the content), ``meta/<key>`` (size in bytes; its mtime is the
last use), ``locks/<key>.lock``, ``tmp/`` (entries being built), ``cache.lock``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_MAX_BYTES", "GRACE_SECONDS", "Cache", "CacheEntry", "tree_size"]

DEFAULT_MAX_BYTES = 2 * 1024**3
GRACE_SECONDS = 600.0  # an entry used this recently is never evicted
STALE_SECONDS = 3600.0  # a temporary folder this old, whose key is free, was left by a crash
KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


@dataclass(frozen=True)
class CacheEntry:
    key: str
    size: int
    last_used: float  # seconds since the epoch


def tree_size(path: Path) -> int:
    """Bytes of the files under `path` (links and folders count a block each)."""
    total = 0
    for folder, dirs, files in os.walk(path):
        total += 4096
        for name in files + dirs:
            with contextlib.suppress(OSError):
                info = os.lstat(os.path.join(folder, name))
                total += info.st_size if stat.S_ISREG(info.st_mode) else 0
    return total


def _make_read_only(path: Path) -> None:
    for folder, _dirs, files in os.walk(path, topdown=False):
        for name in files:
            full = os.path.join(folder, name)
            if not os.path.islink(full):
                mode = os.lstat(full).st_mode
                os.chmod(full, stat.S_IMODE(mode) & ~0o222)
        os.chmod(folder, 0o555)  # noqa: S103 - read-only: owner and group read the tree


def remove_tree(path: Path) -> None:
    """Remove a (possibly read-only) tree."""
    if not os.path.lexists(path):
        return
    for folder, _dirs, _files in os.walk(path):
        with contextlib.suppress(OSError):
            os.chmod(folder, 0o755)  # noqa: S103 - writable again, to be removed
    shutil.rmtree(path, ignore_errors=True)


class Cache:
    def __init__(
        self,
        root: Path,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        grace: float = GRACE_SECONDS,
    ):
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.grace = grace
        for sub in ("entries", "meta", "locks", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------------- helpers

    @staticmethod
    def check_key(key: str) -> str:
        if not KEY.match(key):
            raise ValueError(f"not a cache key (letters, digits, . _ -): {key!r}")
        return key

    def path(self, key: str) -> Path:
        """Where the entry `key` lives (it may not exist)."""
        return self.root / "entries" / self.check_key(key)

    def _meta(self, key: str) -> Path:
        return self.root / "meta" / key

    @contextlib.contextmanager
    def _flock(self, path: Path, how: int) -> Iterator[bool]:
        """Hold flock(`how`) on `path`; yields False when LOCK_NB and it is taken."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, how)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # releases the lock

    def _key_lock(self, key: str, how: int):
        return self._flock(self.root / "locks" / f"{key}.lock", how)

    def touch(self, key: str) -> None:
        """Mark `key` used now (LRU)."""
        meta = self._meta(key)
        with contextlib.suppress(FileNotFoundError):
            now = time.time_ns()
            os.utime(meta, ns=(now, now))

    def _record(self, key: str, size: int) -> None:
        meta = self._meta(key)
        tmp = meta.with_name(f".{key}.{os.getpid()}")
        tmp.write_text(f"{size}\n")
        os.replace(tmp, meta)
        self.touch(key)

    # ------------------------------------------------------------------------- entries

    def get(self, key: str) -> Path | None:
        """The entry `key` when present (marked used), else None."""
        path = self.path(key)
        if not path.is_dir():
            return None
        self.touch(key)
        return path

    def entry(self, key: str, fill: Callable[[Path], object]) -> Path:
        """The read-only entry `key`, built by ``fill(empty_temp_folder)`` when missing
        (atomically: temp folder then rename). Exceptions of `fill` propagate."""
        path = self.path(key)
        with self._key_lock(key, fcntl.LOCK_EX):
            if path.is_dir():
                self.touch(key)
                return path
            tmp = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=self.root / "tmp"))
            try:
                fill(tmp)
                size = tree_size(tmp)
                _make_read_only(tmp)
                os.rename(tmp, path)
            except BaseException:
                remove_tree(tmp)
                raise
            self._record(key, size)
        self.evict(keep=(key,))
        return path

    @contextlib.contextmanager
    def locked(self, key: str) -> Iterator[Path]:
        """A mutable entry (a Git mirror), created empty when missing, held exclusively by
        the caller; its size is measured after, and the cache evicted."""
        path = self.path(key)
        with self._key_lock(key, fcntl.LOCK_EX):
            path.mkdir(exist_ok=True)
            if not self._meta(key).exists():
                self._record(key, tree_size(path))
            try:
                yield path
            finally:
                if path.is_dir():
                    self._record(key, tree_size(path))
        self.evict(keep=(key,))

    @contextlib.contextmanager
    def hold(self, key: str) -> Iterator[Path | None]:
        """The entry `key` (None when absent), protected from eviction until the end."""
        with self._key_lock(key, fcntl.LOCK_SH):
            yield self.get(key)

    def remove(self, key: str) -> bool:
        """Remove `key` now (waits for its users). True when it was there."""
        with self._key_lock(key, fcntl.LOCK_EX):
            return self._drop(key)

    def _drop(self, key: str) -> bool:
        path = self.path(key)
        self._meta(key).unlink(missing_ok=True)
        if not path.exists():
            return False
        trash = Path(tempfile.mkdtemp(prefix=f"evicted-{key}.", dir=self.root / "tmp"))
        os.rename(path, trash / "entry")
        remove_tree(trash)
        return True

    def _remove_stale_temporaries(self) -> None:
        """What a worker that died while building an entry left in ``tmp/``."""
        now = time.time()
        for path in (self.root / "tmp").iterdir():
            try:
                if now - path.lstat().st_mtime < STALE_SECONDS:
                    continue
            except FileNotFoundError:
                continue
            key = path.name.removeprefix("evicted-").split(".")[0]
            if not KEY.match(key):
                continue
            with self._key_lock(key, fcntl.LOCK_EX | fcntl.LOCK_NB) as free:
                if free and path.is_dir():
                    remove_tree(path)
                elif free:
                    path.unlink(missing_ok=True)

    def entries(self) -> list[CacheEntry]:
        """The entries, least recently used first."""
        found = []
        for path in (self.root / "entries").iterdir():
            key = path.name
            try:
                meta = self._meta(key)
                size = int(meta.read_text().strip() or 0)
                used = meta.stat().st_mtime_ns / 1e9
            except (OSError, ValueError):
                size, used = tree_size(path), path.stat().st_mtime
            found.append(CacheEntry(key, size, used))
        return sorted(found, key=lambda entry: (entry.last_used, entry.key))

    def usage(self) -> int:
        """Bytes held by the entries."""
        return sum(entry.size for entry in self.entries())

    def evict(self, *, keep: tuple[str, ...] = ()) -> list[str]:
        """Remove least recently used entries until under `max_bytes`; returns their keys.
        Entries in use, in `keep` or used within `grace` seconds stay."""
        evicted: list[str] = []
        with self._flock(self.root / "cache.lock", fcntl.LOCK_EX):
            self._remove_stale_temporaries()
            entries = self.entries()
            total = sum(entry.size for entry in entries)
            now = time.time()
            for entry in entries:
                if total <= self.max_bytes:
                    break
                if entry.key in keep or now - entry.last_used < self.grace:
                    continue
                with self._key_lock(entry.key, fcntl.LOCK_EX | fcntl.LOCK_NB) as free:
                    if free and self._drop(entry.key):
                        evicted.append(entry.key)
                        total -= entry.size
        return evicted
