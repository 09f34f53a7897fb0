from django.contrib import messages
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext as _

from apps.accounts import permissions
from apps.accounts.models import Membership
from windflow.errors import ServiceError
from windflow.views import (
    ObjectDeleteView,
    ObjectFormView,
    ObjectListView,
    OrganizationView,
    redirect_after_post,
)

from . import services
from .filtersets import EnvironmentFilterSet
from .forms import EnvironmentForm, GrantForm
from .models import Environment


def _environment(view, slug):
    queryset = permissions.visible(view.membership, Environment.objects.all(), "environment.view")
    return get_object_or_404(queryset, slug=slug)


class EnvironmentListView(ObjectListView):
    action = "environment.view"
    queryset = Environment.objects.all()
    filterset_class = EnvironmentFilterSet
    template_name = "environments/environment_list.html"
    partial_template_name = "environments/htmx/environment_table.html"


class EnvironmentDetailView(OrganizationView):
    action = "environment.view"

    def get(self, request, slug):
        environment = _environment(self, slug)
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


class EnvironmentEditView(ObjectFormView):
    form_class = EnvironmentForm
    template_name = "environments/environment_edit.html"

    def dispatch(self, request, *args, **kwargs):
        self.action = "environment.change" if "slug" in kwargs else "environment.add"
        return super().dispatch(request, *args, **kwargs)

    def get_object(self):
        slug = self.kwargs.get("slug")
        return _environment(self, slug) if slug else None

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


class EnvironmentDeleteView(ObjectDeleteView):
    action = "environment.delete"

    def get_object(self):
        return _environment(self, self.kwargs["slug"])

    def delete(self, obj):
        services.delete_environment(self.membership, obj)

    def success_url(self):
        return reverse("environments:environment_list")


class EnvironmentGrantView(OrganizationView):
    """Grant or revoke one member's right to deploy to this environment."""

    action = "environment.grant"

    def post(self, request, slug):
        environment = _environment(self, slug)
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
        except ServiceError as exc:
            messages.error(request, exc.message)
        return redirect_after_post(request, url)
