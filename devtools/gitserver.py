"""Real Git servers on loopback, for the tests of the Git sources.

    server = start_git_server(Path("/tmp/git"))   # git daemon + git http-backend
    repo = server.repo(token="s3cret")            # a bare repo and a work tree to commit from
    sha = repo.commit({"compose.yaml": "...", "app/Dockerfile": "FROM ..."})
    repo.git_url        # git://127.0.0.1:<port>/<name>.git    (read-only, no auth)
    repo.http_url       # http://127.0.0.1:<port>/<name>.git   (token required when given)
    repo.ssh_url(sshd)  # ssh://root@127.0.0.1:<port>/<path>   (through a devtools.sshd server)
    server.stop()

- ``git daemon`` serves every repository of the server over git:// (read-only, no auth).
- ``git http-backend`` (smart HTTP, protocol v2) runs as a CGI behind a small threaded Python
  HTTP server. A repository made with a token answers only requests that carry it as
  ``Authorization: Bearer <token>`` or as the password of ``Authorization: Basic``; others get
  401. It is plain HTTP on 127.0.0.1: what HTTPS adds (TLS) is not what these tests are about,
  and the engine refuses http:// unless told to allow it (``allow_insecure``).
- SSH: the repositories are plain paths on this machine, so an sshd of ``devtools.sshd``
  serves them as ``ssh://user@127.0.0.1:port/<path>`` once the deploy key is authorised for
  that user (``sshd.authorize("root", public_line)``): the client runs git-upload-pack there.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import itertools
import os
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .base import HOST, DevServiceError, fail, free_port, spawn_daemon

GIT = shutil.which("git") or "/usr/bin/git"
START_TIMEOUT = 10
AUTHOR = {
    "GIT_AUTHOR_NAME": "WindFlow Tests",
    "GIT_AUTHOR_EMAIL": "tests@windflow.test",
    "GIT_COMMITTER_NAME": "WindFlow Tests",
    "GIT_COMMITTER_EMAIL": "tests@windflow.test",
}


def _git(*args: str, cwd: Path | None = None, env: dict | None = None) -> str:
    full_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd or "/"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "LC_ALL": "C",
        **AUTHOR,
        **(env or {}),
    }
    result = subprocess.run(
        [GIT, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0:
        raise DevServiceError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


@dataclass(frozen=True)
class Link:
    """A symbolic link to commit: ``repo.commit({"l": Link("../../etc/passwd")})``."""

    target: str


@dataclass
class GitRepo:
    server: GitServer
    name: str
    bare: Path
    work: Path
    token: str | None = None

    @property
    def git_url(self) -> str:
        return f"git://{HOST}:{self.server.daemon_port}/{self.name}.git"

    @property
    def http_url(self) -> str:
        return f"http://{HOST}:{self.server.http_port}/{self.name}.git"

    def ssh_url(self, sshd, user: str = "root") -> str:
        return f"ssh://{user}@{sshd.host}:{sshd.port}{self.bare}"

    def scp_url(self, sshd, user: str = "root") -> str:
        """The scp-like form needs port 22: only for URL parsing tests."""
        return f"{user}@{sshd.host}:{self.bare}"

    def commit(
        self,
        files: dict[str, str | bytes | Link | None],
        message: str = "change",
        *,
        branch: str = "main",
        force: bool = False,
    ) -> str:
        """Write (None: delete) `files` in the work tree, commit on `branch` and push it to
        the served repository; returns the commit SHA."""
        current = (
            _git("rev-parse", "--abbrev-ref", "HEAD", cwd=self.work) if self._has_head() else ""
        )
        if current != branch:
            exists = _git("branch", "--list", branch, cwd=self.work)
            _git("checkout", "-q", *([] if exists else ["-b"]), branch, cwd=self.work)
        for rel, content in files.items():
            path = self.work / rel
            if content is None:
                _git("rm", "-q", "-r", "--", rel, cwd=self.work)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_symlink() or path.exists():
                path.unlink()
            if isinstance(content, Link):
                os.symlink(content.target, path)
            elif isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
        _git("add", "-A", cwd=self.work)
        _git("commit", "-q", "--allow-empty", "-m", message, cwd=self.work)
        _git("push", "-q", *(["--force"] if force else []), "origin", branch, cwd=self.work)
        return self.head(branch)

    def _has_head(self) -> bool:
        try:
            _git("rev-parse", "--verify", "-q", "HEAD", cwd=self.work)
        except DevServiceError:
            return False
        return True

    def head(self, branch: str = "main") -> str:
        return _git("rev-parse", branch, cwd=self.work)

    def tag(self, name: str, ref: str = "HEAD", *, annotated: bool = True) -> str:
        """Tag `ref` and push the tag; returns the commit SHA it names."""
        args = ["-a", "-m", f"tag {name}"] if annotated else []
        _git("tag", *args, name, ref, cwd=self.work)
        _git("push", "-q", "origin", f"refs/tags/{name}", cwd=self.work)
        return _git("rev-parse", f"{name}^{{commit}}", cwd=self.work)

    def rewrite(self, files: dict, message: str = "rewritten", *, branch: str = "main") -> str:
        """Force-push: drop the tip of `branch`, commit `files` on its parent instead."""
        _git("checkout", "-q", branch, cwd=self.work)
        _git("reset", "-q", "--hard", "HEAD~1", cwd=self.work)
        return self.commit(files, message, branch=branch, force=True)


def _authorized(header: str | None, token: str) -> bool:
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return hmac.compare_digest(value.encode(), token.encode())
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (ValueError, UnicodeError):
            return False
        _user, _, password = decoded.partition(":")
        return hmac.compare_digest(password.encode(), token.encode())
    return False


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                handler.rfile.readline()
                break
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
        return b"".join(chunks)
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


class _GitHttpHandler(BaseHTTPRequestHandler):
    server: _GitHttpServer
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args) -> None:
        with contextlib.suppress(OSError), open(self.server.log_file, "a") as log:
            log.write(f"{self.address_string()} {format % args}\n")

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        path, _, query = self.path.partition("?")
        name = path.lstrip("/").split("/", 1)[0].removesuffix(".git")
        self.server.requests.append((self.command, path, self.headers.get("Authorization")))
        token = self.server.tokens.get(name)
        if token is not None and not _authorized(self.headers.get("Authorization"), token):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="windflow-tests"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = _read_body(self) if self.command == "POST" else b""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.server.repos),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_USER": "tests" if token else "",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
        }
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        result = subprocess.run(
            [GIT, "http-backend"], input=body, env=env, capture_output=True, timeout=120
        )
        head, _, payload = result.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = result.stdout.partition(b"\n\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.strip().split()[0])
            elif key:
                headers.append((key, value.strip()))
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _GitHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, repos: Path, log_file: Path):
        super().__init__((HOST, 0), _GitHttpHandler)
        self.repos = repos
        self.log_file = log_file
        self.tokens: dict[str, str] = {}
        self.requests: list[tuple[str, str, str | None]] = []


@dataclass
class GitServer:
    root: Path
    daemon: subprocess.Popen = field(repr=False)
    daemon_port: int
    http: _GitHttpServer = field(repr=False)
    names: itertools.count = field(default_factory=lambda: itertools.count(1), repr=False)

    @property
    def repos(self) -> Path:
        return self.root / "repos"

    @property
    def http_port(self) -> int:
        return self.http.server_address[1]

    @property
    def requests(self) -> list[tuple[str, str, str | None]]:
        """(method, path, Authorization header) of every HTTP request served."""
        return self.http.requests

    def repo(self, name: str | None = None, *, token: str | None = None) -> GitRepo:
        """A new empty repository (served bare, with a work tree to commit from); with a
        `token`, HTTP requests must carry it."""
        name = name or f"repo{next(self.names)}"
        bare = self.repos / f"{name}.git"
        work = self.root / "work" / name
        _git("init", "-q", "--bare", "-b", "main", str(bare))
        work.parent.mkdir(parents=True, exist_ok=True)
        _git("init", "-q", "-b", "main", str(work))
        _git("remote", "add", "origin", str(bare), cwd=work)
        if token is not None:
            self.http.tokens[name] = token
        return GitRepo(self, name, bare, work, token)

    def stop(self) -> None:
        self.http.shutdown()
        self.http.server_close()
        if self.daemon.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.daemon.pid, 15)
            try:
                self.daemon.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.daemon.pid, 9)
                self.daemon.wait(5)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def start_git_server(root: Path) -> GitServer:
    """``git daemon`` and ``git http-backend`` on 127.0.0.1 serving ``root/repos``."""
    root = Path(root).absolute()
    (root / "repos").mkdir(parents=True, exist_ok=True)
    log = root / "git-daemon.log"
    port = free_port()
    daemon = spawn_daemon(
        [
            GIT,
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--informative-errors",
            f"--base-path={root / 'repos'}",
            f"--listen={HOST}",
            f"--port={port}",
            str(root / "repos"),
        ],
        log,
        cwd=root,
    )
    deadline = time.monotonic() + START_TIMEOUT
    while not _accepts(port):
        if daemon.poll() is not None or time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(daemon.pid, 9)
            raise fail(f"git daemon did not listen on {HOST}:{port}", log)
        time.sleep(0.05)
    http = _GitHttpServer(root / "repos", root / "git-http.log")
    threading.Thread(target=http.serve_forever, name="git-http", daemon=True).start()
    return GitServer(root, daemon, port, http)
