"""Deployment pages: the organisation's list, "deploy now" from a stack page, the live page
of one deployment (websocket, with polling as the fallback) and its controls."""

from django.contrib import messages
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.accounts import permissions
from apps.stacks import services as stacks
from windflow.errors import Forbidden, NotFound, ServiceError
from windflow.views import ObjectListView, ObjectView, OrganizationView, redirect_after_post

from . import journal, services
from .choices import DeploymentStatus, ServicePhase
from .forms import DeploymentFilterForm, LogQueryForm
from .models import Deployment

# The live page renders at most this many lines (the newest); the rest is one click away.
PAGE_LOG_LINES = 2000


class DeploymentView(ObjectView):
    """A page about the deployment that the URL's `pk` names (services.get_deployment_for)."""

    get_object_for = staticmethod(services.get_deployment_for)


def _stack_url(stack_name: str | None) -> str:
    if stack_name:
        return reverse("stacks:stack_detail", args=[stack_name])
    return reverse("stacks:stack_list")


def header_context(membership, deployment: Deployment) -> dict:
    """What the header (status, buttons, failure box) needs, for the page and its partial."""
    can_control = permissions.can_deploy_to(membership, deployment.stack.environment)
    return {
        "can_control": can_control,
        # "Roll back…" only where there is a good revision to go back to.
        "can_roll_back": can_control
        and deployment.is_finished
        and bool(stacks.rollback_targets(deployment.stack)),
        "stack_url": _stack_url(deployment.stack.name),
        "revisions_url": reverse("stacks:revision_list", args=[deployment.stack.name]),
    }


def live_context(deployment: Deployment, *, after: int = 0, limit: int = PAGE_LOG_LINES):
    """Services, lines after `after` and the status: what the page and its partials show."""
    trimmed = deployment.last_seq - after > limit
    if trimmed:  # show the newest lines; say how many are left out
        after = deployment.last_seq - limit
    lines = services.log_page(deployment, after=after, limit=limit)
    return {
        "deployment": deployment,
        "services": list(deployment.services.all()),
        "lines": lines,
        "hidden_lines": after if trimmed else 0,
        "last_seq": lines[-1].seq if lines else after,
    }


class DeploymentListView(ObjectListView):
    """Every deployment of the organisation, newest first; filter by status and stack."""

    action = "deployment.view"
    template_name = "deployments/deployment_list.html"
    partial_template_name = "deployments/htmx/deployment_table.html"

    def get_queryset(self):
        self.form = DeploymentFilterForm(self.request.GET or None)
        queryset = services.visible_deployments(self.membership).select_related("triggered_by")
        if self.form.is_valid():
            if self.form.cleaned_data.get("status"):
                queryset = queryset.filter(status=self.form.cleaned_data["status"])
            if self.form.cleaned_data.get("stack"):
                queryset = queryset.filter(stack__name=self.form.cleaned_data["stack"])
        return queryset

    def get_context_data(self, *, partial):
        return {"form": self.form}


@method_decorator(require_POST, name="dispatch")
class DeploymentCreateView(OrganizationView):
    """Deploy a stack (its latest revision, or `revision`): POST from the stack page."""

    action = "deployment.view"
    method_actions = {"post": "stack.deploy"}

    def post(self, request):
        name = request.POST.get("stack", "").strip()
        try:
            stack = stacks.get_stack_for(self.membership, name)
        except NotFound:
            messages.error(request, _("No stack named “%(name)s”.") % {"name": name})
            return redirect_after_post(request, _stack_url(None))
        revision = None
        raw = request.POST.get("revision", "").strip()
        if raw:
            number = int(raw) if raw.isdigit() and len(raw) < 10 else 0  # 0: no such revision
            try:
                revision = stacks.get_revision(stack, number)
            except NotFound:
                messages.error(
                    request,
                    _("%(stack)s has no revision %(n)s.") % {"stack": stack.name, "n": raw},
                )
                return redirect_after_post(request, _stack_url(stack.name))
        try:
            deployment = services.request_deployment(self.membership, stack, revision)
        except (Forbidden, ServiceError) as exc:
            messages.error(request, exc.message)
            return redirect_after_post(request, _stack_url(stack.name))
        messages.success(
            request,
            _("Deployment #%(n)d of %(stack)s queued.") % {"n": deployment.pk, "stack": stack.name},
        )
        return redirect_after_post(request, deployment.get_absolute_url())


class DeploymentDetailView(DeploymentView):
    """The live page: header, failure box, one bar per service and the log."""

    action = "deployment.view"

    def get(self, request, pk):
        deployment = self.get_object()
        context = live_context(deployment)
        context.update(header_context(self.membership, deployment))
        context["phase_labels"] = {value: str(label) for value, label in ServicePhase.choices}
        return render(request, "deployments/deployment_detail.html", context)


class DeploymentStatusView(DeploymentView):
    """The header part (status, buttons, failure box): refreshed when the deployment ends."""

    action = "deployment.view"

    def get(self, request, pk):
        deployment = self.get_object()
        context = {"deployment": deployment, **header_context(self.membership, deployment)}
        return render(request, "deployments/htmx/deployment_header.html", context)


class DeploymentLogView(DeploymentView):
    """Lines after `after` with the service bars and the status: the polling fallback of the
    live page (HTML partial), `?format=json` for scripts, `?format=text` to download."""

    action = "deployment.view"

    def get(self, request, pk):
        deployment = self.get_object()
        query = LogQueryForm(request.GET)
        if not query.is_valid():
            return JsonResponse(
                {"error": {"status": 400, "code": "invalid", "message": query.error_text()}},
                status=400,
            )
        after, fmt = query.cleaned_data["after"], query.cleaned_data["format"]
        if fmt == "text":
            lines = deployment.lines.order_by("seq").iterator()
            body = "".join(
                f"{line.created_at:%Y-%m-%d %H:%M:%S} {line.level.upper():7} "
                f"{line.service + ': ' if line.service else ''}{line.message}\n"
                for line in lines
            )
            response = HttpResponse(body, content_type="text/plain; charset=utf-8")
            response["Content-Disposition"] = (
                f'attachment; filename="{deployment.stack.name}-{deployment.pk}.log"'
            )
            return response
        if fmt == "json":
            return JsonResponse(
                {
                    **services.log_window(
                        deployment, after=after, limit=query.cleaned_data["limit"]
                    ),
                    "services": [row.as_dict() for row in deployment.services.all()],
                    "status": journal.status_event(deployment),
                }
            )
        context = live_context(deployment, after=after)
        return render(request, "deployments/htmx/log_update.html", context)


class _ControlView(DeploymentView):
    action = "deployment.view"
    method_actions = {"post": "stack.deploy"}

    def post(self, request, pk):
        deployment = self.get_object()
        try:
            target = self.control(deployment)
        except ServiceError as exc:
            messages.error(request, exc.message)
            target = deployment
        return redirect_after_post(request, target.get_absolute_url())


class DeploymentCancelView(_ControlView):
    def control(self, deployment):
        deployment = services.cancel_deployment(self.membership, deployment)
        if deployment.status == DeploymentStatus.CANCELLED:
            messages.success(self.request, _("Deployment cancelled."))
        else:
            messages.info(self.request, _("Cancelling: the deployment stops at its next step."))
        return deployment


class DeploymentResumeView(_ControlView):
    def control(self, deployment):
        resumed = services.resume_deployment(self.membership, deployment)
        messages.success(
            self.request,
            _("Resuming as deployment #%(n)d.") % {"n": resumed.pk},
        )
        return resumed


class DeploymentApproveView(_ControlView):
    """Approve a deployment that a push asked for (environments whose Git policy wants an
    approval): someone who may deploy to its environment; others get the 403 page."""

    def control(self, deployment):
        deployment = services.approve_deployment(self.membership, deployment)
        messages.success(self.request, _("Approved: the deployment is queued."))
        return deployment


class DeploymentRejectView(_ControlView):
    def control(self, deployment):
        reason = self.request.POST.get("reason", "")
        deployment = services.reject_deployment(self.membership, deployment, reason)
        messages.success(self.request, _("Rejected: the deployment will not run."))
        return deployment
