"""Where the CLI keeps its server, organisation and tokens: $XDG_CONFIG_HOME/windflow/
config.json (~/.config/windflow/config.json), mode 0600. WINDFLOW_URL, WINDFLOW_ORG and
WINDFLOW_TOKEN in the environment take precedence (CI jobs)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .errors import REFUSED, CliError


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "windflow" / "config.json"


def read_config() -> dict:
    path = config_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise CliError(f"Cannot read {path}: {exc}") from None
    return data if isinstance(data, dict) else {}


def write_config(data: dict) -> Path:
    """Write the file with mode 0600 (its folder 0700), replacing it atomically."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".config.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)
    return path


def organization_url(url: str, org: str | None) -> str:
    """The organisation's address: `org` is prefixed to the server's host name
    (http://localhost:8000 + acme -> http://acme.localhost:8000). Without an organisation,
    `url` is used as given (it may be the organisation's address already)."""
    parts = urlsplit(url.rstrip("/"))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CliError(f"Not a server URL: {url!r} (expected http(s)://host[:port]).", REFUSED)
    if not org:
        return urlunsplit(parts._replace(path="", query="", fragment=""))
    netloc = f"{org}.{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, "", "", ""))


@dataclass(frozen=True)
class Credentials:
    url: str  # the organisation's address, no trailing slash
    token: str


def credentials() -> Credentials:
    """The environment first (WINDFLOW_URL, WINDFLOW_ORG, WINDFLOW_TOKEN), then the file."""
    stored = read_config()
    url = os.environ.get("WINDFLOW_URL") or stored.get("url")
    org = os.environ.get("WINDFLOW_ORG")
    if not os.environ.get("WINDFLOW_URL"):
        org = org or stored.get("org")
    tokens = stored.get("tokens") or {}
    token = os.environ.get("WINDFLOW_TOKEN") or tokens.get(org or "")
    if not url:
        raise CliError("Not logged in: run `windflow login` or set WINDFLOW_URL.", REFUSED)
    if not token:
        where = f" for organisation {org!r}" if org else ""
        raise CliError(f"No API token{where}: run `windflow login` or set WINDFLOW_TOKEN.", REFUSED)
    return Credentials(organization_url(url, org), token)
