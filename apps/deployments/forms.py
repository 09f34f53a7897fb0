from django import forms
from django.utils.translation import gettext_lazy as _

from .choices import DeploymentStatus


class DeploymentFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("", _("Any status")), *DeploymentStatus.choices],
        widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
    )
    stack = forms.CharField(
        label=_("Stack"),
        required=False,
        max_length=63,
        widget=forms.TextInput(
            attrs={"class": "form-control form-control-sm", "placeholder": _("stack name")}
        ),
    )


class LogQueryForm(forms.Form):
    """`?after=N&limit=M&format=html|json|text` of the log endpoint."""

    after = forms.IntegerField(required=False, min_value=0, max_value=2**31 - 1)
    limit = forms.IntegerField(required=False, min_value=1, max_value=5000)
    format = forms.ChoiceField(
        required=False, choices=[("html", "html"), ("json", "json"), ("text", "text")]
    )

    def clean(self):
        data = super().clean()
        data["after"] = data.get("after") or 0
        data["limit"] = data.get("limit") or 500
        data["format"] = data.get("format") or "html"
        return data

    def error_text(self) -> str:
        return "; ".join(f"{field}: {' '.join(errors)}" for field, errors in self.errors.items())
