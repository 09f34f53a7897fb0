from django.contrib import messages
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _

from apps.environments.validators import format_lines
from windflow.errors import Forbidden, ServiceError
from windflow.views import (
    ObjectDeleteView,
    ObjectFormView,
    ObjectListView,
    ObjectView,
    apply_service_error,
    redirect_after_post,
)

from . import services
from .forms import TargetCreateForm, TargetEditForm
from .models import Target


class TargetView(ObjectView):
    """A page about the server that the URL's `slug` names (services.get_target_for)."""

    get_object_for = staticmethod(services.get_target_for)
    lookup_url_kwarg = "slug"


class TargetListView(ObjectListView):
    action = "target.view"
    queryset = Target.objects.prefetch_related("environments")
    template_name = "targets/target_list.html"
    partial_template_name = "targets/htmx/target_table.html"


class TargetCreateView(ObjectFormView):
    action = "target.add"
    form_class = TargetCreateForm
    template_name = "targets/target_create.html"
    secret_fields = ("private_key", "passphrase", "key_pem")

    def save(self, form):
        return services.create_target(self.membership, **form.service_fields())

    def success_message(self, obj, created):
        if obj.needs_host_key_confirmation:
            return _("%(name)s added. Confirm its host key.") % {"name": obj.name}
        return _("%(name)s added.") % {"name": obj.name}


class TargetDetailView(TargetView):
    action = "target.view"

    def get(self, request, slug):
        target = self.get_object()
        context = {
            "object": target,
            "checks": target.checks.all()[:10],
            "last_check": target.checks.first(),
            "prepare_run": target.prepare_runs.first(),
            "stacks": services.stacks_on(target),
            "engine": services.local_engine_of(target),
            "shared_engine": services.is_shared_engine(target),
        }
        return render(request, "targets/target_detail.html", context)


class TargetActionView(TargetView):
    """POST-only actions on a target: test, confirm or rescan its host key, prepare."""

    action = "target.view"

    def required_action(self, request):
        if request.method == "POST":
            verb = self.kwargs.get("verb")
            return {"check": "target.check", "prepare": "target.prepare"}.get(verb, "target.change")
        return super().required_action(request)

    def post(self, request, slug, verb):
        target = self.get_object()
        try:
            if verb == "check":
                check = services.request_check(self.membership, target)
                messages.info(
                    request,
                    _("Connectivity test: %(status)s.") % {"status": check.get_status_display()},
                )
            elif verb == "confirm-host-key":
                services.confirm_host_key(
                    self.membership, target, request.POST.get("fingerprint", "")
                )
                messages.success(request, _("Host key pinned."))
            elif verb == "rescan-host-key":
                services.rescan_host_key(self.membership, target)
                messages.info(request, _("Compare the new host key, then confirm it."))
            elif verb == "prepare":
                services.request_prepare(self.membership, target)
                messages.info(request, _("Preparing the server: follow the output below."))
            else:
                return render(request, "404.html", status=404)
        except (Forbidden, ServiceError) as exc:
            messages.error(request, exc.message)
        return redirect_after_post(request, target.get_absolute_url())


class TargetDeleteView(TargetView, ObjectDeleteView):
    action = "target.delete"

    def delete(self, obj):
        services.delete_target(self.membership, obj)

    def success_url(self):
        return reverse("targets:target_list")


class TargetContainersView(TargetView):
    """The containers on the target (an HTMX partial: the page does not wait for Docker)."""

    action = "target.view"

    def get(self, request, slug):
        target = self.get_object()
        try:
            containers, error = services.list_containers(target), ""
        except (Forbidden, ServiceError) as exc:
            containers, error = [], exc.message
        return render(
            request, "targets/htmx/containers.html", {"containers": containers, "error": error}
        )


class TargetEditView(TargetView):
    action = "target.change"
    template_name = "targets/target_edit.html"

    def get(self, request, slug, form=None):
        target = self.get_object()
        form = form or TargetEditForm(
            initial={
                "labels": format_lines(target.labels),
                "environments": target.environments.all(),
            }
        )
        return render(request, self.template_name, {"form": form, "object": target})

    def post(self, request, slug):
        target = self.get_object()
        form = TargetEditForm(request.POST)
        if form.is_valid():
            try:
                services.update_target(self.membership, target, **form.cleaned_data)
            except (Forbidden, ServiceError) as exc:
                apply_service_error(form, exc)
            else:
                messages.success(request, _("Saved %(name)s.") % {"name": target.name})
                return redirect_after_post(request, target.get_absolute_url())
        return self.get(request, slug, form=form)


class PrepareOutputView(TargetView):
    """The latest preparation's output (HTMX polling fallback for the live stream)."""

    action = "target.view"

    def get(self, request, slug):
        target = self.get_object()
        return render(
            request,
            "targets/htmx/prepare_output.html",
            {"object": target, "prepare_run": target.prepare_runs.first()},
        )
