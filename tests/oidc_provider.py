"""Start a real OpenID Connect provider for tests, and drive its login pages.

No Django here: this module only needs the standard library and httpx.

The provider is the npm package ``oidc-provider`` (v9), run with node from
``tests/oidc/provider.mjs``. Its ``node_modules`` are installed with ``npm ci`` on
first use when missing.

Typical use::

    with start_oidc_provider("windflow", "s3cret",
                             ["http://acme.localhost:8000/oidc/callback/"]) as op:
        settings.OIDC_OP_AUTHORIZATION_ENDPOINT = op.authorization_endpoint
        ...
        with loopback_client() as client:
            r = client.get("http://acme.localhost:8000/oidc/authenticate/")
            back = complete_login(client, r.headers["location"], "sam@acme.test")
            r = client.get(back.headers["location"])   # the RP's callback

Logins: the provider's dev login form accepts any login name and any password.
The account's ``sub`` is the login name; its ``email`` is the login itself when it
contains ``@`` (otherwise ``<login>@users.oidc.test``), ``email_verified`` is true,
and ``name``/``given_name``/``family_name`` are derived from the local part
(``sam.smith@acme.test`` -> ``Sam Smith``). ``accounts=`` overrides claims per login.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

OIDC_DIR = Path(__file__).resolve().parent / "oidc"
PROVIDER_SCRIPT = OIDC_DIR / "provider.mjs"
READY_TIMEOUT = 60  # seconds; a busy CI machine can be slow to start node
# node starts in about 0.4 s here, but now and then one hangs before its first line of
# output: give up on it sooner, and start another.
FIRST_TRY_TIMEOUT = 20
NPM_TIMEOUT = 300.0

__all__ = [
    "OidcProvider",
    "OidcProviderError",
    "complete_login",
    "ensure_node_modules",
    "loopback_client",
    "start_oidc_provider",
]


class OidcProviderError(RuntimeError):
    """The test OpenID provider could not be started or did not behave."""


# --------------------------------------------------------------------------- #
# node / npm
# --------------------------------------------------------------------------- #


def _which(name: str) -> str:
    path = shutil.which(name)
    if not path:
        raise OidcProviderError(
            f"`{name}` was not found on PATH; the SSO tests need Node.js (>= 20) and npm "
            f"to run the OpenID provider in {OIDC_DIR}"
        )
    return path


def ensure_node_modules() -> None:
    """Install tests/oidc/node_modules with ``npm ci`` if it is missing.

    Guarded by a file lock so that parallel test processes install only once.
    """
    marker = OIDC_DIR / "node_modules" / "oidc-provider" / "package.json"
    if marker.exists():
        return
    npm = _which("npm")
    lock_path = OIDC_DIR / ".npm-install.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if marker.exists():
                return
            proc = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=OIDC_DIR,
                capture_output=True,
                text=True,
                timeout=NPM_TIMEOUT,
                check=False,
            )
            if proc.returncode != 0 or not marker.exists():
                raise OidcProviderError(
                    f"`npm ci` in {OIDC_DIR} failed (exit {proc.returncode}):\n"
                    f"{proc.stdout}\n{proc.stderr}"
                )
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- #
# The provider process
# --------------------------------------------------------------------------- #


class OidcProvider:
    """A running ``tests/oidc/provider.mjs`` process.

    Attributes: ``issuer``, ``authorization_endpoint``, ``token_endpoint``,
    ``userinfo_endpoint``, ``jwks_endpoint``, ``end_session_endpoint``, ``port``,
    ``client_id``, ``client_secret``, ``redirect_uris`` and ``discovery`` (the whole
    ``/.well-known/openid-configuration`` document).
    """

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    jwks_endpoint: str
    end_session_endpoint: str | None
    discovery: dict[str, Any]

    def __init__(
        self,
        process: subprocess.Popen[str],
        issuer: str,
        output: collections.deque[str],
        client_id: str,
        client_secret: str,
        redirect_uris: list[str],
    ) -> None:
        self._process = process
        self._output = output
        self.issuer = issuer
        self.port = urlsplit(issuer).port
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uris = redirect_uris

    def _load_discovery(self) -> None:
        url = f"{self.issuer}/.well-known/openid-configuration"
        try:
            response = httpx.get(url, timeout=10)
            response.raise_for_status()
            doc = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcProviderError(f"discovery at {url} failed: {exc}\n{self.output}") from exc
        self.discovery = doc
        self.authorization_endpoint = doc["authorization_endpoint"]
        self.token_endpoint = doc["token_endpoint"]
        self.userinfo_endpoint = doc["userinfo_endpoint"]
        self.jwks_endpoint = doc["jwks_uri"]
        self.end_session_endpoint = doc.get("end_session_endpoint")

    @property
    def output(self) -> str:
        """What the node process printed so far (stdout and stderr, last lines)."""
        return "".join(self._output)

    @property
    def running(self) -> bool:
        return self._process.poll() is None

    def mozilla_django_oidc_settings(self) -> dict[str, Any]:
        """The Django settings mozilla-django-oidc needs to talk to this provider."""
        return {
            "OIDC_RP_CLIENT_ID": self.client_id,
            "OIDC_RP_CLIENT_SECRET": self.client_secret,
            "OIDC_RP_SIGN_ALGO": "RS256",
            "OIDC_OP_AUTHORIZATION_ENDPOINT": self.authorization_endpoint,
            "OIDC_OP_TOKEN_ENDPOINT": self.token_endpoint,
            "OIDC_OP_USER_ENDPOINT": self.userinfo_endpoint,
            "OIDC_OP_JWKS_ENDPOINT": self.jwks_endpoint,
            "OIDC_RP_SCOPES": "openid email profile",
        }

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the provider (SIGTERM, then SIGKILL). Safe to call twice."""
        proc = self._process
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        if proc.stdout is not None:
            with contextlib.suppress(OSError):
                proc.stdout.close()
        with contextlib.suppress(ValueError):
            atexit.unregister(self.stop)

    def __enter__(self) -> OidcProvider:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<OidcProvider {self.issuer} {state}>"


def _drain(
    stream: Any, output: collections.deque[str], ready: threading.Event, found: list[str]
) -> None:
    for line in iter(stream.readline, ""):
        output.append(line)
        if not ready.is_set() and line.startswith("READY "):
            found.append(line.split(None, 1)[1].strip())
            ready.set()
    ready.set()  # EOF: the process ended (or closed its output)


def start_oidc_provider(*args: Any, **kwargs: Any) -> OidcProvider:
    """:func:`_start_once`, tried a second time when the first process never said READY:
    now and then a node process hangs at start-up (a fresh one then starts at once)."""
    first = dict(kwargs, timeout=min(kwargs.get("timeout", READY_TIMEOUT), FIRST_TRY_TIMEOUT))
    try:
        return _start_once(*args, **first)
    except OidcProviderError as error:
        if "did not print READY" not in str(error):
            raise
        return _start_once(*args, **kwargs)


def _start_once(
    client_id: str,
    client_secret: str,
    redirect_uris: Iterable[str],
    port: int | None = None,
    *,
    post_logout_redirect_uris: Iterable[str] = (),
    accounts: Mapping[str, Mapping[str, Any]] | None = None,
    timeout: float = READY_TIMEOUT,
) -> OidcProvider:
    """Start the provider on 127.0.0.1 and wait until it serves discovery.

    ``port=None`` lets the provider pick a free port itself (no race); the issuer
    is ``http://127.0.0.1:<port>``. ``redirect_uris`` are matched exactly by the
    provider, e.g. ``http://acme.localhost:8000/oidc/callback/``. ``accounts``
    maps a login name to claims overriding the derived ones, e.g.
    ``{"eve@evil.test": {"email_verified": False}}``.

    Returns an :class:`OidcProvider`, also usable as a context manager.
    """
    redirect_uris = [str(u) for u in redirect_uris]
    if not redirect_uris:
        raise ValueError("redirect_uris must not be empty")
    node = _which("node")
    ensure_node_modules()

    env = dict(os.environ)
    env.update(
        PORT=str(port or 0),
        CLIENT_ID=client_id,
        CLIENT_SECRET=client_secret,
        REDIRECT_URIS=",".join(redirect_uris),
        POST_LOGOUT_REDIRECT_URIS=",".join(post_logout_redirect_uris),
        ACCOUNTS=json.dumps(dict(accounts or {})),
        NO_COLOR="1",
    )
    env.pop("NODE_OPTIONS", None)
    process = subprocess.Popen(
        [node, str(PROVIDER_SCRIPT)],
        cwd=OIDC_DIR,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    output: collections.deque[str] = collections.deque(maxlen=500)
    ready = threading.Event()
    found: list[str] = []
    threading.Thread(
        target=_drain,
        args=(process.stdout, output, ready, found),
        name=f"oidc-provider-{process.pid}",
        daemon=True,
    ).start()

    def fail(reason: str) -> OidcProviderError:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
        time.sleep(0.1)  # let the reader thread collect the last lines
        return OidcProviderError(
            f"OpenID provider ({PROVIDER_SCRIPT}) {reason}; output:\n{''.join(output)}"
        )

    if not ready.wait(timeout) or not found:
        if process.poll() is not None:
            raise fail(f"exited with code {process.returncode} before READY")
        raise fail(f"did not print READY within {timeout:g} s")

    provider = OidcProvider(process, found[0], output, client_id, client_secret, redirect_uris)
    atexit.register(provider.stop)
    try:
        provider._load_discovery()
    except OidcProviderError:
        provider.stop()
        raise
    return provider


# --------------------------------------------------------------------------- #
# Driving the dev login / consent pages
# --------------------------------------------------------------------------- #


class _FormParser(HTMLParser):
    """Collects <form>s with their action, method and named input values."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict[str, Any]] = []
        self._current: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag == "form":
            self._current = {
                "action": a.get("action", ""),
                "method": (a.get("method") or "get").lower(),
                "fields": {},
                "inputs": [],
            }
            self.forms.append(self._current)
        elif tag in ("input", "button") and self._current is not None:
            name = a.get("name")
            kind = (a.get("type") or ("submit" if tag == "button" else "text")).lower()
            self._current["inputs"].append((name, kind))
            if name and kind not in ("submit", "button", "image", "reset"):
                self._current["fields"][name] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def _forms(html: str) -> list[dict[str, Any]]:
    parser = _FormParser()
    parser.feed(html)
    parser.close()
    return parser.forms


def _origin(url: str | httpx.URL) -> tuple[str, str, int | None]:
    parts = urlsplit(str(url))
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def complete_login(
    client: httpx.Client,
    authorize_url: str | httpx.URL,
    login: str,
    password: str = "any-password",  # noqa: S107 - the dev form ignores it
    *,
    max_steps: int = 20,
) -> httpx.Response:
    """Log in as ``login`` on the provider and consent; return the redirect back.

    ``authorize_url`` is the provider URL the relying party redirected to (its
    ``/auth?...`` URL, or an ``/interaction/<uid>`` page the client already
    reached). Redirects are followed only while they stay on the provider's
    origin; the dev login form is filled with ``login`` (any password is
    accepted) and the consent form is confirmed ("Continue").

    Returns the provider's redirect response whose ``Location`` points at the
    relying party's redirect_uri (``?code=...&state=...&iss=...``, or
    ``?error=...`` if the provider refused). That redirect is NOT followed.
    Raises :class:`OidcProviderError` on an error page or an unexpected page.
    """
    op_origin = _origin(authorize_url)
    response = client.get(str(authorize_url), follow_redirects=False)
    history: list[str] = []
    for _ in range(max_steps):
        history.append(
            f"{response.request.method} {response.request.url} -> {response.status_code}"
        )
        if response.is_redirect:
            location = urljoin(str(response.request.url), response.headers["location"])
            if _origin(location) != op_origin:
                return response
            response = client.get(location, follow_redirects=False)
            continue

        body = response.text
        if response.status_code != 200:
            raise OidcProviderError(
                f"provider answered {response.status_code} at {response.request.url}:\n"
                f"{_text_of(body)}\nsteps: {history}"
            )
        form = _pick_form(_forms(body))
        if form is None:
            raise OidcProviderError(
                f"no login or consent form at {response.request.url}:\n"
                f"{_text_of(body)}\nsteps: {history}"
            )
        data = dict(form["fields"])
        if data.get("prompt") == "login" or "login" in data:
            data["login"] = login
            if "password" in data:
                data["password"] = password
        action = urljoin(str(response.request.url), form["action"] or "")
        if _origin(action) != op_origin:
            raise OidcProviderError(f"form posts off the provider to {action}")
        if form["method"] == "post":
            response = client.post(action, data=data, follow_redirects=False)
        else:
            response = client.get(action, params=data, follow_redirects=False)
    raise OidcProviderError(f"login did not finish after {max_steps} steps: {history}")


def _pick_form(forms: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The login form, else the consent form (prompt=consent), else any POST form."""
    for wanted in ("login", "consent"):
        for form in forms:
            if form["fields"].get("prompt") == wanted:
                return form
    for form in forms:
        if "login" in form["fields"]:
            return form
    for form in forms:
        if form["method"] == "post" and "abort" not in form["action"]:
            return form
    return None


def _text_of(html: str, limit: int = 2000) -> str:
    class _Text(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.parts: list[str] = []
            self._skip = 0

        def handle_starttag(self, tag: str, attrs: Any) -> None:
            if tag in ("script", "style"):
                self._skip += 1

        def handle_endtag(self, tag: str) -> None:
            if tag in ("script", "style") and self._skip:
                self._skip -= 1

        def handle_data(self, data: str) -> None:
            if not self._skip and data.strip():
                self.parts.append(data.strip())

    parser = _Text()
    parser.feed(html)
    return " ".join(parser.parts)[:limit]


# --------------------------------------------------------------------------- #
# *.localhost for httpx
# --------------------------------------------------------------------------- #


class _LoopbackTransport(httpx.HTTPTransport):
    """Connects ``localhost`` and ``*.localhost`` to 127.0.0.1.

    Browsers resolve ``*.localhost`` to loopback themselves, but glibc (so
    Python's resolver) does not: ``acme.localhost`` does not resolve on Debian.
    The Host header and the client's cookie jar keep the original name.
    """

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host == "localhost" or host.endswith(".localhost"):
            # A copy: the client keeps the original request (and URL) for cookies
            # and for resolving redirects. Headers, Host included, stay as they are.
            request = httpx.Request(
                request.method,
                request.url.copy_with(host="127.0.0.1"),
                headers=request.headers,
                stream=request.stream,
                extensions=request.extensions,
            )
        return super().handle_request(request)


def loopback_client(**kwargs: Any) -> httpx.Client:
    """An ``httpx.Client`` that reaches ``http://<tenant>.localhost:<port>/`` locally.

    Keyword arguments go to ``httpx.Client`` (``follow_redirects`` defaults to
    False, ``timeout`` to 30 s). Use it as the browser of an SSO test: one client,
    one cookie jar, for both the relying party and the provider.
    """
    kwargs.setdefault("timeout", 30.0)
    kwargs.setdefault("transport", _LoopbackTransport())
    return httpx.Client(**kwargs)
