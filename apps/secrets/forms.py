from django import forms
from django.utils.translation import gettext_lazy as _

from apps.environments.models import Environment
from windflow.forms import StyledFormMixin


def value_field(label) -> forms.CharField:
    """A secret value: not stripped (whitespace may matter), never autocompleted."""
    return forms.CharField(
        label=label,
        strip=False,
        widget=forms.Textarea(
            attrs={
                "rows": 3,
                "autocomplete": "off",
                "spellcheck": "false",
                "class": "font-monospace",
            }
        ),
        help_text=_("Write-only: nobody can read it back here or through the API."),
    )


class SecretCreateForm(StyledFormMixin, forms.Form):
    name = forms.CharField(
        label=_("Name"), max_length=128, help_text=_("Upper-case identifier, e.g. DB_PASSWORD.")
    )
    value = value_field(_("Value"))
    environment = forms.ModelChoiceField(
        label=_("Scope"),
        queryset=Environment.objects.all(),
        required=False,
        empty_label=_("Whole organisation"),
        to_field_name="slug",
    )
    description = forms.CharField(label=_("Description"), max_length=300, required=False)


class SecretRotateForm(StyledFormMixin, forms.Form):
    value = value_field(_("New value"))
