"""`make run`: WindFlow on a developer machine with nothing configured.

    python -m windflow.runlocal

1. Without DATABASE_URL / REDIS_URL, start a private PostgreSQL (var/postgres)
   and Redis (var/redis) on 127.0.0.1; their ports are kept in var/services.json
   so the next run uses the same ones (defaults 54329 and 63799 when free).
2. `manage.py migrate_all`, then `manage.py setup_demo` (the demo organisation gets this
   machine's Docker engine as a local engine: WINDFLOW_LOCAL_TARGETS=staff).
3. `honcho start -f Procfile web worker scheduler` with that environment.
4. When honcho ends (Ctrl-C, SIGTERM, or a process died), stop the servers
   that this run started; servers it found running are left alone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from windflow.localservices import ServiceError, port_is_free, start_postgres, start_redis

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
STATE = VAR / "services.json"
DEFAULT_PORTS = {"postgres": 54329, "redis": 63799}
PROCESSES = ("web", "worker", "scheduler")


def say(message: str) -> None:
    print(f"[runlocal] {message}", flush=True)


def load_ports() -> dict[str, int]:
    try:
        saved = json.loads(STATE.read_text())
    except (OSError, ValueError):
        return {}
    return {name: int(port) for name, port in saved.items() if str(port).isdigit()}


def save_ports(ports: dict[str, int]) -> None:
    VAR.mkdir(parents=True, exist_ok=True)
    STATE.write_text(json.dumps(load_ports() | ports, indent=2, sort_keys=True) + "\n")


def pick_port(name: str, saved: dict[str, int]) -> int | None:
    """The remembered port, else the default one, when free; None lets the
    service choose (a server still running on its data dir keeps its port)."""
    for port in (saved.get(name), DEFAULT_PORTS[name]):
        if port and port_is_free(port):
            return port
    return None


def start_services(env: dict[str, str], started: list) -> None:
    """Fill DATABASE_URL / REDIS_URL in `env`, starting private servers for the
    missing ones; append the servers this call really started to `started`."""
    saved = load_ports()
    if not env.get("DATABASE_URL"):
        pg = start_postgres(VAR / "postgres", pick_port("postgres", saved))
        if pg.started:
            started.append(pg)
        save_ports({"postgres": pg.port})
        env["DATABASE_URL"] = pg.url
        say(f"PostgreSQL {'started' if pg.started else 'already running'}: {pg.url}")
    if not env.get("REDIS_URL"):
        redis = start_redis(VAR / "redis", pick_port("redis", saved))
        if redis.started:
            started.append(redis)
        save_ports({"redis": redis.port})
        env["REDIS_URL"] = redis.url
        say(f"Redis {'started' if redis.started else 'already running'}: {redis.url}")


def build_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "windflow.settings.dev")
    env.setdefault("PORT", "8000")
    # Platform staff hand out local Docker engines; setup_demo gives the demo organisation
    # this machine's engine, so that its first deploy works.
    env.setdefault("WINDFLOW_LOCAL_TARGETS", "staff")
    env.setdefault("PYTHONUNBUFFERED", "1")
    # Procfile lines call `python` and `uvicorn`: make them this interpreter's.
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bindir, env.get("PATH", "")])
    return env


def manage(env: dict[str, str], *args: str) -> None:
    say("manage.py " + " ".join(args))
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env)  # noqa: S603
    if result.returncode != 0:
        print(
            f"[runlocal] manage.py {' '.join(args)} failed (exit code {result.returncode})",
            file=sys.stderr,
            flush=True,
        )
        raise SystemExit(result.returncode)


def run_procfile(env: dict[str, str]) -> int:
    """Run honcho until it ends; SIGINT/SIGTERM sent to us go to honcho, which
    stops every process (Ctrl-C in a terminal reaches honcho directly too)."""
    cmd = [sys.executable, "-m", "honcho", "start", "-f", "Procfile", *PROCESSES]
    honcho = subprocess.Popen(cmd, cwd=ROOT, env=env)  # noqa: S603

    def forward(signum: int, _frame: object) -> None:
        if honcho.poll() is None:
            honcho.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return honcho.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def banner(env: dict[str, str]) -> None:
    port = env["PORT"]
    line = (
        f"WindFlow is running on http://localhost:{port} "
        f"(demo organisation: http://demo.localhost:{port})"
    )
    print(f"\n{'=' * len(line)}\n{line}\n{'=' * len(line)}\n", flush=True)


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # run the `finally` that stops our servers


def main() -> int:
    os.chdir(ROOT)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    started: list = []
    env = build_env()
    try:
        start_services(env, started)
        manage(env, "migrate_all")
        manage(env, "setup_demo")
        banner(env)
        return run_procfile(env)
    except ServiceError as exc:
        print(f"[runlocal] {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        for service in reversed(started):
            say(f"stopping {type(service).__name__} ({service.data_dir})")
            try:
                service.stop()
            except ServiceError as exc:
                print(f"[runlocal] {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
