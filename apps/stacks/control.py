"""Asking for a stack to be stopped, started, restarted or removed: the request side. The
worker side (acting through the driver, publishing the outcome) is
:func:`apps.stacks.runtime.run_control`, called by :func:`apps.stacks.tasks.control_stack`."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from apps.accounts.models import Membership
from apps.audit import services as audit
from apps.deployments.services import require_deploy
from apps.stacks.services import active_deployments
from windflow.errors import Conflict, ServiceError

from . import runtime
from .models import Stack
from .tasks import control_stack


def request_control(
    actor: Membership | None, stack: Stack, action: str, service: str | None = None
) -> None:
    """Ask the worker to stop / start / restart the stack (or one `service` of it), or to
    remove it from its server (containers and networks; volumes are kept). Needs the right
    to deploy the stack; refused while a deployment of it is queued or running."""
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
        audit.record(
            f"stack.{action}",
            obj=stack,
            changes={"service": service, "server": stack.target.name},
            actor=actor,
        )
        from windflow.workers import send_on_commit

        send_on_commit(control_stack, stack.pk, action, service)
