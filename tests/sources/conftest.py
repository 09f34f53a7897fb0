"""Sources: project archives built in memory (real tar.gz and zip bytes, good and hostile),
Git stacks made by the service (`make_git_stack`, `git_stack`), and the owner's
`membership`, `staging` and `local_target` of tests/conftest.py."""

import io
import tarfile
import zipfile

import pytest

from apps.sources import services

NGINX_CONF = "events {}\nhttp { server { listen 80; } }\n"

PROJECT = {
    "compose.yaml": (
        "services:\n"
        "  web:\n"
        "    image: nginx:1.27\n"
        "    environment:\n"
        "      GREETING: ${GREETING}\n"
        "    volumes:\n"
        "      - ./nginx.conf:/etc/nginx/nginx.conf:ro\n"
    ),
    "nginx.conf": NGINX_CONF,
}


def tar_gz(files: dict[str, str | bytes], *, links: dict[str, str] | None = None) -> bytes:
    """A .tar.gz of `files` ({path: content}) and symbolic `links` ({path: target})."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            archive.addfile(info)
    return buffer.getvalue()


def zip_bytes(files: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def zip_bomb(size: int = 64 * 1024**2) -> bytes:
    """A small zip that unpacks to `size` bytes of zeros."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("compose.yaml", PROJECT["compose.yaml"])
        archive.writestr("nginx.conf", NGINX_CONF)
        archive.writestr("zeros.bin", b"\0" * size)
    return buffer.getvalue()


def archive_file(data: bytes, name: str = "shop.tar.gz"):
    """`data` as an uploaded file named `name` (multipart bodies of the page and the API)."""
    upload = io.BytesIO(data)
    upload.name = name
    return upload


@pytest.fixture
def make_git_stack(membership, staging, local_target):
    """make_git_stack(url, *, name="shop", **fields) -> a Stack following `url`, made by the
    service as the owner, in staging on the local server."""

    def make(url: str, *, name: str = "shop", **fields):
        return services.create_git_stack(
            membership, name=name, environment=staging, target=local_target, url=url, **fields
        )

    return make


@pytest.fixture
def git_stack(make_git_stack):
    """Stack `shop` following an unreachable repository (nothing fetched, nothing deployed)."""
    return make_git_stack("git://127.0.0.1:9/shop.git")


@pytest.fixture
def project():
    return dict(PROJECT)


@pytest.fixture
def source_cache(tmp_path, settings):
    """The worker's source cache in the test's own folder."""
    settings.WINDFLOW_SOURCE_CACHE_DIR = str(tmp_path / "source-cache")
    return tmp_path / "source-cache"
