from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from apps.environments.models import Environment
from apps.environments.validators import parse_variables
from apps.targets.models import Target
from windflow.errors import ServiceError
from windflow.forms import StyledFormMixin

from . import services
from .models import Stack

MAX_UPLOAD = 1024 * 1024


def _editor(rows=22):
    return forms.Textarea(
        attrs={
            "rows": rows,
            "class": "font-monospace compose-editor",
            "spellcheck": "false",
            "autocomplete": "off",
            "autocapitalize": "off",
            "wrap": "off",
        }
    )


class RevisionForm(StyledFormMixin, forms.Form):
    """The content of a revision: compose file (typed or uploaded), variables, secrets."""

    compose = forms.CharField(
        label=_("Compose file"),
        required=False,
        strip=False,
        widget=_editor(),
        help_text=_("docker-compose.yml. Use ${NAME} for variables and secrets."),
    )
    compose_file = forms.FileField(
        label=_("Or upload a compose file"),
        required=False,
        help_text=_("YAML, at most 1 MiB. An uploaded file replaces the text above."),
    )
    variables = forms.CharField(
        label=_("Variables"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "class": "font-monospace", "spellcheck": "false"}),
        help_text=_(
            "One NAME=value per line; they override the environment's. Values are shown to "
            "every member: put passwords in secrets."
        ),
    )
    secrets = forms.MultipleChoiceField(
        label=_("Secrets"),
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 5}),
        help_text=_("Secrets this stack may use as ${NAME}; their values never leave the worker."),
    )
    message = forms.CharField(
        label=_("Message"),
        required=False,
        max_length=200,
        help_text=_("What changed, for the revision history."),
    )

    def __init__(self, *args, secret_names=(), validate_url: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.set_secret_choices(secret_names)
        if validate_url:
            self.live_check(validate_url)

    def live_check(self, url: str) -> None:
        """The editor checks the file as it is typed: each field posts the whole form to the
        validation partial, which replaces the problems panel."""
        triggers = {
            # `input`, not `keyup`: a pasted or dropped file is checked at once too.
            "compose": "load, input changed delay:400ms, change",
            "variables": "input changed delay:600ms, change",
            "secrets": "change",
            "environment": "change",
            "target": "change",
        }
        for name, trigger in triggers.items():
            if name in self.fields:
                self.fields[name].widget.attrs.update(
                    {
                        "hx-post": url,
                        "hx-trigger": trigger,
                        "hx-target": "#problems",
                        "hx-include": "closest form",
                        "hx-swap": "innerHTML",
                        # A check already on its way finishes (aborting it would log an error
                        # in the console); only the newest of those waiting runs after it.
                        "hx-sync": "closest form:queue last",
                    }
                )

    def set_secret_choices(self, names) -> None:
        selected = set(self.initial.get("secrets") or ())
        if self.is_bound:
            selected |= set(self.data.getlist("secrets") if hasattr(self.data, "getlist") else ())
        # A name no longer available stays selectable, so the check can say it is missing.
        self.fields["secrets"].choices = [(n, n) for n in sorted(set(names) | selected)]

    def clean_compose_file(self):
        upload = self.cleaned_data.get("compose_file")
        if not upload:
            return None
        if upload.size > MAX_UPLOAD:
            raise ValidationError(_("The file is larger than 1 MiB."))
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValidationError(_("The file is not UTF-8 text.")) from exc
        if "\x00" in text:
            raise ValidationError(_("The file contains NUL characters: it is not a text file."))
        return text

    def clean_variables(self):
        return parse_variables(self.cleaned_data.get("variables") or "")

    def clean(self):
        cleaned = super().clean()
        uploaded = cleaned.get("compose_file")
        if uploaded is not None:
            cleaned["compose"] = uploaded
        if "compose_file" not in self.errors and not (cleaned.get("compose") or "").strip():
            self.add_error("compose", _("Paste a compose file or upload one."))
        if cleaned.get("compose") is not None:
            cleaned["compose"] = services.normalise_compose(cleaned["compose"])
        return cleaned

    def content(self) -> dict:
        return {
            "compose": self.cleaned_data["compose"],
            "variables": self.cleaned_data["variables"],
            "secrets": self.cleaned_data["secrets"],
            "message": self.cleaned_data["message"],
        }


class StackSettingsForm(StyledFormMixin, forms.ModelForm):
    environment = forms.ModelChoiceField(label=_("Environment"), queryset=Environment.objects.all())
    target = forms.ModelChoiceField(label=_("Server"), queryset=Target.objects.all())
    registry_credentials = forms.CharField(
        label=_("Registry credentials"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "class": "font-monospace"}),
        help_text=_(
            "One login per line: registry, user name and the name of the secret holding the "
            "password or token, e.g. ghcr.io deploy-bot GHCR_TOKEN."
        ),
    )

    class Meta:
        model = Stack
        fields = list(services.SETTINGS_FIELDS)
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def validate_unique(self):
        """The service decides."""

    def _post_clean(self):
        """The service applies and validates the settings; the instance stays untouched."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound and self.instance.pk:
            self.initial["registry_credentials"] = services.format_registry_credentials(
                self.instance.registry_credentials
            )

    def clean_registry_credentials(self):
        try:
            return services.parse_registry_credentials(self.cleaned_data["registry_credentials"])
        except ServiceError as exc:
            raise ValidationError(exc.message) from exc

    def settings(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


class StackForm(RevisionForm):
    """A new stack: where it runs, its settings and its first revision."""

    name = forms.CharField(
        label=_("Name"),
        max_length=63,
        help_text=_("The compose project name on the server: lowercase, digits, - and _."),
    )
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    environment = forms.ModelChoiceField(label=_("Environment"), queryset=Environment.objects.all())
    target = forms.ModelChoiceField(label=_("Server"), queryset=Target.objects.all())
    auto_rollback = forms.BooleanField(
        label=_("Roll back automatically"),
        required=False,
        initial=True,
        help_text=_("When a deployment fails, restore the last revision that succeeded."),
    )
    health_timeout = forms.IntegerField(
        label=_("Health timeout (s)"), min_value=5, max_value=3600, initial=120
    )
    grace_period = forms.IntegerField(
        label=_("Grace period (s)"), min_value=0, max_value=600, initial=10
    )

    field_order = [
        "name",
        "description",
        "environment",
        "target",
        "compose",
        "compose_file",
        "variables",
        "secrets",
        "message",
        "auto_rollback",
        "health_timeout",
        "grace_period",
    ]

    def service_fields(self) -> dict:
        data = self.content()
        for name in (
            "name",
            "description",
            "environment",
            "target",
            "auto_rollback",
            "health_timeout",
            "grace_period",
        ):
            data[name] = self.cleaned_data[name]
        return data
