"""Project archives (windflow.engine.sources.archive): real tarballs and zips, made here
entry by entry, the hostile ones included. No mocks."""

import io
import os
import stat
import tarfile
import zipfile

import pytest

from windflow.engine.sources import archive
from windflow.engine.sources.archive import Limits, pack, unpack
from windflow.engine.sources.errors import ArchiveError

MiB = 1024 * 1024


def tar_bytes(entries, *, gz=True) -> bytes:
    """entries: (name, kind, payload): kind file|dir|symlink|hardlink|fifo|chr."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gz else "w") as tar:
        for name, kind, payload in entries:
            info = tarfile.TarInfo(name)
            data = None
            if kind == "file":
                data = payload if isinstance(payload, bytes) else payload.encode()
                info.size = len(data)
                info.mode = 0o644
            elif kind == "exe":
                data = payload.encode()
                info.size, info.mode = len(data), 0o4755
            elif kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, payload
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, payload
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            elif kind == "chr":
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def zip_bytes(entries) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive_file:
        for name, kind, payload in entries:
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.compress_type = zipfile.ZIP_DEFLATED
            if kind == "symlink":
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            elif kind == "fifo":
                info.external_attr = (stat.S_IFIFO | 0o644) << 16
            else:
                info.external_attr = (stat.S_IFREG | 0o644) << 16
            archive_file.writestr(info, payload)
    return buffer.getvalue()


def refused(data, dest, code, *, limits=archive.DEFAULT_LIMITS) -> ArchiveError:
    with pytest.raises(ArchiveError) as caught:
        unpack(data, dest, limits=limits)
    assert caught.value.code == code, caught.value.message
    assert not dest.exists()  # nothing left behind
    return caught.value


# --------------------------------------------------------------------------- good archives


def test_it_unpacks_a_project_tarball(tmp_path):
    data = tar_bytes(
        [
            ("shop/", "dir", None),
            ("shop/compose.yaml", "file", "services: {}\n"),
            ("shop/nginx/nginx.conf", "file", "events {}\n"),
            ("shop/run.sh", "exe", "#!/bin/sh\n"),
            ("shop/current", "symlink", "nginx/nginx.conf"),
        ]
    )
    result = unpack(data, tmp_path / "out")
    assert result.kind == "tar.gz"
    assert result.files == 5
    root = archive.content_root(tmp_path / "out")
    assert root == tmp_path / "out" / "shop"
    assert (root / "nginx" / "nginx.conf").read_text() == "events {}\n"
    assert os.readlink(root / "current") == "nginx/nginx.conf"
    assert stat.S_IMODE((root / "run.sh").stat().st_mode) == 0o755  # no setuid
    assert stat.S_IMODE((root / "compose.yaml").stat().st_mode) == 0o644


def test_it_unpacks_a_plain_tar_and_a_zip(tmp_path):
    unpack(tar_bytes([("a.txt", "file", "A")], gz=False), tmp_path / "tar")
    result = unpack(
        zip_bytes([("dir/b.txt", "file", "B"), ("l", "symlink", "dir/b.txt")]), tmp_path / "zip"
    )
    assert (tmp_path / "tar" / "a.txt").read_text() == "A"
    assert result.kind == "zip"
    assert (tmp_path / "zip" / "l").read_text() == "B"


def test_it_unpacks_a_zip_made_by_macos_and_a_tar_made_with_dot(tmp_path):
    data = zip_bytes(
        [
            ("shop/compose.yaml", "file", "services: {}\n"),
            ("__MACOSX/shop/._compose.yaml", "file", "resource fork"),
            (".DS_Store", "file", "finder"),
        ]
    )
    unpack(data, tmp_path / "zip")
    assert not (tmp_path / "zip" / "__MACOSX").exists()
    assert archive.content_root(tmp_path / "zip") == tmp_path / "zip" / "shop"
    unpack(tar_bytes([("./", "dir", None), ("./compose.yaml", "file", "x")]), tmp_path / "tar")
    assert (tmp_path / "tar" / "compose.yaml").read_text() == "x"


def test_it_unpacks_from_a_path_and_a_file_object(tmp_path):
    data = tar_bytes([("a.txt", "file", "A")])
    (tmp_path / "up.tgz").write_bytes(data)
    unpack(tmp_path / "up.tgz", tmp_path / "from-path")
    unpack(io.BytesIO(data), tmp_path / "from-file")
    assert archive.manifest(tmp_path / "from-path") == archive.manifest(tmp_path / "from-file")


# ------------------------------------------------------------------------- hostile names


@pytest.mark.parametrize(
    "name",
    ["../evil.txt", "shop/../../evil.txt", "/etc/evil.txt", "shop/.."],
)
def test_it_refuses_a_tar_entry_outside_the_folder(tmp_path, name):
    data = tar_bytes([("ok.txt", "file", "fine"), (name, "file", "evil")])
    error = refused(data, tmp_path / "out", "archive_unsafe")
    assert repr(name) in error.message
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/evil.txt", "..\\..\\evil.txt", "C:/x.txt"])
def test_it_refuses_a_zip_entry_outside_the_folder(tmp_path, name):
    refused(zip_bytes([(name, "file", "evil")]), tmp_path / "out", "archive_unsafe")
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("target", ["../../etc", "/etc/passwd", "sub/../../../x"])
def test_it_refuses_a_link_that_points_outside(tmp_path, target):
    data = tar_bytes([("sub/", "dir", None), ("sub/link", "symlink", target)])
    error = refused(data, tmp_path / "out", "archive_unsafe")
    assert "sub/link" in error.message


def test_it_refuses_a_zip_link_that_points_outside(tmp_path):
    refused(
        zip_bytes([("link", "symlink", "../../etc/passwd")]), tmp_path / "out", "archive_unsafe"
    )


def test_it_refuses_a_chain_of_links_that_escapes(tmp_path):
    # d/s -> .. is the root itself (inside); d/l -> s/../../x reads inside by its name,
    # but resolves through d/s to two levels above the root.
    data = tar_bytes(
        [("d/", "dir", None), ("d/s", "symlink", ".."), ("d/l", "symlink", "s/../../x")]
    )
    error = refused(data, tmp_path / "out", "archive_unsafe")
    assert "d/l" in error.message


def test_it_refuses_to_write_through_a_link(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    data = tar_bytes([("sub", "symlink", "."), ("sub/file.txt", "file", "x")])
    error = refused(data, tmp_path / "out", "archive_unsafe")
    assert "through the link" in error.message


@pytest.mark.parametrize("kind", ["hardlink", "fifo", "chr"])
def test_it_refuses_hard_links_devices_and_fifos(tmp_path, kind):
    data = tar_bytes([("a.txt", "file", "a"), ("odd", kind, "a.txt")])
    error = refused(data, tmp_path / "out", "archive_unsafe")
    assert "'odd'" in error.message


def test_it_refuses_a_zip_fifo(tmp_path):
    refused(zip_bytes([("odd", "fifo", "")]), tmp_path / "out", "archive_unsafe")


# ---------------------------------------------------------------------------------- limits


def test_it_refuses_a_zip_bomb_by_its_compression_ratio(tmp_path):
    data = zip_bytes([("zeros.bin", "file", bytes(24 * MiB))])
    assert len(data) < 100 * 1024  # a thousand times smaller than what it unpacks to
    error = refused(data, tmp_path / "out", "archive_too_large")
    assert "compression bomb" in error.message and "zeros.bin" in error.message


def test_it_refuses_a_tar_bomb_by_its_compression_ratio(tmp_path):
    data = tar_bytes([("zeros.bin", "file", bytes(24 * MiB))])
    refused(data, tmp_path / "out", "archive_too_large")


def test_it_counts_the_bytes_written_not_the_declared_sizes(tmp_path):
    # a zip whose central directory claims a tiny file: the bytes unpacked are counted
    data = bytearray(zip_bytes([("big.bin", "file", os.urandom(64 * 1024))]))
    central = data.rfind(b"PK\x01\x02")
    data[central + 24 : central + 28] = (10).to_bytes(4, "little")  # uncompressed size
    limits = Limits(max_file_size=32 * 1024)
    with pytest.raises(ArchiveError) as caught:
        unpack(bytes(data), tmp_path / "out", limits=limits)
    assert caught.value.code in ("archive_too_large", "archive_invalid")
    assert not (tmp_path / "out").exists()


def test_it_refuses_too_many_files(tmp_path):
    data = tar_bytes([(f"f{i}.txt", "file", "x") for i in range(11)])
    error = refused(data, tmp_path / "out", "archive_too_large", limits=Limits(max_files=10))
    assert "more than 10 entries" in error.message


def test_it_refuses_more_than_the_total_size(tmp_path):
    data = tar_bytes([("a.bin", "file", os.urandom(600)), ("b.bin", "file", os.urandom(600))])
    error = refused(data, tmp_path / "out", "archive_too_large", limits=Limits(max_total_size=1000))
    assert "b.bin" in error.message


def test_it_refuses_a_file_over_the_file_limit(tmp_path):
    data = zip_bytes([("big.bin", "file", os.urandom(5000))])
    error = refused(data, tmp_path / "out", "archive_too_large", limits=Limits(max_file_size=4096))
    assert "big.bin" in error.message


def test_it_refuses_an_upload_over_the_limit(tmp_path):
    data = tar_bytes([("a.bin", "file", os.urandom(4096))])
    error = refused(
        data, tmp_path / "out", "archive_too_large", limits=Limits(max_archive_size=1024)
    )
    assert "limit" in error.message


@pytest.mark.parametrize(
    "data",
    [
        b"not an archive at all",
        tar_bytes([("a.txt", "file", os.urandom(5000))])[:2000],
        b"PK\x03\x04junk",
    ],
)
def test_it_says_when_an_archive_is_invalid(tmp_path, data):
    refused(data, tmp_path / "out", "archive_invalid")


def test_it_leaves_an_existing_destination_empty_on_error(tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(ArchiveError):
        unpack(tar_bytes([("a.txt", "file", "a"), ("../b", "file", "b")]), dest)
    assert dest.exists() and list(dest.iterdir()) == []


# ---------------------------------------------------------------------------------- packing


def make_project(root):
    (root / "app").mkdir(parents=True)
    (root / "compose.yaml").write_text("services: {}\n")
    (root / "app" / "Dockerfile").write_text("FROM scratch\n")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    (root / ".env").write_text("A=1\n")
    (root / ".gitignore").write_text(".env\n*.log\nnode_modules/\n")
    (root / "debug.log").write_text("noise")
    (root / "node_modules" / "x").mkdir(parents=True)
    (root / "node_modules" / "x" / "index.js").write_text("x")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    os.symlink("app/Dockerfile", root / "Dockerfile")


def test_it_packs_equal_folders_to_equal_bytes(tmp_path):
    make_project(tmp_path / "one")
    make_project(tmp_path / "two")
    os.utime(tmp_path / "two" / "compose.yaml", (1, 1))  # other times, owners... same bytes
    first, second = pack(tmp_path / "one"), pack(tmp_path / "two")
    assert archive.digest(first) == archive.digest(second)
    (tmp_path / "two" / "compose.yaml").write_text("services: {web: {image: x}}\n")
    assert archive.digest(pack(tmp_path / "two")) != archive.digest(first)


def test_it_packs_what_the_ignore_files_keep_and_unpacks_it_back(tmp_path):
    make_project(tmp_path / "src")
    data = pack(tmp_path / "src", keep=[".env"])
    unpack(data, tmp_path / "out")
    files = sorted(archive.manifest(tmp_path / "out"))
    assert files == [".env", ".gitignore", "Dockerfile", "app/Dockerfile", "compose.yaml", "run.sh"]
    assert os.access(tmp_path / "out" / "run.sh", os.X_OK)
    assert (
        archive.manifest(tmp_path / "out")["compose.yaml"]
        == archive.manifest(tmp_path / "src")["compose.yaml"]
    )


def test_it_leaves_ignored_files_out_unless_kept(tmp_path):
    make_project(tmp_path / "src")
    unpack(pack(tmp_path / "src"), tmp_path / "out")
    assert not (tmp_path / "out" / ".env").exists()
    assert not (tmp_path / "out" / ".git").exists()
    assert not (tmp_path / "out" / "node_modules").exists()


def test_it_refuses_to_pack_a_link_that_points_outside(tmp_path):
    make_project(tmp_path / "src")
    os.symlink("/etc/passwd", tmp_path / "src" / "passwd")
    with pytest.raises(ArchiveError) as caught:
        pack(tmp_path / "src")
    assert caught.value.code == "archive_unsafe" and "passwd" in caught.value.message


def test_it_digests_bytes_paths_and_streams_alike(tmp_path):
    data = tar_bytes([("a.txt", "file", "A")])
    (tmp_path / "a.tgz").write_bytes(data)
    assert (
        archive.digest(data)
        == archive.digest(tmp_path / "a.tgz")
        == archive.digest(io.BytesIO(data))
    )
    assert len(archive.digest(data)) == 64
