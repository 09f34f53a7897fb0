from django.contrib import messages
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _

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
from .forms import SecretCreateForm, SecretRotateForm
from .models import SecretRef


class SecretView(ObjectView):
    """A page about the secret that the URL's `pk` names (services.get_secret_for)."""

    get_object_for = staticmethod(services.get_secret_for)


class SecretListView(ObjectListView):
    action = "secret.view"
    queryset = SecretRef.objects.select_related("environment")
    template_name = "secrets/secret_list.html"
    partial_template_name = "secrets/htmx/secret_table.html"


class SecretCreateView(ObjectFormView):
    action = "secret.add"
    form_class = SecretCreateForm
    template_name = "secrets/secret_create.html"
    secret_fields = ("value",)

    def save(self, form):
        return services.create_secret(self.membership, **form.cleaned_data)

    def success_message(self, obj, created):
        return _("Secret %(name)s stored.") % {"name": obj.name}


class SecretDetailView(SecretView):
    """Name, scope and version history; the rotate form for those who may change it."""

    action = "secret.view"
    method_actions = {"post": "secret.change"}

    def get(self, request, pk, form=None):
        secret = self.get_object()
        context = {
            "object": secret,
            "versions": services.versions(secret)[:50],
            "form": form or SecretRotateForm(),
        }
        return render(request, "secrets/secret_detail.html", context)

    def post(self, request, pk):
        secret = self.get_object()  # for secret.change (method_actions)
        form = SecretRotateForm(request.POST)
        if form.is_valid():
            try:
                secret = services.rotate_secret(self.membership, secret, form.cleaned_data["value"])
            except (Forbidden, ServiceError) as exc:
                apply_service_error(form, exc)
            else:
                messages.success(
                    request,
                    _("%(name)s rotated to version %(v)d.")
                    % {"name": secret.name, "v": secret.version},
                )
                return redirect_after_post(request, secret.get_absolute_url())
        return self.get(request, pk, form=SecretRotateForm())


class SecretDeleteView(SecretView, ObjectDeleteView):
    action = "secret.delete"

    def delete(self, obj):
        services.delete_secret(self.membership, obj)

    def success_url(self):
        return reverse("secrets:secret_list")
