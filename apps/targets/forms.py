from django import forms
from django.utils.translation import gettext_lazy as _

from apps.environments.models import Environment
from apps.environments.validators import parse_lines
from windflow.forms import StyledFormMixin

from .choices import TargetKind


class TargetCreateForm(StyledFormMixin, forms.Form):
    name = forms.CharField(label=_("Name"), max_length=63, help_text=_("Lower-case, e.g. web-1."))
    kind = forms.ChoiceField(
        label=_("Connection"), choices=TargetKind.choices, initial=TargetKind.SSH
    )
    host = forms.CharField(label=_("Host"), max_length=253, required=False)
    port = forms.IntegerField(
        label=_("SSH port"), min_value=1, max_value=65535, initial=22, required=False
    )
    user = forms.CharField(label=_("SSH user"), max_length=64, required=False, initial="root")
    generate_key = forms.BooleanField(
        label=_("Generate a new ed25519 key pair for me"),
        required=False,
        initial=True,
        help_text=_("WindFlow shows you the public key to add to the server."),
    )
    private_key = forms.CharField(
        label=_("Or paste a private key"),
        required=False,
        strip=False,
        widget=forms.Textarea(
            attrs={
                "rows": 4,
                "autocomplete": "off",
                "spellcheck": "false",
                "class": "font-monospace",
            }
        ),
    )
    passphrase = forms.CharField(
        label=_("Key passphrase"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
    )
    ca_pem = forms.CharField(
        label=_("TLS: CA certificate (PEM)"),
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 3, "class": "font-monospace"}),
    )
    cert_pem = forms.CharField(
        label=_("TLS: client certificate (PEM)"),
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 3, "class": "font-monospace"}),
    )
    key_pem = forms.CharField(
        label=_("TLS: client key (PEM)"),
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off", "class": "font-monospace"}),
    )
    engine = forms.ChoiceField(
        label=_("Local Docker engine"),
        required=False,
        help_text=_("An engine of the platform that its staff assigned to your organisation."),
        error_messages={
            "invalid_choice": _("This local engine is not assigned to your organisation.")
        },
    )
    socket_path = forms.ChoiceField(
        label=_("Docker socket"),
        required=False,
        help_text=_("One of the sockets the platform operator allows (WINDFLOW_LOCAL_SOCKETS)."),
        error_messages={
            "invalid_choice": _(
                "%(value)s is not an allowed Docker socket (WINDFLOW_LOCAL_SOCKETS)."
            )
        },
    )
    environments = forms.ModelMultipleChoiceField(
        label=_("Environments it serves"),
        queryset=Environment.objects.all(),
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 4}),
    )

    # The connections each field is for: the page shows only those of the chosen one
    # (data-kinds, static/js/windflow.js).
    FIELD_KINDS = {
        "host": (TargetKind.SSH, TargetKind.TCP_TLS),
        "port": (TargetKind.SSH, TargetKind.TCP_TLS),
        "user": (TargetKind.SSH,),
        "generate_key": (TargetKind.SSH,),
        "private_key": (TargetKind.SSH,),
        "passphrase": (TargetKind.SSH,),
        "ca_pem": (TargetKind.TCP_TLS,),
        "cert_pem": (TargetKind.TCP_TLS,),
        "key_pem": (TargetKind.TCP_TLS,),
        "engine": (TargetKind.LOCAL,),
        "socket_path": (TargetKind.LOCAL,),
    }

    def __init__(self, *args, **kwargs):
        from . import services

        super().__init__(*args, **kwargs)
        for name, kinds in self.FIELD_KINDS.items():
            self.fields[name].kinds = " ".join(kinds)
        # The operator's WINDFLOW_LOCAL_TARGETS decides how (and whether) a local Docker socket
        # is offered: never as free text. A `local` kind posted anyway gets the service's error
        # naming the setting.
        mode = services.local_targets_mode()
        choices = services.local_socket_choices()
        if mode == "off":
            self.fields["kind"].widget.choices = [
                choice for choice in TargetKind.choices if choice[0] != TargetKind.LOCAL
            ]
        if mode == "staff":
            self.fields["engine"].choices = [("", "---------"), *choices]
            if len(choices) == 1:
                self.fields["engine"].initial = choices[0][0]
            del self.fields["socket_path"]
        elif mode == "all":
            self.fields["socket_path"].choices = choices
            self.fields["socket_path"].initial = choices[0][0] if choices else ""
            del self.fields["engine"]
        else:
            del self.fields["engine"]
            del self.fields["socket_path"]

    def service_fields(self) -> dict:
        data = dict(self.cleaned_data)
        data["port"] = data.get("port") or 22
        if data.get("private_key", "").strip():
            data["generate_key"] = False
        return data


class ConfirmHostKeyForm(StyledFormMixin, forms.Form):
    fingerprint = forms.CharField(widget=forms.HiddenInput)


class TargetEditForm(StyledFormMixin, forms.Form):
    labels = forms.CharField(
        label=_("Labels"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "class": "font-monospace"}),
        help_text=_("One key=value per line, e.g. region=eu-west."),
    )
    environments = forms.ModelMultipleChoiceField(
        label=_("Environments it serves"),
        queryset=Environment.objects.all(),
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 4}),
    )

    def clean_labels(self):
        return parse_lines(self.cleaned_data["labels"], any_name=True)
