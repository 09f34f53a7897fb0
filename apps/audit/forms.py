from django import forms
from django.utils.translation import gettext_lazy as _

from windflow.forms import StyledFormMixin


class AuditFilterForm(StyledFormMixin, forms.Form):
    actor = forms.CharField(label=_("Actor"), required=False)
    action = forms.CharField(
        label=_("Action"),
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "environment."}),
    )
    object_type = forms.CharField(label=_("Object type"), required=False)
    object_id = forms.CharField(label=_("Object id"), required=False)
    since = forms.DateTimeField(
        label=_("From"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    until = forms.DateTimeField(
        label=_("To"), required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", _("The end of the range is before its start."))
        return cleaned
