"""The worker's source cache (windflow.engine.sources.cache): atomic entries, LRU eviction
under a size limit, entries in use kept, one build per key across threads."""

import os
import threading

import pytest

from windflow.engine.sources.cache import Cache


def filler(size, calls=None):
    def fill(tmp):
        if calls is not None:
            calls.append(tmp)
        (tmp / "data.bin").write_bytes(os.urandom(size))
        (tmp / "sub").mkdir()
        (tmp / "sub" / "x").write_text("x")

    return fill


def test_it_builds_an_entry_once_read_only_and_reuses_it(tmp_path):
    cache = Cache(tmp_path / "cache")
    calls = []
    path = cache.entry("tree-1", filler(100, calls))
    again = cache.entry("tree-1", filler(100, calls))
    assert path == again == cache.get("tree-1")
    assert len(calls) == 1
    assert (path / "sub" / "x").read_text() == "x"
    assert not os.stat(path / "data.bin").st_mode & 0o222
    assert list((tmp_path / "cache" / "tmp").iterdir()) == []


def test_it_leaves_nothing_when_the_build_fails(tmp_path):
    cache = Cache(tmp_path / "cache")

    def broken(tmp):
        (tmp / "half").write_text("half")
        raise RuntimeError("network down")

    with pytest.raises(RuntimeError):
        cache.entry("tree-1", broken)
    assert cache.get("tree-1") is None
    assert list((tmp_path / "cache" / "tmp").iterdir()) == []


def test_it_evicts_the_least_recently_used_whole_entries(tmp_path):
    cache = Cache(tmp_path / "cache", max_bytes=3 * 10_000 + 3 * 3 * 4096 + 100, grace=0)
    for key in ("a", "b", "c"):
        cache.entry(key, filler(10_000))
    cache.get("a")  # a used again: b is now the least recently used
    cache.entry("d", filler(10_000))
    assert cache.get("b") is None
    assert {entry.key for entry in cache.entries()} == {"a", "c", "d"}
    assert cache.usage() <= cache.max_bytes
    assert not (tmp_path / "cache" / "entries" / "b").exists()


def test_it_never_evicts_an_entry_in_use(tmp_path):
    cache = Cache(tmp_path / "cache", max_bytes=1, grace=0)
    cache.entry("old", filler(10_000))
    with cache.hold("old") as held:
        cache.entry("new", filler(10_000))
        assert held.is_dir() and (held / "sub" / "x").read_text() == "x"
    cache.entry("newer", filler(10_000))
    assert cache.get("old") is None


def test_it_keeps_recently_used_entries_within_the_grace(tmp_path):
    cache = Cache(tmp_path / "cache", max_bytes=1)  # default grace: minutes
    cache.entry("a", filler(10_000))
    cache.entry("b", filler(10_000))
    assert {entry.key for entry in cache.entries()} == {"a", "b"}


def test_it_builds_a_key_once_when_two_workers_ask_together(tmp_path):
    cache = Cache(tmp_path / "cache")
    calls, started, release = [], threading.Event(), threading.Event()

    def slow(tmp):
        calls.append(tmp)
        started.set()
        release.wait(30)
        (tmp / "f").write_text("done")

    results = []
    first = threading.Thread(target=lambda: results.append(cache.entry("k", slow)))
    first.start()
    started.wait(30)
    second = threading.Thread(target=lambda: results.append(cache.entry("k", slow)))
    second.start()
    release.set()
    first.join(30)
    second.join(30)
    assert len(calls) == 1
    assert results[0] == results[1] and (results[0] / "f").read_text() == "done"


def test_it_grows_and_measures_a_mutable_entry(tmp_path):
    cache = Cache(tmp_path / "cache")
    with cache.locked("mirror") as mirror:
        (mirror / "pack").write_bytes(os.urandom(20_000))
    (entry,) = cache.entries()
    assert entry.key == "mirror" and entry.size >= 20_000


@pytest.mark.parametrize("key", ["../x", "a/b", "", "-x", "a b"])
def test_it_refuses_keys_that_are_not_names(tmp_path, key):
    with pytest.raises(ValueError):
        Cache(tmp_path / "cache").path(key)


def test_it_removes_what_a_crashed_build_left_behind(tmp_path):
    cache = Cache(tmp_path / "cache")
    left = tmp_path / "cache" / "tmp" / "tree-1.abc123"
    (left / "sub").mkdir(parents=True)
    (left / "sub" / "f").write_text("half")
    recent = tmp_path / "cache" / "tmp" / "tree-2.def456"
    recent.mkdir()
    os.utime(left, (1, 1))
    cache.evict()
    assert not left.exists()
    assert recent.exists()  # maybe another worker's build in progress
