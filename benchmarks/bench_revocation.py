"""Revocation: how long after a revocation the old credential is refused.

Target (issue 9): a revocation takes effect within 1 s. The worst case over every kind and
repetition is the figure.

    .venv/bin/python benchmarks/bench_revocation.py [--repeat 5]

Set-up: an organisation through the real services; for each measurement a fresh member and
their credentials (a write personal access token, a JWT pair from the real token service, and
a signed-in session in the session store); uvicorn (`--workers 2`, as in the Procfile) as
a subprocess, so requests spread over two processes that share only PostgreSQL and Redis;
throwaway PostgreSQL and Redis unless DATABASE_URL / REDIS_URL are set.

Each measurement:
1. Two client threads send requests with the old credential back to back, each on a fresh
   connection (spread over both server processes), from before the revocation to 1.5 s
   after it. The credential is first used until it is accepted, so the request cache (token,
   membership, JWT family) holds it: the case that used to last 30 s.
2. This process revokes, the way the kind says (a service, or the ORM write the Django admin
   makes). t0 is when that call returned: the change is committed.
3. Latency: from t0 to the end of the first refused response after which no request started
   later was accepted. A request accepted after t0 would mean a stale cache; one accepted
   after the latency would mean a stale refill, and counts in the latency.

Kinds: new password (JWT, session), deactivation (personal token, JWT, session), membership
deleted by a queryset as the admin's delete does (personal token, JWT, session), member
removed by the service (personal token), demotion to viewer (a JWT on an admin-only route),
personal token revoked (service) and its revoked time set in the admin (ORM save), refresh
token reuse (the family's access token).

Prints one line per kind (worst and median over the repetitions) and a PASS/FAIL line for the
worst, writes benchmarks/results/bench_revocation-*.json. Exit code: 0 PASS, 1 FAIL, 2 error.
"""

from __future__ import annotations

import http.client
import json
import secrets
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field

from support import harness
from support.harness import HOST, say

NAME = "bench_revocation"
TARGET_S = 1.0
REPEAT = 5
CLIENT_THREADS = 2
AFTER_S = 1.5  # how long the clients go on after the revocation
PASSWORD = "bench-password-1"  # noqa: S105 - a throwaway account


# ----------------------------------------------------------------------------- HTTP client


def request(port: int, host: str, method: str, path: str, headers: dict, body=None):
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        data = json.dumps(body).encode() if body is not None else None
        all_headers = {"Host": f"{host}:{port}", "Accept": "application/json", **headers}
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=all_headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@dataclass
class Probe:
    """One credential used one way: `accepted(status)` says whether it still works."""

    label: str
    path: str
    headers: dict
    ok: int = 200

    def send(self, port: int, host: str) -> int:
        return request(port, host, "GET", self.path, self.headers)[0]


@dataclass
class Sample:
    probe: str
    start: float
    end: float
    accepted: bool


@dataclass
class Measurement:
    kind: str
    probe: str
    latency_s: float
    accepted_after_t0: int
    requests: int
    refused_at_end: bool


@dataclass
class Hammer:
    """Client threads sending every probe in turn until stopped."""

    port: int
    host: str
    probes: list[Probe]
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self):
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(i,)) for i in range(CLIENT_THREADS)
        ]

    def _run(self, index: int) -> None:
        n = index
        while not self._stop.is_set():
            probe = self.probes[n % len(self.probes)]
            n += 1
            start = time.perf_counter()
            try:
                status = probe.send(self.port, self.host)
            except OSError as exc:
                with self._lock:
                    self.errors.append(str(exc))
                continue
            end = time.perf_counter()
            with self._lock:
                self.samples.append(Sample(probe.label, start, end, status == probe.ok))

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        for thread in self._threads:
            thread.join(15)


def latency(samples: list[Sample], t0: float) -> tuple[float, int, bool]:
    """(seconds from t0 until the credential stayed refused, requests accepted after t0,
    whether the last request was refused)."""
    ordered = sorted(samples, key=lambda s: s.start)
    after = [s for s in ordered if s.start >= t0]
    if not after:
        raise RuntimeError("no request was sent after the revocation")
    accepted_after = [s for s in after if s.accepted]
    last_accepted_start = max((s.start for s in accepted_after), default=t0)
    refused = [s for s in after if not s.accepted and s.start >= last_accepted_start]
    if not refused:
        return float("inf"), len(accepted_after), False
    return min(s.end for s in refused) - t0, len(accepted_after), not ordered[-1].accepted


# ------------------------------------------------------------------------------ the world


class World:
    def __init__(self, port: int, services: harness.Services):
        from apps.accounts.models import Membership, User
        from apps.tenants.services import create_organization

        suffix = secrets.token_hex(3)
        self.port = port
        self.services = services
        owner = User.objects.create_user(f"bench-{suffix}@bench.test", PASSWORD)
        self.organization = create_organization(
            name=f"Bench {suffix}", slug=f"bench-{suffix}", owner=owner
        )
        self.owner = Membership.objects.get(user=owner, organization=self.organization)
        self.host = f"{self.organization.slug}.localhost"
        self.users = [owner]

    def member(self, role: str = "developer"):
        from apps.accounts.models import Membership, User

        user = User.objects.create_user(f"m-{secrets.token_hex(4)}@bench.test", PASSWORD)
        self.users.append(user)
        return Membership.objects.create(user=user, organization=self.organization, role=role)

    def credentials(self, membership) -> dict:
        from importlib import import_module

        from django.conf import settings
        from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

        from apps.accounts import services

        _token, pat = services.create_api_token(membership, name="bench", scope="write")
        pair = services.issue_token_pair(membership)
        session = import_module(settings.SESSION_ENGINE).SessionStore()
        session[SESSION_KEY] = str(membership.user.pk)
        session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
        session[HASH_SESSION_KEY] = membership.user.get_session_auth_hash()
        session.create()
        return {
            "pat": pat,
            "access": pair["access"],
            "refresh": pair["refresh"],
            "cookie": f"{settings.SESSION_COOKIE_NAME}={session.session_key}",
        }

    def probes(self, credentials: dict, which: list[str], path: str = "/api/v1/me/"):
        headers = {
            "pat": {"Authorization": f"Bearer {credentials['pat']}"},
            "jwt": {"Authorization": f"Bearer {credentials['access']}"},
            "session": {"Cookie": credentials["cookie"]},
        }
        return [Probe(name, path, headers[name]) for name in which]

    def warm(self, probes: list[Probe]) -> None:
        """Use each credential until accepted (the caches now hold it) on both workers."""
        for probe in probes:
            for _ in range(4):
                status = probe.send(self.port, self.host)
                if status != probe.ok:
                    raise RuntimeError(f"{probe.label}: {status} before the revocation")

    def close(self) -> None:
        from django.db import connection

        from apps.accounts.models import User
        from apps.tenants.services import delete_organization

        if not self.services.external_database:  # a private database: dropped with it
            return
        connection.set_schema_to_public()
        delete_organization(self.organization)
        User.objects.filter(pk__in=[u.pk for u in self.users]).delete()


# ------------------------------------------------------------------------------ the kinds


def kind_password(world: World):
    membership = world.member()
    creds = world.credentials(membership)

    def revoke():
        user = membership.user
        user.set_password("another-bench-password-2")
        user.save()

    return world.probes(creds, ["jwt", "session"]), revoke


def kind_deactivation(world: World):
    membership = world.member()
    creds = world.credentials(membership)

    def revoke():
        user = membership.user
        user.is_active = False
        user.save()  # what the admin's change form does

    return world.probes(creds, ["pat", "jwt", "session"]), revoke


def kind_membership_queryset(world: World):
    from apps.accounts.models import Membership

    membership = world.member()
    creds = world.credentials(membership)

    def revoke():
        # The admin's delete view and its bulk action both end in a queryset delete.
        Membership.objects.filter(pk=membership.pk).delete()

    return world.probes(creds, ["pat", "jwt", "session"]), revoke


def kind_member_removed(world: World):
    from apps.accounts import services

    membership = world.member()
    creds = world.credentials(membership)
    return world.probes(creds, ["pat"]), lambda: services.remove_member(world.owner, membership)


def kind_demotion(world: World):
    from apps.accounts import services

    membership = world.member("admin")
    creds = world.credentials(membership)
    probes = world.probes(creds, ["jwt", "pat"], path="/api/v1/invitations/")  # admins only
    return probes, lambda: services.change_role(world.owner, membership, "viewer")


def kind_token_revoked(world: World):
    from apps.accounts import services
    from apps.accounts.models import ApiToken

    membership = world.member()
    creds = world.credentials(membership)
    token = ApiToken.objects.get(user=membership.user)
    return world.probes(creds, ["pat"]), lambda: services.revoke_api_token(membership, token)


def kind_token_admin(world: World):
    from django.utils import timezone

    from apps.accounts.models import ApiToken

    membership = world.member()
    creds = world.credentials(membership)
    token = ApiToken.objects.get(user=membership.user)

    def revoke():
        token.revoked_at = timezone.now()
        token.save()  # the admin's change form

    return world.probes(creds, ["pat"]), revoke


def kind_refresh_reuse(world: World):
    membership = world.member()
    creds = world.credentials(membership)
    body = {"refresh": creds["refresh"]}
    status, _ = request(world.port, world.host, "POST", "/api/v1/auth/token/refresh/", {}, body)
    if status != 200:
        raise RuntimeError(f"first refresh answered {status}")

    def revoke():
        status, _ = request(world.port, world.host, "POST", "/api/v1/auth/token/refresh/", {}, body)
        if status != 401:
            raise RuntimeError(f"a reused refresh token answered {status}")

    return world.probes(creds, ["jwt"]), revoke


KINDS = {
    "new password": kind_password,
    "deactivation": kind_deactivation,
    "membership deleted (queryset, as the admin)": kind_membership_queryset,
    "member removed (service)": kind_member_removed,
    "demoted to viewer": kind_demotion,
    "personal token revoked (service)": kind_token_revoked,
    "personal token revoked (admin save)": kind_token_admin,
    "refresh token reused": kind_refresh_reuse,
}


def measure(world: World, kind: str) -> list[Measurement]:
    probes, revoke = KINDS[kind](world)
    world.warm(probes)
    with Hammer(world.port, world.host, probes) as hammer:
        time.sleep(0.2)  # requests in flight when the change lands
        revoke()
        t0 = time.perf_counter()
        time.sleep(AFTER_S)
    if hammer.errors:
        say(f"{kind}: {len(hammer.errors)} client errors, e.g. {hammer.errors[0]}")
    results = []
    for probe in probes:
        samples = [s for s in hammer.samples if s.probe == probe.label]
        seconds, accepted_after, refused_at_end = latency(samples, t0)
        results.append(
            Measurement(kind, probe.label, seconds, accepted_after, len(samples), refused_at_end)
        )
    return results


def run(services: harness.Services) -> int:
    repeat = REPEAT
    if "--repeat" in sys.argv:
        repeat = int(sys.argv[sys.argv.index("--repeat") + 1])
    harness.setup_django(services)
    from devtools import free_port

    port = free_port()
    server = None
    world = None
    try:
        world = World(port, services)
        server = harness.start_web(services, port, workers=2)
        background = harness.wait_for_quiet()
        measurements: list[Measurement] = []
        for kind in KINDS:
            for _ in range(repeat):
                measurements.extend(measure(world, kind))
            mine = [m for m in measurements if m.kind == kind]
            worst = max(m.latency_s for m in mine)
            median = statistics.median(m.latency_s for m in mine)
            stale = sum(m.accepted_after_t0 for m in mine)
            probes = ", ".join(sorted({m.probe for m in mine}))
            say(
                f"{kind:<44} worst {worst * 1000:7.1f} ms, median {median * 1000:6.1f} ms "
                f"({probes}; {sum(m.requests for m in mine)} requests, "
                f"{stale} accepted after the change)"
            )
    finally:
        if server is not None:
            server.stop()
        if world is not None:
            world.close()
    worst = max(measurements, key=lambda m: m.latency_s)
    all_refused = all(m.refused_at_end for m in measurements)
    check = harness.verdict(
        f"worst revocation delay ({worst.kind}, {worst.probe})",
        worst.latency_s * 1000,
        TARGET_S * 1000,
        "ms",
    )
    passed = check.passed and all_refused
    print(check.line if all_refused else "FAIL: a credential worked again after being refused")
    if background > harness.NOISY_SHARE:
        print(f"WARNING: other processes used {background * 100:.0f}% of the machine")
    path = harness.save_result(
        NAME,
        {
            "target_s": TARGET_S,
            "repeat": repeat,
            "client_threads": CLIENT_THREADS,
            "worst_s": round(worst.latency_s, 4),
            "worst_kind": worst.kind,
            "background_busy_share": round(background, 3),
            "measurements": [m.__dict__ for m in measurements],
            "passed": passed,
        },
    )
    say(f"result saved to {path.relative_to(harness.ROOT)}")
    return 0 if passed else 1


def main() -> int:
    return harness.main(NAME, run)


if __name__ == "__main__":
    sys.exit(main())
