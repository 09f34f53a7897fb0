"""Asking for a stack to be stopped, started, restarted or removed: the request side. Each
request is a StackAction, queued here; the worker side (acting through the driver, recording
the outcome on the StackAction and publishing it) is :func:`apps.stacks.runtime.run_control`,
called by :func:`apps.stacks.tasks.control_stack`."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from apps.accounts.models import Membership
from apps.audit import services as audit
from apps.deployments.services import require_deploy
from apps.stacks.services import active_deployments
from windflow.errors import Conflict, NotFound, ServiceError

from . import runtime
from .models import Stack, StackAction
from .tasks import control_stack

RECENT_ACTIONS = 5  # what the stack's page shows


def request_control(
    actor: Membership | None, stack: Stack, action: str, service: str | None = None
) -> StackAction:
    """Ask the worker to stop / start / restart the stack (or one `service` of it), or to
    remove it from its server (containers and networks; volumes are kept). Needs the right
    to deploy the stack; refused while a deployment of it is queued or running. Returns the
    queued StackAction, on which the worker records the outcome."""
    if actor is not None:
        require_deploy(actor, stack)
    if action not in runtime.ACTIONS:
        raise ServiceError(
            _("Unknown action %(action)s: use stop, start, restart or remove.")
            % {"action": action},
            field="action",
            code="unknown_action",
        )
    service = (service or "").strip() or None
    if service is not None:
        if action == "remove":
            raise ServiceError(
                _("Remove acts on the whole stack, not on one service."), field="service"
            )
        if service not in runtime.known_services(stack):
            raise ServiceError(
                _("%(stack)s has no service named %(service)s.")
                % {"stack": stack.name, "service": service},
                field="service",
                code="unknown_service",
            )
    with transaction.atomic():
        # The stack row serialises this against deployment requests.
        Stack.objects.select_for_update().filter(pk=stack.pk).first()
        if active_deployments(stack).exists():
            raise Conflict(
                _(
                    "A deployment of %(stack)s is queued or running: wait for it to finish "
                    "or cancel it first."
                )
                % {"stack": stack.name},
                code="deployment_active",
            )
        requested = StackAction.objects.create(
            stack=stack,
            action=action,
            service=service or "",
            requested_by=actor.user if actor is not None else None,
        )
        audit.record(
            f"stack.{action}",
            obj=stack,
            changes={"service": service, "server": stack.target.name, "request": requested.pk},
            actor=actor,
        )
        from windflow.workers import send_on_commit

        send_on_commit(control_stack, requested.pk)
    return requested


def recent_actions(stack: Stack, limit: int = RECENT_ACTIONS):
    """The stack's latest stop / start / restart / remove requests, newest first."""
    return stack.actions.all()[:limit]


def get_action(stack: Stack, action_id) -> StackAction:
    """One of `stack`'s actions (the stack was reached through its access helper); NotFound
    for any other id."""
    found = (
        StackAction.objects.filter(stack=stack, pk=action_id).first()
        if str(action_id).isascii() and str(action_id).isdigit()
        else None
    )
    if found is None:
        raise NotFound()
    return found
