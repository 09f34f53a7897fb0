from django import forms
from django.utils.translation import gettext_lazy as _

SUSPEND, REACTIVATE, DELETE = "suspend", "reactivate", "delete"


class LifecycleForm(forms.Form):
    """The confirmation of a lifecycle action in the admin: the organisation's address typed
    in full, and for a suspension its reason (which its members read)."""

    reason = forms.CharField(
        label=_("Reason"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Shown to its members on every page."),
    )
    confirm = forms.CharField(label=_("Type the organisation's address to confirm"), max_length=40)

    def __init__(self, *args, organization, action: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization
        if action != SUSPEND:
            del self.fields["reason"]

    def clean_confirm(self):
        typed = self.cleaned_data["confirm"].strip()
        if typed != self.organization.slug:
            raise forms.ValidationError(
                _("Type %(slug)s exactly: nothing was done.") % {"slug": self.organization.slug}
            )
        return typed
