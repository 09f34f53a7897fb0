from django.contrib import messages
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _

from apps.accounts import permissions
from apps.accounts.models import Membership
from windflow.errors import Forbidden, ServiceError
from windflow.views import (
    ObjectDeleteView,
    ObjectFormView,
    ObjectListView,
    ObjectView,
    OrganizationView,
    apply_service_error,
    redirect_after_post,
    wants_partial,
)

from . import policy, services
from .filtersets import EnvironmentFilterSet
from .forms import ComposePolicyForm, EnvironmentForm, EnvironmentPolicyForm, GrantForm
from .models import Environment


class EnvironmentView(ObjectView):
    """A page about the environment that the URL's `slug` names
    (services.get_environment_for)."""

    get_object_for = staticmethod(services.get_environment_for)
    lookup_url_kwarg = "slug"


class EnvironmentListView(ObjectListView):
    action = "environment.view"
    queryset = Environment.objects.all()
    filterset_class = EnvironmentFilterSet
    template_name = "environments/environment_list.html"
    partial_template_name = "environments/htmx/environment_table.html"


class EnvironmentDetailView(EnvironmentView):
    action = "environment.view"

    def get(self, request, slug):
        environment = self.get_object()
        return render(
            request,
            "environments/environment_detail.html",
            {
                "object": environment,
                "grantees": services.deploy_grantees(environment),
                "grant_form": GrantForm(),
                "can_deploy": permissions.can_deploy_to(self.membership, environment),
            },
        )


class EnvironmentEditView(EnvironmentView, ObjectFormView):
    form_class = EnvironmentForm
    template_name = "environments/environment_edit.html"

    def required_action(self, request):
        self.action = "environment.change" if "slug" in self.kwargs else "environment.add"
        return self.action

    def get_form(self, data=None):
        return self.form_class(
            data=data,
            instance=self.object,
            can_protect=permissions.can(self.membership, "environment.protect"),
        )

    def save(self, form):
        if self.object is None:
            return services.create_environment(self.membership, **form.service_fields())
        return services.update_environment(self.membership, self.object, **form.service_fields())


class EnvironmentDeleteView(EnvironmentView, ObjectDeleteView):
    action = "environment.delete"

    def delete(self, obj):
        services.delete_environment(self.membership, obj)

    def success_url(self):
        return reverse("environments:environment_list")


class EnvironmentGrantView(EnvironmentView):
    """Grant or revoke one member's right to deploy to this environment."""

    action = "environment.grant"

    def post(self, request, slug):
        environment = self.get_object()
        form = GrantForm(request.POST)
        url = environment.get_absolute_url()
        if not form.is_valid():
            messages.error(request, _("Enter a member's email address."))
            return redirect_after_post(request, url)
        member = (
            Membership.objects.filter(
                organization=request.tenant, user__email__iexact=form.cleaned_data["email"]
            )
            .select_related("user")
            .first()
        )
        try:
            if member is None:
                raise ServiceError(_("No member has this email address."))
            if request.POST.get("revoke"):
                services.revoke_deploy(self.membership, environment, member)
                messages.success(
                    request, _("%(email)s can no longer deploy here.") % {"email": member.user}
                )
            else:
                services.grant_deploy(self.membership, environment, member)
                messages.success(
                    request, _("%(email)s may now deploy here.") % {"email": member.user}
                )
        except (Forbidden, ServiceError) as exc:
            messages.error(request, exc.message)
        return redirect_after_post(request, url)


class ComposePolicyView(OrganizationView):
    """The organisation's compose policy: every member reads it; owners and admins change
    it (each change audited)."""

    action = "compose_policy.view"
    method_actions = {"post": "compose_policy.change"}
    template_name = "environments/compose_policy.html"

    def render_page(self, form, status=200):
        context = {
            "form": form,
            "can_change": self.can_change,
            "environments": Environment.objects.all(),
            "labels": policy.FEATURE_LABELS,
            "level_labels": policy.LEVEL_LABELS,
        }
        return render(self.request, self.template_name, context, status=status)

    def get(self, request):
        self.can_change = permissions.can(self.membership, "compose_policy.change")
        return self.render_page(
            ComposePolicyForm(policy=policy.get_policy(), editable=self.can_change)
        )

    def post(self, request):
        self.can_change = True  # method_actions: only those who may change it get here
        form = ComposePolicyForm(request.POST, policy=policy.get_policy())
        if form.is_valid():
            try:
                policy.update_policy(
                    self.membership,
                    rules=form.rules(),
                    allowed_paths=form.cleaned_data["allowed_paths"],
                )
            except (Forbidden, ServiceError) as exc:
                apply_service_error(form, exc)
            else:
                messages.success(request, _("Saved the compose policy."))
                return redirect_after_post(request, reverse("environments:compose_policy"))
        return self.render_page(form, status=422 if wants_partial(request) else 200)


class EnvironmentPolicyView(EnvironmentView):
    """One environment's overrides of the compose policy."""

    action = "compose_policy.view"
    method_actions = {"post": "compose_policy.change"}
    template_name = "environments/environment_policy.html"

    def render_page(self, environment, form, status=200):
        context = {
            "object": environment,
            "form": form,
            "can_change": permissions.can(self.membership, "compose_policy.change"),
            "effective": [
                (policy.FEATURE_LABELS[feature], policy.LEVEL_LABELS[level], source)
                for feature, (level, source) in policy.effective_rules(environment).items()
            ],
        }
        return render(self.request, self.template_name, context, status=status)

    def get(self, request, slug):
        environment = self.get_object()
        form = EnvironmentPolicyForm(
            environment=environment,
            policy=policy.get_policy(),
            editable=permissions.can(self.membership, "compose_policy.change"),
        )
        return self.render_page(environment, form)

    def post(self, request, slug):
        environment = self.get_object()  # for compose_policy.change (method_actions)
        form = EnvironmentPolicyForm(
            request.POST, environment=environment, policy=policy.get_policy()
        )
        if form.is_valid():
            try:
                policy.set_overrides(self.membership, environment, form.overrides())
            except (Forbidden, ServiceError) as exc:
                apply_service_error(form, exc)
            else:
                messages.success(
                    request,
                    _("Saved the compose policy of %(environment)s.")
                    % {"environment": environment.name},
                )
                return redirect_after_post(
                    request, reverse("environments:environment_policy", args=[environment.slug])
                )
        return self.render_page(environment, form, status=422 if wants_partial(request) else 200)
