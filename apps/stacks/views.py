from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import OuterRef, Subquery
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _

from apps.accounts import permissions
from apps.deployments.models import Deployment
from apps.environments.models import Environment
from apps.environments.validators import format_lines, parse_variables
from apps.sources.models import GitSource
from windflow.engine.compose import Problem
from windflow.errors import Forbidden, ServiceError
from windflow.views import (
    ObjectDeleteView,
    ObjectListView,
    ObjectView,
    OrganizationView,
    apply_service_error,
    apply_validation_error,
    redirect_after_post,
    wants_partial,
)

from . import services
from .choices import SourceKind
from .filtersets import StackFilterSet
from .forms import RevisionForm, StackForm, StackSettingsForm
from .models import Stack


class StackView(ObjectView):
    """A page about the stack that the URL's `name` names (services.get_stack_for)."""

    get_object_for = staticmethod(services.get_stack_for)
    lookup_url_kwarg = "name"


class RevisionView(StackView):
    """A page about revision `number` of a stack."""

    def get_revision(self, stack):
        return services.get_revision(stack, self.kwargs["number"])


def _secret_names(view, environment=None) -> list[str]:
    if not permissions.can(view.membership, "secret.view"):
        return []
    return services.available_secret_names(environment)


def _all_secret_names(view) -> list[str]:
    from apps.secrets.models import SecretRef

    if not permissions.can(view.membership, "secret.view"):
        return []
    return sorted(set(SecretRef.objects.order_by().values_list("name", flat=True)))


def may_deploy(membership, stack) -> bool:
    """Whether the deploy and control buttons of this stack are shown to `membership`."""
    return permissions.can_deploy_to(membership, stack.environment)


def _optional_url(name, *args) -> str:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


def _save_errors(form, exc) -> None:
    """A service refusal as form errors: every compose error on its field, with its line."""
    if isinstance(exc, services.ComposeInvalid):
        for field, messages in exc.field_messages.items():
            for message in messages:
                form.add_error(field if field in form.fields else None, message)
        return
    if isinstance(exc, ValidationError):
        apply_validation_error(form, exc)
        return
    if exc.field in form.fields:
        form.add_error(exc.field, exc.message)
    else:
        apply_service_error(form, exc)


class StackListView(ObjectListView):
    action = "stack.view"
    filterset_class = StackFilterSet
    template_name = "stacks/stack_list.html"
    partial_template_name = "stacks/htmx/stack_table.html"

    @property
    def queryset(self):
        last = Deployment.objects.filter(stack=OuterRef("pk")).order_by("-created_at", "-pk")
        return Stack.objects.select_related("environment", "target", "current_revision").annotate(
            last_status=Subquery(last.values("status")[:1]),
            last_deployment_id=Subquery(last.values("pk")[:1]),
        )

    def get_context_data(self, *, partial):
        from apps.targets.models import Target

        if partial:
            return {}
        return {"environments": Environment.objects.all(), "targets": Target.objects.all()}


class StackDetailView(StackView):
    """The stack's page; its HTMX partial is the part that changes while the page is open
    (the last deployments, and the running revision out of band)."""

    action = "stack.view"

    def get(self, request, name):
        stack = self.get_object()
        deployments = stack.deployments.select_related("revision").order_by("-created_at", "-pk")
        context = {"object": stack, "deployments": deployments[:10]}
        if wants_partial(request):
            return render(request, "stacks/htmx/stack_deployments.html", {**context, "oob": True})
        latest = stack.latest_revision
        can_deploy = may_deploy(self.membership, stack) and latest is not None
        context.update(
            latest=latest,
            source=GitSource.objects.filter(stack=stack).first(),
            failed_latest=services.failed_latest(stack, latest),
            revision_count=stack.revisions.count(),
            deploy_url=_optional_url("deployments:deployment_create") if can_deploy else "",
        )
        return render(request, "stacks/stack_detail.html", context)


class EditorView(StackView):
    """The compose editor: a full form, a live problems panel (stack_validate). A new stack
    when the URL names none."""

    action = "stack.change"
    template_name = "stacks/stack_form.html"

    def get_object(self):
        return super().get_object() if self.lookup_url_kwarg in self.kwargs else None

    def make_form(self, data=None, files=None):
        raise NotImplementedError

    def render_form(self, form, status=200):
        context = {"form": form, "object": self.stack, "latest": self.latest}
        return render(self.request, self.template_name, context, status=status)

    def get(self, request, *args, **kwargs):
        self.stack = self.get_object()
        self.latest = self.stack.latest_revision if self.stack else None
        return self.render_form(self.make_form())

    def post(self, request, *args, **kwargs):
        self.stack = self.get_object()
        self.latest = self.stack.latest_revision if self.stack else None
        form = self.make_form(request.POST, request.FILES)
        if form.is_valid():
            try:
                url = self.save(form)
            except (Forbidden, ServiceError, ValidationError) as exc:
                _save_errors(form, exc)
            else:
                return redirect_after_post(request, url)
        if getattr(form, "cleaned_data", {}).get("compose_file"):
            # Show the uploaded file in the editor, so it can be fixed there.
            form.data = form.data.copy()
            form.data["compose"] = form.cleaned_data["compose_file"]
        return self.render_form(form, status=422 if wants_partial(request) else 200)


class StackCreateView(EditorView):
    action = "stack.add"

    def make_form(self, data=None, files=None):
        return StackForm(
            data=data,
            files=files,
            secret_names=_all_secret_names(self),
            validate_url=reverse("stacks:stack_validate"),
        )

    def save(self, form):
        stack = services.create_stack(self.membership, **form.service_fields())
        messages.success(self.request, _("Created %(name)s (revision 1).") % {"name": stack.name})
        return stack.get_absolute_url()


class StackReviseView(EditorView):
    """A new revision: the editor, prefilled with the latest revision."""

    def make_form(self, data=None, files=None):
        initial = {}
        if self.latest is not None:
            initial = {
                "compose": self.latest.compose,
                "variables": format_lines(self.latest.variables),
                "secrets": list(self.latest.secrets),
            }
        return RevisionForm(
            data=data,
            files=files,
            initial=initial,
            secret_names=_secret_names(self, self.stack.environment),
            validate_url=reverse("stacks:stack_validate") + f"?stack={self.stack.name}",
        )

    def save(self, form):
        revision = services.revise_stack(
            self.membership, self.stack, **form.content(), source=services.source_of(self.latest)
        )
        messages.success(
            self.request,
            _("Saved revision %(n)d of %(name)s.") % {"n": revision.number, "name": self.stack},
        )
        return revision.get_absolute_url()


class StackValidateView(OrganizationView):
    """The live check of the editor (HTMX POST): the problems panel. It reads the database
    for the environment and the secret names only, so it answers in a few milliseconds."""

    action = "stack.change"

    def required_action(self, request):
        """A revision of a named stack (?stack= or the form's `stack`) needs stack.change;
        the check of a stack not created yet, stack.add."""
        query = getattr(request, "GET", {})
        named = query.get("stack") or getattr(request, "POST", {}).get("stack")
        return self.action if named else "stack.add"

    def post(self, request):
        data = request.POST
        stack = None
        stack_name = request.GET.get("stack") or data.get("stack")
        if stack_name:
            stack = services.get_stack_for(self.membership, stack_name, "stack.change")
            environment, project, target = stack.environment, stack.name, stack.target
        else:
            environment = target = None
            if (data.get("environment") or "").isdigit():
                environment = Environment.objects.filter(pk=int(data["environment"])).first()
            if (data.get("target") or "").isdigit():
                from apps.targets.models import Target

                target = Target.objects.filter(pk=int(data["target"])).first()
            project = (data.get("name") or "").strip()
        problems = []
        try:
            variables = parse_variables(data.get("variables", ""))
        except ValidationError as exc:
            variables = {}
            problems = [
                Problem("error", message, code="variables-invalid", path="variables")
                for message in exc.messages
            ]
        secrets = [name for name in data.getlist("secrets") if name]
        compose = data.get("compose", "")
        analysis = None
        if compose.strip():
            analysis = services.check_compose(
                compose,
                variables=variables,
                secrets=secrets,
                environment=environment,
                project=project,
                actor=self.membership,
                target=target,
            )
            problems.extend(analysis.problems)
        context = {
            "problems": [p.as_dict() for p in problems],
            "errors": sum(1 for p in problems if p.severity == "error"),
            "services": analysis.services if analysis else [],
            "empty": not compose.strip(),
            "environment": environment,
        }
        return render(request, "stacks/htmx/problems.html", context)


class StackSettingsView(StackView):
    action = "stack.change"
    template_name = "stacks/stack_settings.html"

    def get(self, request, name, form=None):
        stack = self.get_object()
        form = form or StackSettingsForm(instance=stack)
        return render(request, self.template_name, {"form": form, "object": stack})

    def post(self, request, name):
        stack = self.get_object()
        form = StackSettingsForm(request.POST, instance=Stack.objects.get(pk=stack.pk))
        if form.is_valid():
            try:
                services.update_stack(self.membership, stack, **form.settings())
            except (Forbidden, ServiceError) as exc:
                _save_errors(form, exc)
            else:
                messages.success(request, _("Saved %(name)s.") % {"name": stack.name})
                return redirect_after_post(request, stack.get_absolute_url())
        stack.refresh_from_db()
        return render(
            request,
            self.template_name,
            {"form": form, "object": stack},
            status=422 if wants_partial(request) else 200,
        )


class StackDeleteView(StackView, ObjectDeleteView):
    action = "stack.delete"

    def delete(self, obj):
        services.delete_stack(self.membership, obj)

    def success_url(self):
        return reverse("stacks:stack_list")


class RevisionListView(StackView):
    action = "stack.view"

    def get(self, request, name):
        stack = self.get_object()
        page = Paginator(stack.revisions.order_by("-number"), 25).get_page(request.GET.get("page"))
        return render(
            request,
            "stacks/revision_list.html",
            {
                "object": stack,
                "page": page,
                "succeeded": services.succeeded_revision_ids(stack),
                "rollback_targets": services.rollback_targets(stack)
                if may_deploy(self.membership, stack)
                else set(),
                "latest_number": stack.revisions.order_by("-number")
                .values_list("number", flat=True)
                .first(),
            },
        )


class RevisionDetailView(RevisionView):
    action = "stack.view"

    def get(self, request, name, number):
        stack = self.get_object()
        revision = self.get_revision(stack)
        once_succeeded = revision.pk in services.succeeded_revision_ids(stack)
        previous = stack.revisions.filter(number__lt=revision.number).order_by("-number").first()
        context = {
            "object": stack,
            "revision": revision,
            "variables": sorted(revision.variables.items()),
            "once_succeeded": once_succeeded,
            "can_rollback": once_succeeded and may_deploy(self.membership, stack),
            "previous": previous,
            # Project files added, removed, modified since the previous revision (none for a
            # pasted compose text).
            "files": services.changed_files(previous, revision)
            if revision.source_kind != SourceKind.INLINE
            else None,
            "is_latest": not stack.revisions.filter(number__gt=revision.number).exists(),
        }
        return render(request, "stacks/revision_detail.html", context)


class RevisionDiffView(RevisionView):
    action = "stack.view"

    def get(self, request, name, number):
        stack = self.get_object()
        revision = self.get_revision(stack)
        error = ""
        try:
            old, new = services.revision_pair(
                stack, request.GET.get("from"), request.GET.get("to") or revision.number
            )
        except ServiceError as exc:
            error = exc.message
            old, new = services.revision_pair(stack, None, revision.number)
        context = {
            "object": stack,
            "revision": revision,
            "old": old,
            "new": new,
            "diff": services.diff_revisions(old, new),
            "numbers": list(stack.revisions.order_by("-number").values_list("number", flat=True)),
            "error": error,
        }
        return render(request, "stacks/revision_diff.html", context, status=400 if error else 200)


class RevisionRollbackView(RevisionView):
    """Deploy an earlier revision that once succeeded, then follow it on its page."""

    action = "stack.view"
    method_actions = {"post": "stack.deploy"}

    def post(self, request, name, number):
        from apps.deployments.services import rollback_to

        stack = self.get_object()
        revision = self.get_revision(stack)
        try:
            deployment = rollback_to(self.membership, stack, revision)
        except ServiceError as exc:
            messages.error(request, exc.message)
            return redirect_after_post(request, revision.get_absolute_url())
        messages.info(request, _("Rolling back to revision %(n)d.") % {"n": revision.number})
        url = _optional_url("deployments:deployment_detail", deployment.pk)
        return redirect_after_post(request, url or stack.get_absolute_url())
