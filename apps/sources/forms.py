from django import forms
from django.utils.translation import gettext_lazy as _

from apps.environments.models import Environment
from apps.targets.models import Target
from windflow.forms import StyledFormMixin

from .choices import GitAuth
from .models import GitSource


def compose_files_field() -> forms.CharField:
    return forms.CharField(
        label=_("Compose files"),
        max_length=2000,
        required=False,
        help_text=_("In order, separated by commas, like docker compose -f (empty: compose.yaml)."),
    )


class PlaceForm(StyledFormMixin, forms.Form):
    """Name, environment and server of a new stack."""

    name = forms.CharField(
        label=_("Name"),
        max_length=63,
        help_text=_("The compose project name on the server: lowercase, digits, - and _."),
    )
    environment = forms.ModelChoiceField(label=_("Environment"), queryset=Environment.objects.all())
    target = forms.ModelChoiceField(label=_("Server"), queryset=Target.objects.all())


class GitSourceForm(StyledFormMixin, forms.Form):
    """What a stack follows in a Git repository, and how WindFlow reads it."""

    url = forms.CharField(
        label=_("Repository URL"),
        max_length=500,
        help_text=_("https://host/owner/repo.git, or git@host:owner/repo.git for a deploy key."),
    )
    ref = forms.CharField(label=_("Branch, tag or commit"), max_length=255, initial="main")
    subfolder = forms.CharField(
        label=_("Subfolder"),
        max_length=255,
        required=False,
        help_text=_("The project's folder inside the repository (empty: its root)."),
    )
    compose_files = compose_files_field()
    auth = forms.ChoiceField(
        label=_("Authentication"),
        choices=GitAuth.choices,
        initial=GitAuth.NONE,
        widget=forms.RadioSelect,
    )
    token_secret = forms.ChoiceField(
        label=_("Secret holding the token"),
        required=False,
        help_text=_("An access token with read access, kept as a secret (Secrets page)."),
    )
    poll_interval = forms.IntegerField(
        label=_("Look for new commits every (s)"),
        min_value=0,
        initial=0,
        required=False,
        help_text=_("0: never (webhooks or Fetch now)."),
    )

    def __init__(self, *args, secret_names=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["token_secret"].choices = [("", "—")] + [(n, n) for n in secret_names]
        self.fields["auth"].widget.attrs["class"] = "form-check-input"

    def service_fields(self) -> dict:
        data = dict(self.cleaned_data)
        data["poll_interval"] = data.get("poll_interval") or 0
        return data


class GitStackForm(PlaceForm, GitSourceForm):
    """A new stack that follows a Git repository."""

    field_order = ["name", "environment", "target", *GitSource.CHOSEN_FIELDS]


class UploadForm(StyledFormMixin, forms.Form):
    """A project archive: a new stack, or a new revision of an existing one."""

    name = forms.CharField(
        label=_("Stack name"),
        max_length=63,
        help_text=_("An existing stack gets a new revision; another name creates the stack."),
    )
    environment = forms.ModelChoiceField(
        label=_("Environment"),
        queryset=Environment.objects.all(),
        required=False,
        help_text=_("Only to create the stack."),
    )
    target = forms.ModelChoiceField(
        label=_("Server"),
        queryset=Target.objects.all(),
        required=False,
        help_text=_("Only to create the stack."),
    )
    archive = forms.FileField(
        label=_("Project archive"),
        help_text=_(".tar.gz, .tgz or .zip of the project folder (compose file, Dockerfiles...)."),
        widget=forms.ClearableFileInput(attrs={"accept": ".tar.gz,.tgz,.tar,.zip"}),
    )
    subfolder = forms.CharField(label=_("Subfolder"), max_length=255, required=False)
    compose_files = compose_files_field()
    message = forms.CharField(label=_("Message"), max_length=200, required=False)
