"""The worker side of a deployment: resolve, plan, hand the plan to the target's driver,
record what it reports, gate on health, and restore the last good revision on failure.

Whatever happens, a deployment that this module starts ends finished (succeeded, failed,
rolled back or cancelled), never "running": every path goes through `finish`. A worker
killed outright leaves a stale heartbeat instead, which `reap_stale` (run by the scheduler
every few seconds) turns into a failed, resumable deployment whose diagnosis lists the
containers it left. A PostgreSQL or Redis blip is ridden out: writes are retried
(apps.deployments.journal), publishing is best-effort.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.environments import policy
from apps.secrets import redaction as secret_redaction
from apps.secrets import services as secrets
from apps.sources.sync import revision_project
from apps.stacks.models import StackRevision
from apps.stacks.services import ComposeInvalid
from apps.targets.connect import ServerUnavailable, connect, is_platform_engine, stack_files
from windflow.engine.compose.analyse import analyse
from windflow.engine.diagnose import Diagnosis, diagnose_error, make
from windflow.engine.drivers import (
    Cancelled,
    CancelToken,
    DeployFailed,
    DeployOptions,
    Driver,
    Event,
)
from windflow.engine.errors import EngineError
from windflow.engine.labels import owner_labels
from windflow.errors import ServiceError
from windflow.resilience import Backoff, retry

from . import journal
from .choices import DeploymentStatus, LogLevel, ServicePhase
from .models import Deployment

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 1.0
# A running deployment whose heartbeat is older than this lost its worker. The heartbeat
# beats every second and rides out a database blip shorter than this; the scheduler reaps
# every windflow.scheduler.REAP_EVERY_SECONDS, so a silent deployment fails within 30 s.
STALE_AFTER_SECONDS = 20
# How long the reaper waits for a server to list what a lost deployment left.
LEFTOVERS_TIMEOUT = 5.0
STEP_TIMEOUT = 60.0  # one Docker API call (WINDFLOW_DEPLOY_STEP_TIMEOUT overrides it)
# After a failure, how long the server may take to answer before it counts as lost (then
# nothing is rolled back or removed: each try would wait a step timeout for it again).
ANSWER_TIMEOUT = 5.0
PROGRESS_EVERY = 0.5  # seconds between stored progress updates of one service


class Abort(Exception):
    """The deployment cannot go on; `diagnosis` says why (for the page and the API)."""

    def __init__(self, diagnosis: Diagnosis):
        super().__init__(diagnosis.summary)
        self.diagnosis = diagnosis


# --- Entry points ----------------------------------------------------------------------------


def run(deployment_id: int) -> None:
    """Run a queued deployment. Safe to call again for the same id (a redelivered message):
    a deployment that is running elsewhere, or finished, is left alone."""
    deployment = retry(
        lambda: journal.claim(deployment_id),
        what=f"claiming deployment {deployment_id}",
        budget=journal.WRITE_RETRY_SECONDS,
    )
    if deployment is None:
        reap_stale(Deployment.objects.filter(pk=deployment_id))
        return
    DeploymentRun(deployment).execute()


def reap_stale(queryset=None, *, stale_after: float = STALE_AFTER_SECONDS) -> int:
    """Mark failed the running deployments whose worker stopped beating (killed, machine
    lost). The diagnosis says when it was last heard of and which containers of the stack
    are on the server now, so that a resume keeps them (a deploy converges, keeping what is
    already in place) or a removal takes them down."""
    queryset = Deployment.objects.all() if queryset is None else queryset
    limit = timezone.now() - timezone.timedelta(seconds=stale_after)
    stale = queryset.filter(status=DeploymentStatus.RUNNING, heartbeat_at__lt=limit)
    count = 0
    for deployment in stale.select_related("stack", "target"):
        when = deployment.heartbeat_at.isoformat(timespec="seconds")
        found = leftovers(deployment)
        detail = _("Last sign of life of its worker: %(when)s.") % {"when": when}
        detail += "\n" + describe_leftovers(deployment, found)
        diagnosis = make(
            "worker_lost",
            _("worker lost during the deployment"),
            detail=detail,
            hint=_(
                "Resume the deployment: what is already in place is kept and the rest is "
                "finished. Or remove the stack from its server to take these containers down."
            ),
        ).as_dict()
        diagnosis["containers"] = found
        if not journal.finish(
            deployment,
            DeploymentStatus.FAILED,
            _("The worker stopped during the deployment: resume it to continue."),
            diagnosis,
        ):
            continue  # it finished by itself meanwhile
        journal.append_log(
            deployment,
            _("The worker running this deployment stopped (last sign of life %(when)s).")
            % {"when": when},
            level=LogLevel.ERROR,
        )
        journal.append_log(deployment, describe_leftovers(deployment, found), level=LogLevel.ERROR)
        count += 1
    return count


def leftovers(deployment: Deployment) -> list[dict] | None:
    """The containers of the stack's compose project on its server now (name, service, state,
    health), or None when the server cannot tell (gone, unreachable)."""
    if deployment.target is None:
        return None
    try:
        with connect(deployment.target, timeout=LEFTOVERS_TIMEOUT) as driver:
            found = driver.status(deployment.stack.project)
    except Exception as exc:  # the server is another matter: say we could not tell
        logger.warning("deployment %s: leftovers not listed (%s)", deployment.pk, exc)
        return None
    return [
        {"name": c.name, "service": c.service, "state": c.state, "health": c.health} for c in found
    ]


def describe_leftovers(deployment: Deployment, found: list[dict] | None) -> str:
    if found is None:
        return _("The containers it left could not be listed (the server did not answer).")
    if not found:
        return _("It left no container of this stack on %(target)s.") % {
            "target": deployment.target.name
        }
    listed = ", ".join(
        f"{c['name']} ({c['state']}{', ' + c['health'] if c['health'] else ''})" for c in found
    )
    return _("Containers of this stack on %(target)s now: %(list)s.") % {
        "target": deployment.target.name,
        "list": listed,
    }


def release_connection() -> None:
    """Give this thread's database connection back to the pool between writes: a worker
    runs many deployments at once, each mostly waiting on Docker, and must not hold a
    connection per deployment (nor one per heartbeat) while it waits. Inside a transaction
    (tests) the connection is kept."""
    from windflow.resilience import discard_connection

    discard_connection()


def hold_connection() -> None:
    """Take a connection again, setting the tenant's search path before any transaction
    opens (a SET made inside a transaction that rolls back would be lost). A dead pooled
    connection, or PostgreSQL restarting, is retried with backoff."""
    if not connection.in_atomic_block:
        retry(lambda: connection.cursor().close(), what="database connection", budget=45.0)


def step_timeout() -> float:
    """How long one Docker API call of a deployment may take (a frozen server fails after
    this)."""
    return float(getattr(settings, "WINDFLOW_DEPLOY_STEP_TIMEOUT", STEP_TIMEOUT))


def describe_made(target_name: str, made: dict) -> str:
    """What a deployment created on a server that stopped answering, for its log."""
    names = [container["name"] for container in made.get("containers") or []]
    networks = list(made.get("networks") or [])
    if not names and not networks:
        return _("It left nothing of its own on %(server)s.") % {"server": target_name}
    parts = []
    if names:
        parts.append(_("containers %(names)s") % {"names": ", ".join(names)})
    if networks:
        parts.append(_("networks %(names)s") % {"names": ", ".join(networks)})
    return _("Left on %(server)s, which could not be reached to remove them: %(what)s.") % {
        "server": target_name,
        "what": "; ".join(parts),
    }


def clean_leftovers(target) -> int:
    """At WindFlow's next contact with `target` (a connection test that reached it): remove
    what deployments left there when it stopped answering in the middle of a first deploy
    (their diagnosis's ``left``, still ``pending``), and say so in their log. Nothing is
    removed when the stack was deployed since (the later deployment took the project over).
    Returns how many deployments were settled."""
    pending = Deployment.objects.filter(target=target, diagnosis__left__pending=True)
    settled = 0
    for deployment in pending.select_related("stack"):
        stack = deployment.stack
        left = dict(deployment.diagnosis["left"])
        superseded = (
            stack.current_revision_id is not None
            or Deployment.objects.filter(stack=stack, pk__gt=deployment.pk).exists()
        )
        if not superseded:
            try:
                with connect(target, timeout=LEFTOVERS_TIMEOUT) as driver:
                    removed = driver.discard(
                        containers=[c["id"] for c in left.get("containers") or []],
                        networks=list(left.get("networks") or []),
                    )
            except (ServiceError, EngineError) as exc:  # not reachable after all: next time
                logger.warning("deployment %s: leftovers kept (%s)", deployment.pk, exc)
                continue
            left["removed"] = removed
            journal.append_log(
                deployment,
                _("%(server)s answers again: removed what this deployment left there: %(list)s.")
                % {"server": target.name, "list": ", ".join(removed) or "-"},
            )
        left["pending"] = False
        Deployment.objects.filter(pk=deployment.pk).update(
            diagnosis={**deployment.diagnosis, "left": left}
        )
        settled += 1
    return settled


# --- Heartbeat and cancellation ---------------------------------------------------------------


class _CancelWatch:
    """Follows, in each worker process, the cancel requests announced on Redis
    (journal.announce_cancel) and cancels at once the token of a deployment that this process
    runs. Its thread listens while the process runs deployments, and stops a moment after the
    last one ended. Redis may be away or a message lost: the heartbeat's read of the database
    every second, and the driver's before each step that changes the server, stay the
    guarantee."""

    def __init__(self) -> None:
        self.tokens: dict[str, CancelToken] = {}
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    @contextmanager
    def watching(self, key: str, token: CancelToken):
        with self.lock:
            self.tokens[key] = token
            if self.thread is None or not self.thread.is_alive():  # idle, or a forked child
                self.thread = threading.Thread(
                    target=self.listen, name="deployment-cancels", daemon=True
                )
                self.thread.start()
        try:
            yield
        finally:
            with self.lock:
                self.tokens.pop(key, None)

    def idle(self) -> bool:
        """True (and the thread is let go) when no deployment is watched any more."""
        with self.lock:
            if self.tokens:
                return False
            self.thread = None
            return True

    def deliver(self, key: bytes | str) -> None:
        key = key.decode() if isinstance(key, bytes) else str(key)
        with self.lock:
            token = self.tokens.get(key)
        if token is not None:
            token.cancel()

    def listen(self) -> None:
        from django_redis import get_redis_connection

        backoff = Backoff(ceiling=5.0)
        while not self.idle():
            pubsub = get_redis_connection("default").pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(journal.CANCEL_CHANNEL)
                backoff.succeeded()
                while not self.idle():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self.deliver(message["data"])
            except Exception as exc:  # Redis away: the heartbeat carries cancels meanwhile
                logger.warning("cancel requests not followed on Redis (%s); retrying", exc)
                backoff.failed()
            finally:
                pubsub.close()


_cancels = _CancelWatch()


class _Heartbeat(threading.Thread):
    """Beats for the deployment every second and turns a cancel request stored in the
    database (by the web process) into the engine's cancel token."""

    def __init__(self, deployment: Deployment, token: CancelToken):
        super().__init__(name=f"heartbeat-{deployment.pk}", daemon=True)
        self.deployment_id = deployment.pk
        self.schema = connection.schema_name
        self.token = token
        self.stopped = threading.Event()

    def run(self) -> None:
        from django_tenants.utils import schema_context

        try:
            with schema_context(self.schema):
                while not self.stopped.wait(HEARTBEAT_SECONDS):
                    self.beat()
        finally:
            connection.close()

    def beat(self) -> None:
        requested = None
        try:
            Deployment.objects.filter(pk=self.deployment_id).update(heartbeat_at=timezone.now())
            requested = (
                Deployment.objects.filter(pk=self.deployment_id)
                .values_list("cancel_requested_at", flat=True)
                .first()
            )
        except Exception as exc:  # a database hiccup must not kill the deployment
            from windflow.resilience import dependency_of

            if dependency_of(exc):  # PostgreSQL away: the next beat tries again
                logger.warning("heartbeat of deployment %s missed: %s", self.deployment_id, exc)
            else:
                logger.exception("heartbeat of deployment %s failed", self.deployment_id)
            return
        finally:
            release_connection()
        if requested is not None:
            self.token.cancel()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)


# --- One run -----------------------------------------------------------------------------------


@dataclass
class _Outcome:
    status: str
    reason: str = ""
    diagnosis: Diagnosis | None = None
    restored: StackRevision | None = None
    extra: dict = field(default_factory=dict)  # stored beside the diagnosis ("left")


def where(problem) -> str:
    """ " (compose.yaml line 6)" for a finding with a place, else ""."""
    if problem.file and problem.line:
        return _(" (%(file)s line %(line)d)") % {"file": problem.file, "line": problem.line}
    if problem.line:
        return _(" (line %(line)d)") % {"line": problem.line}
    if problem.file:
        return _(" (%(file)s)") % {"file": problem.file}
    return ""


# Event phases that change the server: a cancel that comes before any of them has nothing to undo.
CHANGES = frozenset({"network", "volume", "create", "start", "stop", "remove"})


class DeploymentRun:
    def __init__(self, deployment: Deployment):
        self.deployment = deployment
        self.stack = deployment.stack
        self.schema = connection.schema_name
        # Cancelled by the heartbeat, by the Redis announcement, or when the driver polls the
        # database before a step that changes the server.
        self.token = CancelToken(
            probe=lambda: journal.cancel_requested(self.schema, self.deployment.pk)
        )
        self.progress_at: dict[str, float] = {}
        self.changed = False  # the server was changed by this deployment (see CHANGES)
        # The values of the WindFlow secrets that compose secrets: name, while in scope.
        self.secret_files: dict[str, str] = {}
        # The project folder of each revision planned (its pk -> the worker's cache folder).
        self.folders: dict[int, Path] = {}

    # -- the whole run

    def execute(self) -> None:
        # The secret values in scope for the stack stay masked in every log record and every
        # stored or published text of the whole run: deploy, rollback and the outcome.
        with secret_redaction.stack_scope(self.stack):
            self._execute()

    def _execute(self) -> None:
        heartbeat = _Heartbeat(self.deployment, self.token)
        heartbeat.start()
        outcome = _Outcome(DeploymentStatus.FAILED, _("internal error"))
        try:
            with _cancels.watching(journal.cancel_key(self.schema, self.deployment.pk), self.token):
                outcome = self.deploy()
        except Exception as exc:  # never leave it running: record and move on
            logger.exception("deployment %s crashed", self.deployment.pk)
            outcome = self.crashed(exc)
        finally:
            heartbeat.stop()
            self.record_outcome(outcome)

    def crashed(self, exc: Exception) -> _Outcome:
        """An unforeseen error: failed, with a diagnosis naming it and the containers left."""
        reason = _("Internal error during the deployment (%(kind)s).") % {
            "kind": type(exc).__name__
        }
        found = leftovers(self.deployment)
        detail = describe_leftovers(self.deployment, found)
        try:
            self.log(reason, level=LogLevel.ERROR)
            self.log(detail, level=LogLevel.ERROR)
        except Exception:  # the database may be what failed; the outcome still goes in
            logger.exception("deployment %s: the crash could not be logged", self.deployment.pk)
        diagnosis = make(
            "internal_error",
            reason,
            detail=f"{type(exc).__name__}: {exc}\n{detail}",
            hint=_("Resume the deployment: what is already in place is kept."),
        )
        return _Outcome(DeploymentStatus.FAILED, reason, diagnosis)

    def deploy(self) -> _Outcome:
        deployment, stack = self.deployment, self.stack
        revision = deployment.revision
        self.log(
            _("Deploying %(stack)s revision %(revision)d to %(target)s (%(environment)s).")
            % {
                "stack": stack.name,
                "revision": revision.number,
                "target": deployment.target.name if deployment.target else "?",
                "environment": deployment.environment.name if deployment.environment else "?",
            }
        )
        try:
            # Secret values stay redacted from every log while the deployment uses them.
            with self.inputs(revision, deployment.triggered_by_id) as (plan, options):
                for service in plan.services:
                    journal.set_service(
                        deployment, service.name, phase=ServicePhase.WAITING, progress=0, message=""
                    )
                if deployment.target is None:
                    raise Abort(make("unreachable", _("the server of this stack was deleted")))
                with connect(deployment.target, timeout=step_timeout()) as driver:
                    self.check_ownership(driver)
                    # Files on the server, then builds (the driver's first step), then the
                    # containers: nothing running is touched before all of them are ready.
                    with self.revision_files(revision, plan, options):
                        outcome = self.converge(driver, plan, options, revision)
                    self.tidy_files(revision, plan, outcome)
                    return outcome
        except Abort as abort:
            self.log(abort.diagnosis.summary, level=LogLevel.ERROR)
            return _Outcome(DeploymentStatus.FAILED, abort.diagnosis.summary, abort.diagnosis)
        except ServerUnavailable as exc:
            # Not reached at all: the code says why (host key, key, Docker permission...).
            diagnosis = make(exc.code, exc.summary, hint=exc.hint)
            self.log(exc.message, level=LogLevel.ERROR)
            return _Outcome(DeploymentStatus.FAILED, exc.summary, diagnosis)
        except ServiceError as exc:
            diagnosis = make(exc.code, exc.message)
            self.log(exc.message, level=LogLevel.ERROR)
            return _Outcome(DeploymentStatus.FAILED, exc.message, diagnosis)
        except EngineError as exc:
            # The server went away mid-way, or answered something unforeseen (the driver's
            # errors keep the diagnosis of the Docker error behind them).
            diagnosis = diagnose_error(exc)
            self.log(diagnosis.summary, level=LogLevel.ERROR)
            return _Outcome(DeploymentStatus.FAILED, diagnosis.summary, diagnosis)

    def plan_for(self, revision: StackRevision, secret_values: dict[str, str], requester_id=None):
        """The plan of `revision` with the variables of this deployment (the environment's,
        the revision's, its secrets); a revision made from a project folder is analysed with
        its project (the project's .env under those variables, its env files)."""
        variables = dict(self.stack.environment.variables or {})
        variables.update(revision.variables or {})
        variables.update(secret_values)
        origin = self.project_of(revision, variables)
        analysis = analyse(revision.compose, variables, project=self.stack.project, origin=origin)
        if not analysis.ok:
            first = analysis.first_error()
            for problem in analysis.errors:
                self.log(problem.message, level=LogLevel.ERROR)
            raise Abort(
                make(
                    "compose_invalid",
                    _("the compose file is invalid%(where)s: %(message)s")
                    % {"where": where(first), "message": first.message},
                    hint=first.hint,
                )
            )
        unread = [p for p in analysis.problems if p.code == "compose-env-file-unread"]
        if origin is None and unread:  # a project's merged text pasted without its folder
            raise Abort(
                make(
                    "project_files_missing",
                    _("%(what)s, and revision %(n)d is a pasted compose file without one")
                    % {
                        "what": _("%(path)s names an env file of the project")
                        % {"path": unread[0].path},
                        "n": revision.number,
                    },
                )
            )
        self.check_policy(analysis, requester_id)
        return analysis.plan

    def project_of(self, revision: StackRevision, variables: dict):
        """The project `revision` was made from, loaded from its folder with `variables`
        (None for a pasted compose text); the folder is kept for project_options. A project
        that no longer loads (a required env file missing...) aborts the deployment."""
        try:
            found = revision_project(revision, variables)
        except ComposeInvalid as exc:
            for problem in exc.problems:
                self.log(problem.message + where(problem), level=LogLevel.ERROR)
            first = exc.problems[0]
            raise Abort(
                make(
                    "compose_invalid",
                    _("the project of revision %(n)d cannot be read%(where)s: %(message)s")
                    % {"n": revision.number, "where": where(first), "message": first.message},
                    hint=first.hint,
                )
            ) from None
        if found is None:
            return None
        self.folders[revision.pk], project = found
        return project

    def check_policy(self, analysis, requester_id) -> None:
        """The compose policy again, as it stands now (it may have changed since the save),
        for the role the requester has now: a refused host-level feature fails the
        deployment before anything is pulled or created."""
        member = policy.member_of_user(requester_id)
        refused = policy.refusals(
            member,
            analysis.host_features,
            environment=self.deployment.environment or self.stack.environment,
            target=self.deployment.target,
        )
        if refused:
            policy.record_refusal(member, refused, stack=self.stack.name)
            for problem in refused:
                self.log(problem.message, level=LogLevel.ERROR)
            first = refused[0]
            where = _(" (line %(line)d)") % {"line": first.line} if first.line else ""
            raise Abort(
                make(
                    "policy_refused",
                    _("refused by the compose policy%(where)s: %(message)s")
                    % {"where": where, "message": first.message},
                    detail="\n".join(problem.message for problem in refused),
                    hint=first.hint,
                )
            )

    def restorer_of(self, revision: StackRevision):
        """Who put `revision` in place: the requester of its last successful deployment. An
        automatic restore runs with that member's role now (the rollback puts back what they
        deployed; the requester of the failed deployment may have a lesser role)."""
        return (
            Deployment.objects.filter(
                stack=self.stack, revision=revision, status=DeploymentStatus.SUCCEEDED
            )
            .order_by("-finished_at", "-pk")
            .values_list("triggered_by_id", flat=True)
            .first()
        )

    def check_ownership(self, driver: Driver) -> None:
        """A compose project of the same name that is not this stack's (the engine's
        ownership rule: every container of it carries the stack's labels) is not deployed
        over."""
        if not driver.project_owned(self.stack.project, owner_labels(self.stack.uid)):
            raise Abort(
                make(
                    "project_taken",
                    _(
                        "a compose project named %(name)s already runs on this server and "
                        "is not this stack's"
                    )
                    % {"name": self.stack.project},
                    hint=_("Rename the stack, or remove the other project from the server."),
                )
            )

    @contextmanager
    def inputs(self, revision: StackRevision, requester_id=None):
        """The plan of `revision` and the deploy options, with the revision's secrets and the
        registry passwords resolved (and redacted from every log) for the block."""
        credentials = self.stack.registry_credentials or []
        names = set(revision.secrets or ()) | {entry["secret"] for entry in credentials}
        with secrets.resolved(sorted(names), environment=self.stack.environment) as values:
            plan = self.plan_for(
                revision, {name: values[name] for name in revision.secrets}, requester_id
            )
            registry_auth = {
                entry["registry"]: {
                    "username": entry["username"],
                    "password": values[entry["secret"]],
                }
                for entry in credentials
            }
            options = self.options(registry_auth)
            self.project_options(revision, plan, options)
            # Compose secrets: name WindFlow secrets (environment: NAME), resolved in the
            # stack's environment as ${NAME} is, and redacted the same way.
            # A name that is a variable of the stack (not a secret) gives its value.
            variables = {**(self.stack.environment.variables or {}), **(revision.variables or {})}
            wanted = {item.secret for item in plan.files if item.secret} - set(values)
            named = sorted(name for name in wanted if name not in variables)
            with secrets.resolved(named, environment=self.stack.environment) as more:
                every = {**{name: variables[name] for name in wanted - set(named)}, **values}
                every.update(more)
                self.secret_files = {
                    item.secret: every[item.secret] for item in plan.files if item.secret
                }
                try:
                    yield plan, options
                finally:
                    self.secret_files = {}

    def options(self, registry_auth: dict) -> DeployOptions:
        return DeployOptions(
            registry_auth=registry_auth,
            health_timeout=float(self.stack.health_timeout),
            grace_period=float(self.stack.grace_period),
            step_timeout=step_timeout(),
            labels=owner_labels(self.stack.uid),
            own_resources_only=is_platform_engine(self.deployment.target),
            image_repository=f"windflow/{self.stack.uid}",
            build_context_limit=int(settings.WINDFLOW_BUILD_CONTEXT_MAX_BYTES),
        )

    # -- a project: its folder, its files on the server

    def project_options(self, revision: StackRevision, plan, options: DeployOptions) -> None:
        """The project folder of `revision` (the worker's cache), when its plan builds images
        or mounts files of the project."""
        options.revision = revision.number
        needs_folder = plan.builds or any(item.source for item in plan.files)
        if not needs_folder:
            return
        folder = self.folders.get(revision.pk)
        if folder is None:
            first = (plan.builds or [None])[0]
            what = (
                _("service %(name)s is built from the project") % {"name": first.name}
                if first is not None
                else _("%(path)s is a file of the project")
                % {"path": next(item.source for item in plan.files if item.source)}
            )
            raise Abort(
                make(
                    "project_files_missing",
                    _("%(what)s, and revision %(n)d is a pasted compose file without one")
                    % {"what": what, "n": revision.number},
                )
            )
        options.project_dir = str(folder)

    @contextmanager
    def revision_files(self, revision: StackRevision, plan, options: DeployOptions):
        """The files of `revision` on the server for the block (copied now, atomically; kept
        after it for a rollback to this revision)."""
        if plan.files:
            try:
                with stack_files(self.deployment.target, str(self.stack.uid)) as store:
                    options.files_dir, options.secrets_dir = store.publish(
                        revision.number, options.project_dir, plan.files, self.secret_files
                    )
            except EngineError as exc:
                raise Abort(make("project_files", str(exc), hint=exc.hint)) from exc
            self.log(
                _("The %(count)d file(s) of revision %(n)d are on %(server)s.")
                % {
                    "count": len(plan.files),
                    "n": revision.number,
                    "server": self.deployment.target.name,
                }
            )
        yield

    def tidy_files(self, revision: StackRevision, plan, outcome: _Outcome) -> None:
        """After the deploy: the folders of old revisions pruned (the newest
        WINDFLOW_STACK_FILES_KEEP, the running one and the previous good one kept), or this
        revision's removed when it never ran (rolled back, or removed)."""
        if not plan.files or "left" in outcome.extra:
            return
        succeeded = outcome.status == DeploymentStatus.SUCCEEDED
        ran_before = Deployment.objects.filter(
            stack=self.stack, revision=revision, status=DeploymentStatus.SUCCEEDED
        ).exists()
        never_ran = (
            not succeeded
            and not ran_before
            and (outcome.restored is not None or self.stack.current_revision_id is None)
        )
        if not succeeded and not never_ran:
            return
        previous = self.stack.current_revision
        try:
            with stack_files(self.deployment.target, str(self.stack.uid)) as store:
                if never_ran:
                    store.discard(revision.number)
                    return
                protect = {revision.number}
                if previous is not None:
                    protect.add(previous.number)
                removed = store.prune(keep=int(settings.WINDFLOW_STACK_FILES_KEEP), protect=protect)
        except (ServiceError, EngineError) as exc:
            self.log(
                _("The files of old revisions were not tidied: %(error)s") % {"error": exc},
                level=LogLevel.WARNING,
            )
            return
        if removed:
            self.log(
                _("Files of old revisions removed from the server: %(list)s.")
                % {"list": ", ".join(str(n) for n in sorted(removed))}
            )

    # -- converge, then restore on failure

    def converge(
        self, driver: Driver, plan, options: DeployOptions, revision: StackRevision
    ) -> _Outcome:
        try:
            self.consume(driver.deploy(plan, options, self.token))
        except DeployFailed as failure:
            diagnosis = failure.diagnosis
            self.log(
                _("Failed: %(summary)s") % {"summary": diagnosis.summary}, level=LogLevel.ERROR
            )
            if diagnosis.detail:
                self.log(diagnosis.detail, level=LogLevel.ERROR, service=diagnosis.service or "")
            if not driver.responsive(ANSWER_TIMEOUT):
                return self.server_lost(diagnosis, failure.made)
            restored = self.restore(driver, revision, automatic=True)
            status = DeploymentStatus.ROLLED_BACK if restored else DeploymentStatus.FAILED
            return _Outcome(status, diagnosis.summary, diagnosis, restored)
        except Cancelled:
            self.log(_("Cancelled."), level=LogLevel.WARNING)
            if not self.changed:
                self.log(_("Nothing had changed on the server yet: nothing to undo."))
                return _Outcome(DeploymentStatus.CANCELLED, _("Cancelled by a member."))
            restored = self.restore(driver, revision, automatic=False)
            return _Outcome(DeploymentStatus.CANCELLED, _("Cancelled by a member."), None, restored)
        self.log(_("Every service is up and healthy."))
        return _Outcome(DeploymentStatus.SUCCEEDED)

    def server_lost(self, first: Diagnosis, made: dict) -> _Outcome:
        """The server stopped answering during the deploy: nothing is rolled back or removed
        (each try would wait for it again). The log says what this deployment left there;
        after a first deploy, WindFlow removes it at its next contact with the server."""
        server = self.deployment.target.name
        pending = bool(made["containers"] or made["networks"]) and (
            self.stack.current_revision_id is None
        )
        self.log(
            _("%(server)s stopped answering: nothing was rolled back or removed.")
            % {"server": server},
            level=LogLevel.ERROR,
        )
        self.log(describe_made(server, made), level=LogLevel.ERROR)
        if pending:
            self.log(
                _(
                    "WindFlow removes them at its next contact with %(server)s (its next "
                    "connection test), unless the stack is deployed again first."
                )
                % {"server": server},
                level=LogLevel.WARNING,
            )
        diagnosis = make(
            "server_lost",
            _("%(server)s stopped answering during the deployment") % {"server": server},
            service=first.service,
            detail=_("What failed first: %(summary)s") % {"summary": first.summary},
            hint=_(
                "Check that %(server)s is up and reachable (frozen, overloaded, or cut off "
                "from the network), then resume the deployment: what is in place is kept."
            )
            % {"server": server},
        )
        return _Outcome(
            DeploymentStatus.FAILED,
            diagnosis.summary,
            diagnosis,
            extra={"left": {**made, "pending": pending}},
        )

    def previous_good(self, revision: StackRevision) -> StackRevision | None:
        current = self.stack.current_revision
        if current is not None and current.pk != revision.pk:
            return current
        return None

    def restore(self, driver: Driver, revision: StackRevision, *, automatic: bool):
        """Put back the last good revision (automatic rollback, when the stack allows it, or
        after a cancel); with none, take down what this deployment left behind. Returns the
        restored revision, or None. Whenever the stack is left otherwise than restored or
        removed, the log says which of its containers are on the server (docs/deployments.md,
        "What a failure leaves")."""
        previous = self.previous_good(revision)
        restore_token = CancelToken()  # the restore itself is not cancellable
        if previous is None:
            if self.stack.current_revision_id is None:
                # Nothing ran before: leave nothing half-deployed.
                self.log(_("No earlier good revision: removing what this deployment started."))
                try:
                    self.consume(driver.remove(self.stack.project, cancel=restore_token))
                except EngineError as exc:
                    self.log(
                        _("What this deployment started could not be removed: %(error)s")
                        % {"error": diagnose_error(exc).summary},
                        level=LogLevel.ERROR,
                    )
                    self.say_what_is_left(driver)
            else:
                self.log(_("This revision was already running: leaving the stack as it is."))
                self.say_what_is_left(driver)
            return None
        if automatic and not self.stack.auto_rollback:
            self.log(_("Automatic rollback is off for this stack: leaving it as it is."))
            self.say_what_is_left(driver)
            return None
        self.log(
            _("Rolling back to revision %(n)d.") % {"n": previous.number},
            level=LogLevel.WARNING,
        )
        try:
            with (
                self.inputs(previous, self.restorer_of(previous)) as (plan, options),
                self.revision_files(previous, plan, options),
            ):
                self.consume(driver.deploy(plan, options, restore_token))
        except (EngineError, Abort, ServiceError) as exc:
            summary = getattr(getattr(exc, "diagnosis", None), "summary", None) or str(exc)
            self.log(
                _("The rollback to revision %(n)d failed too: %(summary)s")
                % {"n": previous.number, "summary": summary},
                level=LogLevel.ERROR,
            )
            self.say_what_is_left(driver)
            return None
        self.log(_("Revision %(n)d restored.") % {"n": previous.number})
        return previous

    def say_what_is_left(self, driver: Driver) -> None:
        """Log the stack's containers on the server now (name, state, health), for a stack
        that is left neither restored nor removed."""
        try:
            found = [
                {"name": c.name, "service": c.service, "state": c.state, "health": c.health}
                for c in driver.status(self.stack.project)
            ]
        except EngineError as exc:
            logger.warning("deployment %s: leftovers not listed (%s)", self.deployment.pk, exc)
            found = None
        self.log(describe_leftovers(self.deployment, found), level=LogLevel.WARNING)

    # -- recording

    def consume(self, events) -> None:
        for event in events:
            hold_connection()
            self.record(event)
            release_connection()

    def record(self, event: Event) -> None:
        if event.phase in CHANGES:
            self.changed = True
        if event.kind == "progress" and event.service:
            now = time.monotonic()
            if now - self.progress_at.get(event.service, 0.0) < PROGRESS_EVERY:
                return
            self.progress_at[event.service] = now
        if event.service and event.phase:
            phase = event.phase if event.phase in ServicePhase.values else ServicePhase.START
            journal.set_service(
                self.deployment,
                event.service,
                phase=phase,
                progress=event.progress,
                message=event.message,
            )
        if event.kind != "progress":
            message = event.message
            if event.service and message.startswith(f"{event.service}: "):
                message = message[len(event.service) + 2 :]  # the log shows the service already
            self.log(message, level=event.level, service=event.service or "")

    def log(self, message: str, *, level: str = LogLevel.INFO, service: str = "") -> None:
        if level not in LogLevel.values:
            level = LogLevel.INFO
        journal.append_log(self.deployment, message, level=level, service=service)

    def record_outcome(self, outcome: _Outcome) -> None:
        deployment, stack = self.deployment, self.stack
        hold_connection()
        if outcome.status == DeploymentStatus.SUCCEEDED:
            stack.current_revision = deployment.revision
            retry(
                lambda: stack.save(update_fields=["current_revision", "updated_at"]),
                what=f"current revision of stack {stack.pk}",
                budget=journal.WRITE_RETRY_SECONDS,
            )
        elif outcome.restored is not None:
            deployment.rolled_back_to = outcome.restored
            retry(
                lambda: deployment.save(update_fields=["rolled_back_to"]),
                what=f"rollback of deployment {deployment.pk}",
                budget=journal.WRITE_RETRY_SECONDS,
            )
        diagnosis = outcome.diagnosis.as_dict() if outcome.diagnosis else None
        if diagnosis is not None and outcome.extra:
            diagnosis.update(outcome.extra)
        finished = journal.finish(
            deployment,
            outcome.status,
            outcome.reason,
            diagnosis,
            send_budget=journal.SEND_RETRY_SECONDS,
        )
        if not finished:  # reaped while it went on (a long silence): say how it ended
            self.log(
                _(
                    "This deployment had been marked failed while it went on; it ended: "
                    "%(status)s. Resume it to record a new outcome."
                )
                % {"status": DeploymentStatus(outcome.status).label},
                level=LogLevel.WARNING,
            )
