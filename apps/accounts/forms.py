from django import forms
from django.utils.translation import gettext_lazy as _

from apps.tenants.validators import SLUG_MAX_LENGTH, validate_slug
from windflow.forms import StyledFormMixin

from .choices import Role, TokenScope


class OrganizationForm(StyledFormMixin, forms.Form):
    name = forms.CharField(label=_("Organisation name"), max_length=100)
    slug = forms.CharField(
        label=_("Address"),
        max_length=SLUG_MAX_LENGTH + 10,  # longer input reaches the validator's clear message
        validators=[validate_slug],
        help_text=_(
            "Your organisation's address, <address>.%(domain)s: lower-case letters, digits "
            "and hyphens."
        ),
    )

    def __init__(self, *args, **kwargs):
        from django.conf import settings

        super().__init__(*args, **kwargs)
        field = self.fields["slug"]
        field.help_text = field.help_text % {"domain": settings.WINDFLOW_BASE_DOMAIN}
        # Suggested from the name as it is typed (static/js/windflow.js), until edited.
        field.widget.attrs["data-slug-from"] = self["name"].auto_id

    def clean_slug(self):
        # No silent lower-casing: "Acme" is refused with the rule rather than changed.
        return self.cleaned_data["slug"].strip()


class InvitationForm(StyledFormMixin, forms.Form):
    email = forms.EmailField(label=_("Email address"))
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.DEVELOPER)

    def __init__(self, *args, roles=None, **kwargs):
        super().__init__(*args, **kwargs)
        if roles is not None:
            self.fields["role"].choices = [(r.value, r.label) for r in roles]


class RoleForm(StyledFormMixin, forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ApiTokenForm(StyledFormMixin, forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    scope = forms.ChoiceField(label=_("Scope"), choices=TokenScope.choices, initial=TokenScope.READ)
    expires_in_days = forms.IntegerField(
        label=_("Expires after (days)"),
        min_value=1,
        max_value=366,
        required=False,
        initial=90,
        help_text=_("Leave empty for a token that does not expire."),
    )


class LanguageForm(forms.Form):
    """The pages' language, from the user menu; `next` is where to go back to."""

    language = forms.ChoiceField(label=_("Language"))
    next = forms.CharField(required=False)

    def __init__(self, *args, **kwargs):
        from django.conf import settings

        super().__init__(*args, **kwargs)
        self.fields["language"].choices = settings.LANGUAGES
