"""Deployments, the request side: asking for one, cancelling, rolling back, resuming, and
reading the log.

Queueing (and waking the next queued deployment) is in :mod:`apps.deployments.tasks`; running
a deployment (the worker side) in :mod:`apps.deployments.runner`; what a running deployment
writes (log lines, service steps, statuses, finishing) in :mod:`apps.deployments.journal`.
"""

from __future__ import annotations

import logging

from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts import permissions
from apps.accounts.models import Membership
from apps.audit import services as audit
from apps.environments.policy import CODE as POLICY_REFUSED
from apps.environments.policy import record_refusal
from apps.stacks.models import Stack, StackRevision
from apps.stacks.services import check_compose
from apps.tenants import index as operator_index
from windflow.errors import Conflict, ServiceError

from .choices import ACTIVE_STATUSES, DeploymentKind, DeploymentStatus, LogLevel
from .journal import announce_cancel, append_log, finish, lock_stack, publish_status
from .models import Deployment

LOG_PAGE_SIZE = 500
logger = logging.getLogger(__name__)


# --- Access -------------------------------------------------------------------------------


def require_deploy(actor: Membership, stack: Stack, deployment: Deployment | None = None) -> None:
    """Deploying, rolling back, cancelling and controlling a stack all need the right to
    deploy to its environment (protected ones: operator, or a developer with a grant); acting
    on an earlier deployment also needs that right in the environment it went to."""
    permissions.require_deploy_to(actor, stack.environment)
    if deployment is not None and deployment.environment_id != stack.environment_id:
        permissions.require_deploy_to(actor, deployment.environment)


def visible_deployments(actor: Membership | None, queryset=None):
    """The organisation's deployments that `actor` may see (`queryset`: loaded as the caller
    needs them; by default with their stack, revision, target and environment)."""
    if queryset is None:
        queryset = Deployment.objects.select_related("stack", "revision", "target", "environment")
    return permissions.visible(actor, queryset, "deployment.view")


def get_deployment_for(
    actor: Membership | None, pk, action="deployment.view", *, queryset=None
) -> Deployment:
    """Deployment `pk`, for `action` on it: NotFound when `actor` cannot see it (missing,
    another organisation's), Forbidden when their role does not allow `action` (protected
    environments need more: the services ask `require_deploy`)."""
    return permissions.get_visible(actor, visible_deployments(actor, queryset), action, pk=pk)


# --- Requests -----------------------------------------------------------------------------


def require_policy_allows(actor: Membership, stack: Stack, revision: StackRevision) -> None:
    """Refuse at once what the worker would refuse at the start: a host-level feature that the
    compose policy does not let `actor` deploy there (the worker checks again, as the policy
    or the role may change while the deployment waits)."""
    analysis = check_compose(
        revision.compose,
        variables=revision.variables,
        secrets=revision.secrets,
        environment=stack.environment,
        project=stack.project,
        actor=actor,
        target=stack.target,
    )
    refused = [problem for problem in analysis.errors if problem.code == POLICY_REFUSED]
    if refused:
        record_refusal(actor, refused, stack=stack.name)
        first = refused[0]
        where = _("Line %(line)d: ") % {"line": first.line} if first.line else ""
        raise ServiceError(f"{where}{first.message}", code="policy_refused")


def request_deployment(
    actor: Membership | None,
    stack: Stack,
    revision: StackRevision | None = None,
    *,
    kind: str = DeploymentKind.DEPLOY,
    resumed_from: Deployment | None = None,
    approval: bool = False,
    why: str = "",
) -> Deployment:
    """Queue a deployment of `revision` (default: the latest) of `stack` to its target and
    environment. It runs when no other deployment of the stack runs on that target.

    With `approval` (a push to an environment whose Git policy asks for one), it awaits an
    approval instead: nothing runs until someone who may deploy there approves it
    (`approve_deployment`); they are notified. `why` says what asked (for the audit trail
    and the notification), e.g. "push abc1234 to main"."""
    if actor is not None:
        require_deploy(actor, stack)
    revision = revision or stack.latest_revision
    if revision is None:
        raise ServiceError(_("This stack has no revision to deploy yet."), code="no_revision")
    if revision.stack_id != stack.pk:
        raise ServiceError(_("This revision belongs to another stack."), field="revision")
    if actor is not None:
        require_policy_allows(actor, stack, revision)
    from .tasks import run_deployment

    with transaction.atomic():
        # The stack row serialises numbering between concurrent requests.
        lock_stack(stack.pk)
        number = (stack.deployments.aggregate(n=Max("number"))["n"] or 0) + 1
        deployment = Deployment.objects.create(
            stack=stack,
            number=number,
            revision=revision,
            target_id=stack.target_id,
            environment_id=stack.environment_id,
            kind=kind,
            resumed_from=resumed_from,
            triggered_by=actor.user if actor else None,
            status=DeploymentStatus.AWAITING_APPROVAL if approval else DeploymentStatus.QUEUED,
        )
        changes = {
            "stack": stack.name,
            "revision": revision.number,
            "kind": kind,
            "target": stack.target.name,
            "environment": stack.environment.name,
        }
        if approval:
            changes["approval_required"] = True
        if why:
            changes["why"] = why
        audit.record("deployment.request", obj=deployment, changes=changes, actor=actor)
        if approval:
            append_log(deployment, _("Waiting for an approval: %(why)s") % {"why": why or "-"})
            notify_approvers(deployment, why=why)
            return deployment
        operator_index.deployment_changed(deployment, new=True)
        waiting = _active_before(deployment)
        if waiting:
            append_log(
                deployment,
                _("Queued behind %(n)d other deployment(s) of this stack.") % {"n": waiting},
            )
        from windflow.workers import send_on_commit

        # Redis away: the deployment stays queued and requeue_forgotten sends it later.
        send_on_commit(run_deployment, deployment.pk, required=False)
    return deployment


# --- Approvals --------------------------------------------------------------------------------


def approvers(environment) -> list:
    """The users who may approve a deployment to `environment`: the organisation's members
    who may deploy there (role, protection, grants: permissions.can_deploy_to)."""
    tenant = getattr(connection, "tenant", None)
    members = Membership.objects.select_related("user").filter(
        organization_id=getattr(tenant, "pk", None), user__is_active=True
    )
    return [m.user for m in members.order_by("pk") if permissions.can_deploy_to(m, environment)]


def notify_approvers(deployment: Deployment, *, why: str = "") -> None:
    """Tell everyone who may approve `deployment` that it waits for them (the bell, live)."""
    from apps.notifications.services import notify

    def text() -> str:  # in the recipient's language
        written = _("%(stack)s #%(n)d awaits an approval to deploy to %(environment)s") % {
            "stack": deployment.stack.name,
            "n": deployment.pk,
            "environment": deployment.environment.name,
        }
        return f"{written} ({why})" if why else written

    notify(
        approvers(deployment.environment),
        verb="deployment.awaiting_approval",
        text=text,
        url=deployment.get_absolute_url(),
        stack=deployment.stack,
    )


def _decide(actor: Membership | None, deployment: Deployment) -> Deployment:
    """The deployment, locked, if it still awaits an approval that `actor` may give (None:
    WindFlow itself, e.g. a newer push superseding it)."""
    if actor is not None:
        require_deploy(actor, deployment.stack, deployment)
    lock_stack(deployment.stack_id)
    deployment = Deployment.objects.select_for_update().get(pk=deployment.pk)
    if not deployment.awaits_approval:
        raise Conflict(
            _("This deployment does not await an approval (%(status)s).")
            % {"status": deployment.get_status_display()},
            code="not_awaiting_approval",
        )
    return deployment


def approve_deployment(actor: Membership, deployment: Deployment) -> Deployment:
    """Let a deployment that awaited an approval run: it is queued as if `actor` had asked
    for it (their role is the one the compose policy checks, and they hear how it ends)."""
    require_deploy(actor, deployment.stack, deployment)
    require_policy_allows(actor, deployment.stack, deployment.revision)
    from .tasks import run_deployment

    with transaction.atomic():
        deployment = _decide(actor, deployment)
        deployment.status = DeploymentStatus.QUEUED
        deployment.triggered_by = actor.user
        deployment.decided_by, deployment.decided_at = actor.user, timezone.now()
        deployment.save(update_fields=["status", "triggered_by", "decided_by", "decided_at"])
        audit.record("deployment.approve", obj=deployment, actor=actor)
        append_log(deployment, _("Approved by %(who)s.") % {"who": actor.user.email})
        operator_index.deployment_changed(deployment, new=True)
        from windflow.workers import send_on_commit

        send_on_commit(run_deployment, deployment.pk, required=False)
    publish_status(deployment)
    return deployment


def reject_deployment(
    actor: Membership | None, deployment: Deployment, reason: str = ""
) -> Deployment:
    """Refuse a deployment that awaited an approval: it ends cancelled, never having run.
    `actor` None: WindFlow itself (`reason` says why, e.g. a newer push superseded it)."""
    reason = (reason or "").strip()[:300]
    with transaction.atomic():
        deployment = _decide(actor, deployment)
        deployment.status = DeploymentStatus.CANCELLED
        deployment.decided_by = actor.user if actor else None
        deployment.decided_at = deployment.finished_at = timezone.now()
        if actor is None:
            deployment.reason = reason
        elif reason:
            who = actor.user.email
            text = _("Rejected by %(who)s: %(reason)s")
            deployment.reason = text % {"who": who, "reason": reason}
        else:
            deployment.reason = _("Rejected by %(who)s.") % {"who": actor.user.email}
        deployment.reason = deployment.reason[:500]
        deployment.save(
            update_fields=["status", "decided_by", "decided_at", "finished_at", "reason"]
        )
        audit.record(
            "deployment.reject",
            obj=deployment,
            changes={"reason": reason} if reason else None,
            actor=actor,
        )
        append_log(deployment, deployment.reason, level=LogLevel.WARNING)
    publish_status(deployment)
    return deployment


def _active_before(deployment: Deployment) -> int:
    return (
        Deployment.objects.filter(
            stack_id=deployment.stack_id,
            target_id=deployment.target_id,
            status__in=ACTIVE_STATUSES,
        )
        .exclude(pk=deployment.pk)
        .count()
    )


def rollback_to(actor: Membership, stack: Stack, revision: StackRevision) -> Deployment:
    """Deploy an earlier revision again; only one that once succeeded is a rollback target."""
    if not revision.deployments.filter(status=DeploymentStatus.SUCCEEDED).exists():
        raise ServiceError(
            _("Revision %(n)d never deployed successfully: pick a revision that did.")
            % {"n": revision.number},
            field="revision",
            code="not_a_good_revision",
        )
    return request_deployment(actor, stack, revision, kind=DeploymentKind.ROLLBACK)


def resume_deployment(actor: Membership, deployment: Deployment) -> Deployment:
    """Run a failed or cancelled deployment's revision again (deploys converge: what is
    already in place is kept)."""
    if actor is not None:
        require_deploy(actor, deployment.stack, deployment)
    if deployment.is_active:
        raise Conflict(_("This deployment has not finished."), code="deployment_active")
    return request_deployment(
        actor,
        deployment.stack,
        deployment.revision,
        kind=DeploymentKind.RESUME,
        resumed_from=deployment,
    )


def cancel_deployment(actor: Membership | None, deployment: Deployment) -> Deployment:
    """A queued deployment is cancelled at once; a running one hears of it at once (and
    reads it before each step that changes the server, so that nothing new starts), stops
    at its next step and cleans up after itself."""
    if actor is not None:
        require_deploy(actor, deployment.stack, deployment)
    if deployment.awaits_approval:  # cancelling a request that no one approved: a rejection
        return reject_deployment(actor, deployment)
    with transaction.atomic():
        lock_stack(deployment.stack_id)
        deployment = Deployment.objects.select_for_update().get(pk=deployment.pk)
        if deployment.is_finished:
            raise Conflict(
                _("This deployment has already finished (%(status)s).")
                % {"status": deployment.get_status_display()},
                code="deployment_finished",
            )
        if deployment.cancel_requested_at is None:
            deployment.cancel_requested_at = timezone.now()
            deployment.save(update_fields=["cancel_requested_at"])
            audit.record("deployment.cancel", obj=deployment, actor=actor)
        if deployment.status == DeploymentStatus.QUEUED:
            finish(deployment, DeploymentStatus.CANCELLED, _("Cancelled before it started."))
        else:
            append_log(deployment, _("Cancellation requested."), level=LogLevel.WARNING)
            announce_cancel(deployment)
    return deployment


def log_page(deployment: Deployment, *, after: int = 0, limit: int = LOG_PAGE_SIZE) -> list:
    """Log lines after sequence number `after`, oldest first."""
    limit = max(1, min(limit, 5000))
    return list(deployment.lines.filter(seq__gt=after).order_by("seq")[:limit])


def log_window(deployment: Deployment, *, after: int = 0, limit: int = LOG_PAGE_SIZE) -> dict:
    """One page of the log for a reader who follows it (the page's JSON, the API, the
    streamed and websocket logs): the lines after `after` as dicts, where to go on from
    (`next_after`), and whether the deployment had finished when `deployment` was read
    (read before the lines, so every line written before the end is in)."""
    lines = log_page(deployment, after=after, limit=limit)
    return {
        "lines": [line.as_dict() for line in lines],
        "next_after": lines[-1].seq if lines else after,
        "finished": deployment.is_finished,
    }
