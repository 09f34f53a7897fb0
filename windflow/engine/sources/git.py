"""Git repositories as project sources, through the ``git`` program (subprocess, no shell).

    auth = GitAuth.with_token("glpat-...")               # or GitAuth.with_deploy_key(pem)
    remote = resolve_ref(url, "main", auth)              # RemoteRef(sha, kind="branch", ...)
    sha = ls_remote(url, "v1.2", auth)                   # branch, tag, HEAD, full/short SHA
    tree = fetch(url, sha, auth, cache=cache)            # read-only folder of that commit
    is_ancestor(url, old_sha, new_sha, auth, cache=cache)  # False after a force-push

URLs (``check_url``): ``https://``, ``ssh://`` and scp-like ``user@host:path``; ``http://``
and ``git://`` (unencrypted) only with ``allow_insecure``; never ``file://``, local paths,
``ext::`` and other transports, a leading ``-`` (option injection), or credentials in the URL.
Without ``allow_private`` the host must resolve to public addresses only (no loopback,
private, link-local...); for HTTP(S) git is then pinned to the address checked
(``http.curloptResolve``), so a DNS answer that changes in between is not followed, and
HTTP redirects are not followed either (they would lead to a host never checked). The
sources app wires both to settings; the tests allow loopback.

Credentials never reach argv, the URL, a stored file or a message:
- HTTPS token: an ``Authorization: Basic`` header (user ``x-access-token`` by default, which
  GitHub, GitLab, Gitea/Forgejo and Bitbucket accept with a token as password) given to git
  through ``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n`` in its environment.
- SSH deploy key: written to a 0600 file in a private 0700 temporary folder removed after the
  command; ``GIT_SSH_COMMAND`` runs ``ssh -F /dev/null`` with ``IdentitiesOnly``, no agent,
  ``BatchMode`` and a known_hosts file of our own. Host keys are trusted on first use and
  pinned: ``GitAuth.known_hosts`` empty means "accept and learn" (``StrictHostKeyChecking
  accept-new``), and ``RemoteRef.known_hosts`` returns what was learned so that the caller
  stores it; given, it is enforced (``StrictHostKeyChecking yes``): a changed key is
  ``host_key_changed``.
git runs with ``GIT_TERMINAL_PROMPT=0``, no system or global config, no credential helper,
``LC_ALL=C``, ``GIT_ALLOW_PROTOCOL`` restricted, a timeout on every command (the whole
process group is killed), and its error output scrubbed of the token before use.

Errors are ``GitError`` with a code: ``url_refused``, ``repo_unreachable``, ``auth_failed``,
``host_key_changed``, ``ref_not_found``, ``commit_not_found``, ``fetch_too_large``,
``repo_unsafe`` (a link in the commit that points outside the tree...).

The cache (``cache.Cache``) holds one bare mirror per (URL, credentials) and one read-only
tree per (URL, credentials, commit): a commit fetched once is never fetched again with the
same credentials, and another stack with other (or no) credentials never reads the trees
fetched with these.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import ipaddress
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import archive
from .cache import Cache, tree_size
from .errors import ArchiveError, GitError

__all__ = [
    "FETCH_TIMEOUT",
    "LS_REMOTE_TIMEOUT",
    "MAX_FETCH_BYTES",
    "NO_AUTH",
    "GitAuth",
    "GitError",
    "GitUrl",
    "RemoteRef",
    "check_ref",
    "check_url",
    "fetch",
    "is_ancestor",
    "ls_remote",
    "resolve_ref",
    "scrub",
]

GIT = "git"
LS_REMOTE_TIMEOUT = 30.0  # seconds
FETCH_TIMEOUT = 300.0
SSH_CONNECT_TIMEOUT = 10  # seconds
LOW_SPEED_LIMIT = 1000  # bytes/s, for LOW_SPEED_TIME seconds: then HTTP transfers give up
LOW_SPEED_TIME = 30
MAX_FETCH_BYTES = 1024**3  # objects fetched for one commit, and its tree unpacked
DEEPEN_STEPS = (64, 1024, None)  # history fetched to decide is_ancestor (None: all of it)
FULL_SHA = re.compile(r"^[0-9a-fA-F]{40}$")
SHORT_SHA = re.compile(r"^[0-9a-fA-F]{7,39}$")
DEFAULT_TOKEN_USER = "x-access-token"  # noqa: S105 - a user name, not a secret


# --------------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class GitAuth:
    """How to authenticate: ``none``, ``token`` (HTTPS) or ``deploy_key`` (SSH)."""

    kind: str = "none"
    token: str = field(default="", repr=False)
    username: str = DEFAULT_TOKEN_USER
    private_key: str = field(default="", repr=False)  # OpenSSH / PEM private key
    known_hosts: str = ""  # pinned SSH host keys (known_hosts lines); "" = learn on first use

    @classmethod
    def with_token(cls, token: str, username: str = DEFAULT_TOKEN_USER) -> GitAuth:
        return cls("token", token=token, username=username or DEFAULT_TOKEN_USER)

    @classmethod
    def with_deploy_key(cls, private_key: str, known_hosts: str = "") -> GitAuth:
        return cls("deploy_key", private_key=private_key, known_hosts=known_hosts)

    def __post_init__(self):
        if self.kind not in ("none", "token", "deploy_key"):
            raise ValueError(f"GitAuth kind must be none, token or deploy_key: {self.kind!r}")

    @property
    def identity(self) -> str:
        """A digest of the credentials (never the credentials): part of the cache keys."""
        secret = self.token if self.kind == "token" else self.private_key
        material = f"{self.kind}\0{self.username}\0{secret}".encode()
        return hashlib.sha256(material).hexdigest()

    def secrets(self) -> list[str]:
        """What must never appear in a message."""
        found = []
        if self.kind == "token" and self.token:
            header = base64.b64encode(f"{self.username}:{self.token}".encode()).decode()
            found += [self.token, header, urllib.parse.quote(self.token, safe="")]
        if self.kind == "deploy_key" and self.private_key:
            found += [line for line in self.private_key.splitlines() if len(line) > 8]
        return found


NO_AUTH = GitAuth()


@dataclass(frozen=True)
class GitUrl:
    url: str
    scheme: str  # https, http, git, ssh ("ssh" for scp-like too)
    host: str
    port: int | None
    path: str


@dataclass(frozen=True)
class RemoteRef:
    sha: str  # 40 hex
    kind: str  # "branch" | "tag" | "commit" | "head"
    name: str  # refs/heads/main, refs/tags/v1, the SHA asked, or HEAD's branch
    known_hosts: str = ""  # SSH: the host keys in use (pinned, or learned on this call)


def _refused(message: str) -> GitError:
    return GitError("url_refused", message)


SCP_LIKE = re.compile(
    r"^(?:(?P<user>[^@/:\s]+)@)?(?P<host>\[[^\]/]+\]|[^:/\s\[\]@]+):(?P<path>.+)$"
)
TRANSPORT = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")


def _parse(url: str, allow_insecure: bool) -> GitUrl:
    if not url or url != url.strip() or any(ord(ch) < 33 or ord(ch) == 127 for ch in url):
        raise _refused("The repository URL is empty or holds spaces or control characters.")
    if url.startswith("-"):
        raise _refused(f"The repository URL {url!r} starts with '-'.")
    if TRANSPORT.match(url):
        raise _refused(f"The repository URL {url!r} uses a git transport helper ('::').")
    if "://" in url:
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.lower()
        allowed = {"https", "ssh"} | ({"http", "git"} if allow_insecure else set())
        if scheme not in allowed:
            insecure = " (unencrypted: not allowed on this installation)" * (
                scheme in ("http", "git")
            )
            raise _refused(f"The repository URL scheme {scheme}:// is not allowed{insecure}.")
        if parts.password is not None or (scheme != "ssh" and parts.username is not None):
            raise _refused(
                "The repository URL holds credentials: give the token in the token field "
                "instead (it is stored as a secret)."
            )
        try:
            port = parts.port
        except ValueError:
            raise _refused(f"The repository URL {url!r} has an invalid port.") from None
        host = parts.hostname or ""
        path = parts.path
    else:
        match = SCP_LIKE.match(url)
        if not match or "/" in url.split(":", 1)[0]:
            raise _refused(
                f"{url!r} is not a repository URL: use https://host/owner/repo.git or "
                "git@host:owner/repo.git (local paths are not allowed)."
            )
        scheme, port, path = "ssh", None, match["path"]
        host = match["host"].strip("[]")
    if not host or host.startswith("-"):
        raise _refused(f"The repository URL {url!r} has no valid host.")
    if not path.strip("/"):
        raise _refused(f"The repository URL {url!r} names no repository.")
    return GitUrl(url, scheme, host.lower(), port, path)


DEFAULT_PORTS = {"https": 443, "http": 80, "git": 9418, "ssh": 22}


def _public_addresses(parsed: GitUrl) -> list[str]:
    port = parsed.port or DEFAULT_PORTS[parsed.scheme]
    try:
        infos = socket.getaddrinfo(parsed.host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise GitError(
            "repo_unreachable", f"The host {parsed.host!r} of the repository does not resolve."
        ) from None
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        mapped = getattr(address, "ipv4_mapped", None)
        checked = mapped or address
        if (
            checked.is_private
            or checked.is_loopback
            or checked.is_link_local
            or checked.is_multicast
            or checked.is_reserved
            or checked.is_unspecified
            or getattr(checked, "is_site_local", False)
        ):
            raise _refused(
                f"The repository host {parsed.host!r} resolves to the private or local "
                f"address {address}: not allowed on this installation."
            )
        addresses.append(str(address))
    return addresses


def check_url(url: str, *, allow_private: bool = False, allow_insecure: bool = False) -> GitUrl:
    """The parsed URL when WindFlow may fetch from it, else GitError ``url_refused``."""
    parsed = _parse(url, allow_insecure)
    if not allow_private:
        _public_addresses(parsed)
    return parsed


REF_BAD = re.compile(r"(^-)|(\.\.)|([\x00-\x20\x7f~^:?*\[\\])|(@\{)|(^/)|(/$)|(\.lock$)|(//)")


def check_ref(ref: str) -> str:
    """A branch, tag, ``refs/...`` name, ``HEAD`` or (short) SHA that git accepts."""
    if not ref or REF_BAD.search(ref) or ref.endswith("."):
        raise GitError("ref_not_found", f"{ref!r} is not a valid branch, tag or commit name.", None)
    return ref


# ------------------------------------------------------------------------------ running git


def scrub(text: str, secrets: list[str]) -> str:
    """`text` without the secrets, Authorization headers or URL passwords."""
    for secret in sorted(set(filter(None, secrets)), key=len, reverse=True):
        text = text.replace(secret, "***")
    text = re.sub(r"(?i)(authorization:\s*)(\S+\s+)?\S+", r"\1***", text)
    return re.sub(r"://[^/@\s:]+:[^/@\s]+@", "://***@", text)


@dataclass
class _Session:
    env: dict[str, str]
    known_hosts: Path
    secrets: list[str]


@contextlib.contextmanager
def _session(parsed: GitUrl, auth: GitAuth, addresses: list[str] | None) -> Iterator[_Session]:
    """git's environment for one operation, in a private temporary folder removed after."""
    home = Path(tempfile.mkdtemp(prefix="windflow-git-"))
    os.chmod(home, 0o700)
    try:
        known_hosts = home / "known_hosts"
        known_hosts.write_text(auth.known_hosts.strip() + "\n" if auth.known_hosts else "")
        env = {
            "PATH": os.environ.get("PATH") or "/usr/bin:/bin",
            "HOME": str(home),
            "LC_ALL": "C",
            "LANG": "C",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_ALLOW_PROTOCOL": "https:http:ssh:git",
            "GIT_PROTOCOL_FROM_USER": "0",
            "GIT_SSH_VARIANT": "ssh",
        }
        config = [
            ("credential.helper", ""),
            ("core.askPass", ""),
            ("protocol.version", "2"),
            ("http.lowSpeedLimit", str(LOW_SPEED_LIMIT)),
            ("http.lowSpeedTime", str(LOW_SPEED_TIME)),
        ]
        if addresses and parsed.scheme in ("http", "https"):
            port = parsed.port or DEFAULT_PORTS[parsed.scheme]
            pinned = ",".join(f"[{a}]" if ":" in a else a for a in addresses)
            config.append(("http.curloptResolve", f"{parsed.host}:{port}:{pinned}"))
            # a redirect would lead to a host that was not checked: not followed
            config.append(("http.followRedirects", "false"))
        if auth.kind == "token" and auth.token:
            credentials = base64.b64encode(f"{auth.username}:{auth.token}".encode()).decode()
            config.append(("http.extraHeader", f"Authorization: Basic {credentials}"))
        for index, (key, value) in enumerate(config):
            env[f"GIT_CONFIG_KEY_{index}"] = key
            env[f"GIT_CONFIG_VALUE_{index}"] = value
        env["GIT_CONFIG_COUNT"] = str(len(config))
        ssh = [
            "ssh",
            "-F",
            os.devnull,
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            f"ConnectTimeout={SSH_CONNECT_TIMEOUT}",
            "-o",
            f"UserKnownHostsFile={known_hosts}",
            "-o",
            f"GlobalKnownHostsFile={os.devnull}",
            "-o",
            "StrictHostKeyChecking=" + ("yes" if auth.known_hosts else "accept-new"),
            "-o",
            "HashKnownHosts=no",
            "-o",
            "LogLevel=ERROR",
        ]
        if auth.kind == "deploy_key" and auth.private_key:
            key_file = home / "deploy_key"
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(auth.private_key.strip() + "\n")
            ssh += ["-i", str(key_file)]
        env["GIT_SSH_COMMAND"] = shlex.join(ssh)
        yield _Session(env, known_hosts, auth.secrets())
    finally:
        shutil.rmtree(home, ignore_errors=True)


@dataclass
class _Result:
    code: int
    stdout: bytes
    stderr: str


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()


def _run(
    args: list[str],
    session: _Session,
    *,
    timeout: float,
    cwd: Path | None = None,
    stdout=subprocess.PIPE,
    watch: Callable[[], None] | None = None,
    what: str = "",
) -> _Result:
    """Run git; `watch` is called about every half second and may raise to stop it."""
    proc = subprocess.Popen(  # noqa: S603 - git, argv list, no shell
        [GIT, *args],
        cwd=cwd,
        env=session.env,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            out, err = proc.communicate(timeout=0.5 if watch else max(0.1, timeout))
            break
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                _kill_group(proc)
                raise GitError(
                    "repo_unreachable",
                    f"git {what or args[0]} did not finish within {timeout:.0f} s.",
                    "Check that the Git server answers from the WindFlow workers (a firewall "
                    "that drops packets looks like this), or try again later.",
                ) from None
            if watch is not None:
                try:
                    watch()
                except BaseException:
                    _kill_group(proc)
                    raise
    stderr = scrub((err or b"").decode("utf-8", "replace"), session.secrets)
    return _Result(proc.returncode, out or b"", stderr)


AUTH_FAILED = (
    "authentication failed",
    "permission denied (publickey",
    "permission denied, please try again",
    "returned error: 401",
    "returned error: 403",
    "could not read username",
    "could not read password",
    "terminal prompts disabled",
    "invalid username or password",
    "access denied",
    "access forbidden",
    "load key",
)
HOST_KEY = ("host key verification failed", "remote host identification has changed")
NOT_OUR_REF = (
    "not our ref",
    "couldn't find remote ref",
    "no such remote ref",
    "unadvertised object",
    "not a valid object",
    "no such commit",
)


def _git_says(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    first = next(
        (i for i, line in enumerate(lines) if line.lower().startswith(("fatal", "error"))), 0
    )
    return " ".join(lines[first : first + 4])[:500]


def _failure(result: _Result, url: str, doing: str) -> GitError:
    text = result.stderr.lower()
    says = _git_says(result.stderr)
    detail = f" git said: {says}" if says else ""
    if any(marker in text for marker in HOST_KEY):
        return GitError(
            "host_key_changed",
            f"The SSH host key of the Git server of {url} is not the pinned one.{detail}",
        )
    if re.search(r"returned error: 30[12378]", text):
        return GitError(
            "repo_unreachable",
            f"{url} redirects elsewhere (the repository moved?) while {doing}.{detail}",
            "Give the repository's current URL: redirects are not followed.",
        )
    if any(marker in text for marker in AUTH_FAILED):
        return GitError("auth_failed", f"{url} refused the credentials while {doing}.{detail}")
    return GitError(
        "repo_unreachable", f"Could not reach the repository {url} while {doing}.{detail}"
    )


# ----------------------------------------------------------------------------- operations


def _prepare(url, auth, allow_private, allow_insecure) -> tuple[GitUrl, GitAuth, list | None]:
    auth = auth or NO_AUTH
    parsed = _parse(url, allow_insecure)
    addresses = None if allow_private else _public_addresses(parsed)
    if auth.kind == "token" and parsed.scheme in ("ssh", "git"):
        raise _refused("An access token works with https:// URLs: use a deploy key for SSH.")
    if auth.kind == "deploy_key" and parsed.scheme != "ssh":
        raise _refused("A deploy key works with SSH URLs (git@host:owner/repo.git).")
    return parsed, auth, addresses


def _remote_refs(stdout: bytes) -> dict[str, str]:
    refs = {}
    for line in stdout.decode("utf-8", "replace").splitlines():
        sha, _, name = line.partition("\t")
        if FULL_SHA.match(sha) and name:
            refs[name] = sha.lower()
    return refs


def resolve_ref(
    url: str,
    ref: str,
    auth: GitAuth | None = None,
    *,
    cache: Cache | None = None,
    allow_private: bool = False,
    allow_insecure: bool = False,
    timeout: float = LS_REMOTE_TIMEOUT,
) -> RemoteRef:
    """What `ref` names in the repository now (one ``git ls-remote``, which also proves that
    the repository answers and the credentials work). `ref`: a branch (preferred over a tag
    of the same name), a tag (peeled to its commit), ``refs/...``, ``HEAD`` or "" (the
    default branch), a full SHA (returned as is: ``fetch`` checks that it exists) or a
    short SHA (a ref tip, else looked up in a full fetch into `cache`'s mirror)."""
    parsed, auth, addresses = _prepare(url, auth, allow_private, allow_insecure)
    ref = check_ref(ref) if ref else "HEAD"
    is_hex = bool(FULL_SHA.match(ref) or SHORT_SHA.match(ref))
    with _session(parsed, auth, addresses) as session:
        if ref == "HEAD":
            patterns = ["HEAD"]
        elif ref.startswith("refs/"):
            patterns = [ref]
        elif is_hex:
            patterns = []  # every ref: a short SHA may be a tip
        else:
            patterns = [f"refs/heads/{ref}", f"refs/tags/{ref}", f"refs/tags/{ref}^{{}}"]
        args = ["ls-remote", "--symref", "--", url, *patterns]
        result = _run(args, session, timeout=timeout, what="ls-remote")
        if result.code != 0:
            raise _failure(result, url, "listing its branches and tags")
        known = session.known_hosts.read_text() if parsed.scheme == "ssh" else ""
    refs = _remote_refs(result.stdout)

    def found(sha: str, kind: str, name: str) -> RemoteRef:
        return RemoteRef(sha, kind, name, known)

    if ref == "HEAD":
        if "HEAD" not in refs:
            raise GitError("ref_not_found", f"The repository {url} has no default branch.")
        text = result.stdout.decode("utf-8", "replace")
        symref = re.search(r"^ref: (refs/\S+)\tHEAD$", text, re.MULTILINE)
        return found(refs["HEAD"], "head", symref[1] if symref else "HEAD")
    for name, kind in (
        (ref, "branch" if ref.startswith("refs/heads/") else "tag"),
        (f"refs/heads/{ref}", "branch"),
        (f"refs/tags/{ref}^{{}}", "tag"),
        (f"refs/tags/{ref}", "tag"),
    ):
        if name in refs:
            clean = name.removesuffix("^{}")
            return found(refs[name], kind, clean)
    if FULL_SHA.match(ref):
        return found(ref.lower(), "commit", ref.lower())
    if is_hex:
        tips = sorted({sha for sha in refs.values() if sha.startswith(ref.lower())})
        if len(tips) == 1:
            return found(tips[0], "commit", ref)
        if cache is not None:
            sha = _resolve_short(url, ref, auth, cache, parsed, addresses)
            return found(sha, "commit", ref)
        raise GitError(
            "commit_not_found",
            f"The short SHA {ref} is not the tip of a branch or tag of {url}.",
            "Give the full 40-character commit SHA.",
        )
    raise GitError("ref_not_found", f"The repository {url} has no branch or tag {ref!r}.")


def ls_remote(
    url: str,
    ref: str,
    auth: GitAuth | None = None,
    *,
    cache: Cache | None = None,
    allow_private: bool = False,
    allow_insecure: bool = False,
    timeout: float = LS_REMOTE_TIMEOUT,
) -> str:
    """The 40-hex commit SHA that `ref` names now (see ``resolve_ref``)."""
    return resolve_ref(
        url,
        ref,
        auth,
        cache=cache,
        allow_private=allow_private,
        allow_insecure=allow_insecure,
        timeout=timeout,
    ).sha


def _repo_key(url: str, auth: GitAuth) -> str:
    return hashlib.sha256(f"{url}\0{auth.identity}".encode()).hexdigest()[:32]


def _ensure_bare(mirror: Path, session: _Session) -> None:
    if (mirror / "HEAD").exists():
        return
    result = _run(["init", "--bare", "--quiet", str(mirror)], session, timeout=30, what="init")
    if result.code != 0:
        raise GitError("repo_unreachable", f"Could not create the local mirror: {result.stderr}")


@contextlib.contextmanager
def _mirror(
    cache: Cache, url: str, auth: GitAuth, parsed: GitUrl, addresses: list[str] | None
) -> Iterator[tuple[Path, _Session]]:
    """The URL's bare mirror in `cache` (made when new), locked, with a git session."""
    with (
        cache.locked(f"git-mirror-{_repo_key(url, auth)}") as mirror,
        _session(parsed, auth, addresses) as session,
    ):
        _ensure_bare(mirror, session)
        yield mirror, session


def _has_commit(mirror: Path, sha: str, session: _Session) -> bool:
    result = _run(["cat-file", "-e", f"{sha}^{{commit}}"], session, cwd=mirror, timeout=30)
    return result.code == 0


def _size_watch(mirror: Path, max_bytes: int, url: str) -> Callable[[], None]:
    start = tree_size(mirror)

    def watch() -> None:
        if tree_size(mirror) - start > max_bytes:
            raise GitError(
                "fetch_too_large",
                f"Fetching from {url} went over {max_bytes // (1024 * 1024)} MiB: stopped.",
            )

    return watch


def _clean_partial(mirror: Path) -> None:
    for leftover in (mirror / "objects" / "pack").glob("tmp_*"):
        leftover.unlink(missing_ok=True)
    for leftover in (mirror / "objects").glob("incoming-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    (mirror / "shallow.lock").unlink(missing_ok=True)


def _git_fetch(
    mirror: Path,
    url: str,
    refspecs: list[str],
    session: _Session,
    *,
    depth: int | None,
    timeout: float,
    max_bytes: int,
) -> _Result:
    args = ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head"]
    if depth is not None:
        args.append(f"--depth={depth}")
    elif (mirror / "shallow").exists():
        args.append("--unshallow")
    args += ["--", url, *refspecs]
    watch = _size_watch(mirror, max_bytes, url)
    try:
        result = _run(args, session, cwd=mirror, timeout=timeout, watch=watch, what="fetch")
        watch()  # what a fast fetch brought in between two looks
    except GitError as exc:
        _clean_partial(mirror)
        if exc.code == "fetch_too_large":  # a cache: start this mirror afresh next time
            for child in mirror.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        raise
    return result


def _fetch_commit(
    mirror: Path,
    url: str,
    sha: str,
    session: _Session,
    *,
    depth: int | None,
    timeout: float,
    max_bytes: int,
    fallback_ref: str | None = None,
) -> None:
    """Bring `sha` (and `depth` commits of its history) into the mirror."""
    result = _git_fetch(
        mirror,
        url,
        [f"+{sha}:refs/windflow/{sha}"],
        session,
        depth=depth,
        timeout=timeout,
        max_bytes=max_bytes,
    )
    if result.code == 0 and _has_commit(mirror, sha, session):
        return
    not_ours = any(marker in result.stderr.lower() for marker in NOT_OUR_REF)
    if result.code != 0 and not not_ours:
        raise _failure(result, url, f"fetching the commit {sha[:12]}")
    if fallback_ref:  # a server that refuses wants by SHA: fetch the ref that named it
        _git_fetch(
            mirror,
            url,
            [f"+{fallback_ref}:refs/windflow/{sha}"],
            session,
            depth=depth,
            timeout=timeout,
            max_bytes=max_bytes,
        )
        if _has_commit(mirror, sha, session):
            return
    raise GitError("commit_not_found", f"The repository {url} has no commit {sha}.")


def _resolve_short(url, ref, auth, cache, parsed, addresses) -> str:
    """A short SHA looked up in the whole history of every branch and tag."""
    with _mirror(cache, url, auth, parsed, addresses) as (mirror, session):
        result = _git_fetch(
            mirror,
            url,
            ["+refs/heads/*:refs/windflow-heads/*", "+refs/tags/*:refs/windflow-tags/*"],
            session,
            depth=None,
            timeout=FETCH_TIMEOUT,
            max_bytes=MAX_FETCH_BYTES,
        )
        if result.code != 0:
            raise _failure(result, url, "fetching its history")
        found = _run(
            ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"],
            session,
            cwd=mirror,
            timeout=30,
        )
    sha = found.stdout.decode().strip()
    if found.code != 0 or not FULL_SHA.match(sha):
        raise GitError(
            "commit_not_found",
            f"The repository {url} has no commit {ref} (or the short SHA is ambiguous).",
        )
    return sha.lower()


def _export(mirror: Path, sha: str, dest: Path, session: _Session, max_bytes: int) -> None:
    """The tree of `sha` into `dest`, through ``git archive`` and the safe unpack."""
    tar_path = dest.parent / f"{dest.name}.tar"
    # The commit's files as a checkout has them: no export-ignore / export-subst from its
    # .gitattributes (info/attributes wins over the tree's).
    (mirror / "info").mkdir(exist_ok=True)
    (mirror / "info" / "attributes").write_text("* -export-ignore -export-subst\n")
    try:
        with open(tar_path, "wb") as out:

            def watch() -> None:
                if os.path.getsize(tar_path) > max_bytes:
                    raise GitError(
                        "fetch_too_large",
                        f"The files of commit {sha[:12]} are over "
                        f"{max_bytes // (1024 * 1024)} MiB.",
                    )

            result = _run(
                ["archive", "--format=tar", sha],
                session,
                cwd=mirror,
                timeout=FETCH_TIMEOUT,
                stdout=out,
                watch=watch,
                what="archive",
            )
        if result.code != 0:
            raise GitError("commit_not_found", f"Could not read the commit {sha}: {result.stderr}")
        limits = archive.Limits(
            max_archive_size=max_bytes + 1024 * 1024,
            max_total_size=max_bytes,
            max_file_size=max_bytes,
            max_files=archive.MAX_FILES * 5,
            max_ratio=float("inf"),
        )
        try:
            archive.unpack(tar_path, dest, limits=limits)
        except ArchiveError as exc:
            message = exc.message.replace("The archive entry", f"The file of commit {sha[:12]}")
            if exc.code == "archive_too_large":
                raise GitError("fetch_too_large", message) from None
            if exc.code == "archive_unsafe":
                raise GitError("repo_unsafe", message) from None
            raise GitError("commit_not_found", message) from None
    finally:
        tar_path.unlink(missing_ok=True)


def fetch(
    url: str,
    ref: str,
    auth: GitAuth | None = None,
    *,
    cache: Cache,
    allow_private: bool = False,
    allow_insecure: bool = False,
    timeout: float = FETCH_TIMEOUT,
    max_bytes: int = MAX_FETCH_BYTES,
) -> Path:
    """A read-only folder holding the files of the commit `ref` names (a full SHA, or
    anything ``resolve_ref`` takes), from `cache` when this commit was fetched before with
    these credentials, else fetched (``--depth 1``) into the bare mirror of the URL and
    exported. Submodules are not fetched; Git LFS files stay pointers."""
    parsed, auth, addresses = _prepare(url, auth, allow_private, allow_insecure)
    if FULL_SHA.match(ref or ""):
        sha, fallback = ref.lower(), None
    else:
        remote = resolve_ref(
            url,
            ref,
            auth,
            cache=cache,
            allow_private=allow_private,
            allow_insecure=allow_insecure,
            timeout=min(timeout, LS_REMOTE_TIMEOUT),
        )
        sha, fallback = remote.sha, (remote.name if remote.name.startswith("refs/") else None)
    tree_key = f"git-tree-{_repo_key(url, auth)}-{sha}"
    existing = cache.get(tree_key)
    if existing is not None:
        return existing
    with _mirror(cache, url, auth, parsed, addresses) as (mirror, session):
        if not _has_commit(mirror, sha, session):
            _fetch_commit(
                mirror,
                url,
                sha,
                session,
                depth=1,
                timeout=timeout,
                max_bytes=max_bytes,
                fallback_ref=fallback,
            )
        return cache.entry(tree_key, lambda tmp: _export(mirror, sha, tmp, session, max_bytes))


def is_ancestor(
    url: str,
    old: str,
    new: str,
    auth: GitAuth | None = None,
    *,
    cache: Cache,
    allow_private: bool = False,
    allow_insecure: bool = False,
    timeout: float = FETCH_TIMEOUT,
    max_bytes: int = MAX_FETCH_BYTES,
) -> bool:
    """True when the commit `old` is in the history of `new` (both full SHAs): a branch
    that moved from `old` to `new` was fast-forwarded; False means it was rewritten
    (force-pushed) or `old` is gone. The history of `new` is fetched deeper step by step
    (64, 1024 commits, then all of it) until `old` is found or the history ends."""
    for sha in (old, new):
        if not FULL_SHA.match(sha or ""):
            raise GitError("commit_not_found", f"{sha!r} is not a full commit SHA.")
    old, new = old.lower(), new.lower()
    if old == new:
        return True
    parsed, auth, addresses = _prepare(url, auth, allow_private, allow_insecure)
    with _mirror(cache, url, auth, parsed, addresses) as (mirror, session):
        for depth in DEEPEN_STEPS:
            _fetch_commit(
                mirror,
                url,
                new,
                session,
                depth=depth,
                timeout=timeout,
                max_bytes=max_bytes,
            )
            if _has_commit(mirror, old, session):
                check = _run(
                    ["merge-base", "--is-ancestor", old, new], session, cwd=mirror, timeout=60
                )
                if check.code == 0:
                    return True
            if depth is None:
                return False
            count = _run(["rev-list", "--count", new], session, cwd=mirror, timeout=60)
            if int(count.stdout.decode().strip() or 0) < depth:
                return False  # the whole history is here
    return False
