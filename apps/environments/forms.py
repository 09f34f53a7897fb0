from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from windflow.forms import StyledFormMixin

from .models import Environment
from .validators import format_dotenv, parse_dotenv


class EnvironmentForm(StyledFormMixin, forms.ModelForm):
    variables_text = forms.CharField(
        label=_("Variables"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 5, "class": "font-monospace", "spellcheck": "false"}),
        help_text=_("One NAME=value per line. Secrets belong in the secrets store, not here."),
    )

    class Meta:
        model = Environment
        fields = ["name", "kind", "protected", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, can_protect: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["variables_text"].initial = format_dotenv(self.instance.variables)
        if not can_protect:
            self.fields["protected"].disabled = True
            self.fields["protected"].help_text = _("Only admins change protection.")

    def validate_unique(self):
        """Uniqueness is the service's business (it also guards races)."""

    def clean_variables_text(self):
        try:
            return parse_dotenv(self.cleaned_data["variables_text"])
        except ValidationError as exc:
            raise ValidationError(exc.messages) from exc

    def service_fields(self) -> dict:
        data = {name: self.cleaned_data[name] for name in self.Meta.fields}
        data["variables"] = self.cleaned_data["variables_text"]
        return data


class GrantForm(StyledFormMixin, forms.Form):
    email = forms.EmailField(label=_("Member's email"))
