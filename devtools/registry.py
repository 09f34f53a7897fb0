"""A private image registry (Debian's ``docker-registry``) on 127.0.0.1 for tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .base import (
    HOST,
    DetachedServer,
    DevServiceError,
    free_port,
    require_free_port,
    spawn_daemon,
    system_program,
)

REGISTRY_TIMEOUT = 15


@dataclass
class Registry(DetachedServer):
    """Debian's ``docker-registry`` (distribution 2.x) on 127.0.0.1, filesystem storage
    under ``data_dir/storage``, no auth. The Docker engine allows plain HTTP to
    127.0.0.0/8 registries, so ``docker push/pull <url>/name:tag`` just works."""

    name = "docker-registry"
    log_name = "registry.log"

    @property
    def url(self) -> str:
        """``127.0.0.1:PORT``: the prefix of image references served by this registry."""
        return f"{self.host}:{self.port}"


def registry_get(port: int, path: str, *, method: str = "GET", timeout: float = 2.0) -> int | None:
    """HTTP status of `method` `path` on the registry at 127.0.0.1:`port`; None when
    nothing answers. Manifests are asked for in the schema 2 / OCI formats."""
    import http.client

    accept = (
        "application/vnd.docker.distribution.manifest.v2+json, "
        "application/vnd.docker.distribution.manifest.list.v2+json, "
        "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"
    )
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request(method, path, headers={"Accept": accept})
        response = connection.getresponse()
        response.read()
        return response.status
    except OSError:
        return None
    finally:
        connection.close()


def _registry_bin_or_explain() -> str:
    program = system_program("docker-registry")
    if program is None:
        raise DevServiceError(
            "`docker-registry` was not found: install it with "
            "`apt-get install -y docker-registry` (Debian/Ubuntu)"
        )
    return program


def _write_registry_config(
    data_dir: Path, port: int, *, storage: Path, htpasswd: Path | None = None
) -> Path:
    """Our own config: the packaged one enables htpasswd and listens on all interfaces."""
    config = data_dir / "config.yml"
    storage.mkdir(exist_ok=True)
    auth = (
        f"auth:\n  htpasswd:\n    realm: windflow-test\n    path: {htpasswd}\n" if htpasswd else ""
    )
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: info\n  fields:\n    service: registry\n"
        "storage:\n"
        f"  filesystem:\n    rootdirectory: {storage}\n"
        "  delete:\n    enabled: true\n"
        "  cache:\n    blobdescriptor: inmemory\n"
        f"{auth}"
        f"http:\n  addr: {HOST}:{port}\n"
        "  headers:\n    X-Content-Type-Options: [nosniff]\n"
    )
    return config


def _write_htpasswd(path: Path, users: dict[str, str]) -> Path:
    import bcrypt

    lines = []
    for user, password in users.items():
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
        lines.append(f"{user}:{hashed.replace('$2b$', '$2y$', 1)}")  # the registry's spelling
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def _wait_registry(registry: Registry, timeout: float = REGISTRY_TIMEOUT) -> None:
    registry.wait_ready(
        # 401: up, and asking for credentials
        lambda: registry_get(registry.port, "/v2/", timeout=0.5) in (200, 401),
        f"answer GET /v2/ on {registry.url}",
        timeout,
    )


def start_registry(
    data_dir: Path,
    port: int | None = None,
    *,
    users: dict[str, str] | None = None,
    storage: Path | None = None,
) -> Registry:
    """Start Debian's ``docker-registry`` on 127.0.0.1:`port` (a free one when None),
    detached (log ``registry.log``), storing images in `storage` (default
    ``data_dir/storage``, kept across runs). Without `users` it asks for no credentials;
    with ``{user: password}`` every request needs one of them (HTTP basic, htpasswd).
    Another registry's storage can be served this way, read-only in practice. Returns
    once ``GET /v2/`` answers."""
    program = _registry_bin_or_explain()
    data_dir = Path(data_dir).absolute()
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    port = port or free_port()
    require_free_port(port, f"the image registry in {data_dir}")
    htpasswd = _write_htpasswd(data_dir / "htpasswd", users) if users else None
    config = _write_registry_config(
        data_dir, port, storage=Path(storage or data_dir / "storage"), htpasswd=htpasswd
    )
    process = spawn_daemon([program, "serve", str(config)], data_dir / "registry.log")
    registry = Registry(data_dir, port, process)
    _wait_registry(registry)
    return registry
