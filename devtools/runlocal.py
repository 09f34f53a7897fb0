"""`make run`: WindFlow on a developer machine with nothing configured.

    python -m devtools.runlocal          (after `python3 devtools/bootstrap.py run`)

1. Without DATABASE_URL / REDIS_URL, start a private PostgreSQL (var/postgres)
   and Redis (var/redis) on 127.0.0.1; their ports are kept in var/services.json
   so the next run uses the same ones (defaults 54329 and 63799 when free).
2. A Docker engine for the demo organisation's `local` server: the machine's own when one
   answers on /var/run/docker.sock; otherwise, as root with dockerd installed, a private
   engine started here (socket var/docker/docker.sock, data in var/docker). Its socket is
   the only one on the WINDFLOW_LOCAL_SOCKETS allow-list given to the processes (unless
   WINDFLOW_LOCAL_SOCKETS is set). WINDFLOW_DEV_DOCKER=private asks for the private engine
   even when the machine has one; WINDFLOW_DEV_DOCKER=off for none.
   The demo's image (devtools.images.DEMO_IMAGE) is built on that engine from this
   machine's static busybox, so that the demo's `hello` stack deploys with no registry.
3. `manage.py migrate_all`, then `manage.py setup_demo` (the demo organisation gets that
   engine as a local engine: WINDFLOW_LOCAL_TARGETS=staff).
4. The Procfile's web, worker and scheduler, kept running by devtools.supervisor: a process
   that exits is started again with a backoff, and the others keep running.
5. On Ctrl-C or SIGTERM, stop the processes, then the servers that this run started
   (servers it found running are left alone). A failed start stops what it had started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from devtools.base import DevServiceError, ServiceStack, is_root, port_is_free
from devtools.dockerd import SYSTEM_SOCKET, docker_ping, find_dockerd, start_dockerd
from devtools.images import build_demo_image
from devtools.postgres import start_postgres
from devtools.redis_server import start_redis
from devtools.supervisor import Supervisor

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
STATE = VAR / "services.json"
DEFAULT_PORTS = {"postgres": 54329, "redis": 63799}
PROCESSES = ("web", "worker")  # the scheduler runs on a thread of the worker
DEV_POOL = "10.198.0.0/16"  # the private engine's networks, apart from the tests' (10.199)


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


def start_services(env: dict[str, str], stack: ServiceStack) -> None:
    """Fill DATABASE_URL / REDIS_URL in `env`, starting private servers for the
    missing ones; `stack` keeps the servers this call really started."""
    saved = load_ports()
    if not env.get("DATABASE_URL"):
        pg = stack.start(start_postgres, VAR / "postgres", pick_port("postgres", saved))
        save_ports({"postgres": pg.port})
        env["DATABASE_URL"] = pg.url
        say(f"PostgreSQL {'started' if pg.started else 'already running'}: {pg.url}")
    if not env.get("REDIS_URL"):
        redis = stack.start(start_redis, VAR / "redis", pick_port("redis", saved))
        save_ports({"redis": redis.port})
        env["REDIS_URL"] = redis.url
        say(f"Redis {'started' if redis.started else 'already running'}: {redis.url}")


def _system_engine() -> bool | None:
    """True when the machine's engine answers, False when there is none, None when it
    refuses this user."""
    try:
        return docker_ping(SYSTEM_SOCKET)
    except PermissionError:
        return None


def start_docker_engine(env: dict[str, str], stack: ServiceStack) -> None:
    """Give the demo's local server an engine, and put its socket on the allow-list."""
    if env.get("WINDFLOW_LOCAL_SOCKETS"):
        say(f"Docker sockets allowed (WINDFLOW_LOCAL_SOCKETS): {env['WINDFLOW_LOCAL_SOCKETS']}")
        return
    wanted = env.get("WINDFLOW_DEV_DOCKER", "auto")
    if wanted == "off":
        say("no Docker engine (WINDFLOW_DEV_DOCKER=off): the demo gets no local server")
        env["WINDFLOW_LOCAL_SOCKETS"] = "/nonexistent/docker.sock"
        return
    system = _system_engine()
    if system is None and not is_root():
        say(
            f"the Docker engine on {SYSTEM_SOCKET} refuses this user: the demo's local server "
            "cannot use it (add yourself to the `docker` group, log in again, then `make run`)"
        )
        env["WINDFLOW_LOCAL_SOCKETS"] = SYSTEM_SOCKET
        return
    system = bool(system)
    if system and wanted != "private":
        say(f"Docker engine: this machine's, on {SYSTEM_SOCKET}")
        env["WINDFLOW_LOCAL_SOCKETS"] = SYSTEM_SOCKET
        return
    if not is_root() or find_dockerd() is None:
        why = "dockerd is not installed" if is_root() else "only root may start one"
        say(
            f"no Docker engine on this machine and {why}: the demo's local server cannot "
            "deploy until one runs (as root: `apt-get install -y docker.io`, then `make run`)"
        )
        env["WINDFLOW_LOCAL_SOCKETS"] = SYSTEM_SOCKET
        return
    # Beside another engine, keep out of its bridge and iptables chains (isolated).
    engine = stack.start(start_dockerd, VAR / "docker", isolated=system, address_pool=DEV_POOL)
    what = "started a private Docker engine" if engine.started else "private Docker engine"
    say(
        f"{what} for the demo's local server: {engine.socket_path} "
        f"(data in {engine.data_dir}, log {engine.log_file})"
    )
    env["WINDFLOW_LOCAL_SOCKETS"] = engine.socket_path


def prepare_demo_image(env: dict[str, str]) -> None:
    """Build the demo's image on the first allowed engine that answers (the one of step 2).
    Without it the demo's `hello` stack cannot deploy: say so, and go on."""
    for path in env.get("WINDFLOW_LOCAL_SOCKETS", "").split(","):
        path = path.strip()
        if not path or not os.path.exists(path):
            continue
        try:
            image = build_demo_image(VAR / "demo", docker_host=f"unix://{path}")
        except DevServiceError as exc:
            say(f"the demo's image was not built ({exc}): the `hello` stack cannot deploy")
            return
        say(f"demo image {image} built on {path} (the `hello` stack needs no registry)")
        return


def build_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "windflow.settings.dev")
    env.setdefault("PORT", "8000")
    # Links in e-mails, invitations and the demo's banner point at the port served here.
    env.setdefault("WINDFLOW_PUBLIC_URL", f"http://localhost:{env['PORT']}")
    # Platform staff hand out local Docker engines; setup_demo gives the demo organisation
    # the engine of step 2, so that its first deploy works.
    env.setdefault("WINDFLOW_LOCAL_TARGETS", "staff")
    env.setdefault("PYTHONUNBUFFERED", "1")
    # Procfile lines call `python` and `uvicorn`: make them this interpreter's.
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bindir, env.get("PATH", "")])
    return env


def manage(env: dict[str, str], *args: str) -> None:
    say("manage.py " + " ".join(args))
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env)
    if result.returncode != 0:
        print(
            f"[runlocal] manage.py {' '.join(args)} failed (exit code {result.returncode})",
            file=sys.stderr,
            flush=True,
        )
        raise SystemExit(result.returncode)


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
    stack = ServiceStack(say)
    env = build_env()
    try:
        with stack.starting():
            start_services(env, stack)
            start_docker_engine(env, stack)
        prepare_demo_image(env)
        manage(env, "migrate_all")
        manage(env, "setup_demo")
        banner(env)
        supervisor = Supervisor(ROOT / "Procfile", PROCESSES, env=env, cwd=ROOT, say=say)
        return supervisor.run()
    except DevServiceError as exc:
        print(f"[runlocal] {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
