"""The "Prepare server" job: install Docker Engine and the compose plugin on a Debian or Ubuntu
server over SSH, streaming the script's output line by line.

Pure Python (no Django).

    code = run_prepare(session, on_line=print)      # 0: ready (or already was)

The script is idempotent: when docker and the compose plugin are there it says so
and exits 0. It refuses other systems clearly (exit code 3). It needs root or
passwordless sudo to install (exit code 4 otherwise). After a run that added the
login user to the docker group, drop pooled sessions of that server
(``ssh.pool.discard(host=...)``): group membership applies to new logins only.

For tests, ``WINDFLOW_OS_RELEASE`` replaces the path of /etc/os-release.
"""

from __future__ import annotations

import secrets
import shlex
from collections.abc import Callable

from .ssh import SSHSession

__all__ = ["EXIT_NEEDS_ROOT", "EXIT_UNSUPPORTED_OS", "PREPARE_SCRIPT", "run_prepare"]

EXIT_UNSUPPORTED_OS = 3
EXIT_NEEDS_ROOT = 4
PREPARE_TIMEOUT = 1800  # seconds: apt on a slow mirror

PREPARE_SCRIPT = r"""#!/usr/bin/env bash
# WindFlow: prepare this server for deployments (Docker Engine + compose plugin).
# Debian and Ubuntu only. Safe to run again: what is installed is kept.
set -euo pipefail
export LC_ALL=C DEBIAN_FRONTEND=noninteractive

OS_RELEASE="${WINDFLOW_OS_RELEASE:-/etc/os-release}"

say() { printf '==> %s\n' "$*"; }
die() { code=$1; shift; printf 'ERROR: %s\n' "$*" >&2; exit "$code"; }

os_field() {
  # The value of one os-release field, without quotes (the file is not sourced).
  sed -n "s/^$1=//p" "$OS_RELEASE" | head -n 1 \
    | sed -e 's/^"//' -e 's/"$//' -e "s/^'//" -e "s/'\$//"
}

ONLY="WindFlow can prepare Debian and Ubuntu servers only."
YOURSELF="Install Docker Engine and the compose plugin yourself"
YOURSELF="$YOURSELF (https://docs.docker.com/engine/install/)"
[ -r "$OS_RELEASE" ] || die 3 "cannot read $OS_RELEASE: $ONLY $YOURSELF."
OS_ID="$(os_field ID)"
OS_NAME="$(os_field PRETTY_NAME)"
OS_CODENAME="$(os_field VERSION_CODENAME)"
[ -n "$OS_CODENAME" ] || OS_CODENAME="$(os_field UBUNTU_CODENAME)"
case "$OS_ID" in
  debian|ubuntu) ;;
  *) die 3 "unsupported operating system: ${OS_NAME:-${OS_ID:-unknown}}. $ONLY" \
       "$YOURSELF, then test the connection again." ;;
esac
say "System: ${OS_NAME:-$OS_ID} ($(uname -m)), user $(id -un)"

have_docker() { command -v docker >/dev/null 2>&1; }
have_compose() { have_docker && docker compose version >/dev/null 2>&1; }

note_access() {
  # A user outside the docker group cannot use the engine: say how to fix it.
  [ "$(id -u)" -ne 0 ] || return 0
  case " $(id -nG) " in
    *" docker "*) ;;
    *) say "Note: $(id -un) is not in the docker group: sudo usermod -aG docker $(id -un)" ;;
  esac
}

if have_docker && have_compose; then
  say "Docker is already installed: $(docker --version)"
  say "Compose plugin is already installed: $(docker compose version)"
  note_access
  say "Nothing to do: this server is ready."
  exit 0
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    die 4 "installing Docker needs root: log in as root, or give $(id -un) passwordless sudo."
  fi
fi

apt_install() { $SUDO apt-get install -y -q --no-install-recommends "$@"; }
apt_has() { apt-cache show "$1" >/dev/null 2>&1; }

say "Updating the package lists"
$SUDO apt-get update -q

install_docker_repo() {
  # Docker's own repository: docker-ce and docker-compose-plugin.
  say "Adding Docker's apt repository for $OS_ID $OS_CODENAME"
  [ -n "$OS_CODENAME" ] || return 1
  apt_install ca-certificates curl gnupg || return 1
  $SUDO install -m 0755 -d /etc/apt/keyrings
  local repo="https://download.docker.com/linux/$OS_ID"
  local keyring=/etc/apt/keyrings/docker.asc
  $SUDO curl -fsSL --max-time 60 "$repo/gpg" -o "$keyring" || return 1
  $SUDO chmod a+r "$keyring"
  echo "deb [arch=$(dpkg --print-architecture) signed-by=$keyring] $repo $OS_CODENAME stable" \
    | $SUDO tee /etc/apt/sources.list.d/docker.list >/dev/null
  $SUDO apt-get update -q || return 1
}

if ! have_docker; then
  if install_docker_repo && apt_install docker-ce docker-ce-cli containerd.io \
      docker-buildx-plugin docker-compose-plugin; then
    say "Installed Docker from Docker's repository"
  else
    say "Docker's repository is unavailable: installing the distribution's docker.io"
    $SUDO rm -f /etc/apt/sources.list.d/docker.list
    $SUDO apt-get update -q || true
    apt_install docker.io
  fi
fi

if ! have_compose; then
  installed=
  for package in docker-compose-plugin docker-compose-v2; do
    if apt_has "$package" && apt_install "$package"; then installed=$package; break; fi
  done
  if [ -z "$installed" ] && [ ! -f /etc/apt/sources.list.d/docker.list ] \
      && install_docker_repo; then
    apt_install docker-compose-plugin && installed=docker-compose-plugin
  fi
  [ -n "$installed" ] || die 5 "no compose plugin package found for ${OS_NAME:-$OS_ID}:" \
    "install docker-compose-plugin (https://docs.docker.com/compose/install/linux/)"
  say "Installed $installed"
fi

say "Starting the Docker engine"
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  $SUDO systemctl enable --now docker
else
  $SUDO service docker start || true
fi

if [ "$(id -u)" -ne 0 ]; then
  $SUDO usermod -aG docker "$(id -un)"
  say "Added $(id -un) to the docker group (applies to new logins: WindFlow reconnects)"
fi

say "Docker: $(docker --version)"
say "Compose: $(docker compose version)"
say "This server is ready."
"""


def run_prepare(
    session: SSHSession,
    on_line: Callable[[str], None],
    *,
    env: dict[str, str] | None = None,
    timeout: float = PREPARE_TIMEOUT,
) -> int:
    """Upload PREPARE_SCRIPT to /tmp and run it with bash, calling `on_line` for every
    line of output (stdout and stderr merged) as it comes. Returns the exit code (0:
    ready). The script file is removed afterwards. `env` adds variables to the run."""
    path = f"/tmp/windflow-prepare-{secrets.token_hex(8)}.sh"  # noqa: S108 - unique name
    session.put(PREPARE_SCRIPT, path, mode=0o700)
    assignments = " ".join(
        f"{name}={shlex.quote(value)}" for name, value in (env or {}).items() if name.isidentifier()
    )
    quoted = shlex.quote(path)
    command = f"{assignments} bash {quoted}; code=$?; rm -f {quoted}; exit $code".lstrip()
    return session.stream(command, on_line, timeout=timeout)
