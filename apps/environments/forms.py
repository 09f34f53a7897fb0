from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from windflow.errors import ServiceError
from windflow.forms import StyledFormMixin

from .choices import PollMode
from .models import Environment
from .validators import format_lines, parse_variables


class EnvironmentForm(StyledFormMixin, forms.ModelForm):
    variables_text = forms.CharField(
        label=_("Variables"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 5, "class": "font-monospace", "spellcheck": "false"}),
        help_text=_("One NAME=value per line. Secrets belong in the secrets store, not here."),
    )

    class Meta:
        model = Environment
        fields = ["name", "kind", "protected", "description", "git_policy", "poll_mode"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, can_protect: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["variables_text"].initial = format_lines(self.instance.variables)
        # Forms and clients that predate the push policy leave it as it is (or its default).
        self.fields["poll_mode"].required = False
        if not can_protect:
            self.fields["protected"].disabled = True
            self.fields["protected"].help_text = _("Only admins change protection.")

    def validate_unique(self):
        """Uniqueness is the service's business (it also guards races)."""

    def clean_variables_text(self):
        try:
            return parse_variables(self.cleaned_data["variables_text"])
        except ValidationError as exc:
            raise ValidationError(exc.messages) from exc

    def service_fields(self) -> dict:
        data = {name: self.cleaned_data[name] for name in self.Meta.fields}
        data["variables"] = self.cleaned_data["variables_text"]
        data["poll_mode"] = data["poll_mode"] or self.instance.poll_mode or PollMode.DEPLOY
        return data


class GrantForm(StyledFormMixin, forms.Form):
    email = forms.EmailField(label=_("Member's email"))


def _style_selects(form) -> None:
    """StyledFormMixin styles the fields that exist when it runs; these are added after."""
    for field in form.fields.values():
        if isinstance(field.widget, forms.Select):
            field.widget.attrs["class"] = "form-select"


def _level_choices():
    from .policy import LEVEL_LABELS, LEVELS

    return [(level, LEVEL_LABELS[level]) for level in LEVELS]


class ComposePolicyForm(StyledFormMixin, forms.Form):
    """The organisation's compose policy: the least role for each host-level feature and
    the host directories bind mounts may use."""

    allowed_paths = forms.CharField(
        label=_("Allowed host paths"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "class": "font-monospace", "spellcheck": "false"}),
        help_text=_(
            "One absolute directory per line (e.g. /srv/apps). Bind mounts inside them need no "
            "permission. /, /etc, /proc, /sys, /dev, /root, /home, /run, /var/run, "
            "/var/lib/docker and the like can never be allowed here."
        ),
    )

    def __init__(self, *args, policy=None, editable: bool = True, **kwargs):
        from .policy import FEATURE_LABELS, organisation_rules

        super().__init__(*args, **kwargs)
        rules = organisation_rules(policy)
        fields = {}
        for feature, label in FEATURE_LABELS.items():
            fields[feature] = forms.ChoiceField(
                label=label, choices=_level_choices(), initial=rules[feature]
            )
        fields["allowed_paths"] = self.fields.pop("allowed_paths")
        fields["allowed_paths"].initial = "\n".join(policy.allowed_paths if policy else [])
        self.fields = fields
        _style_selects(self)
        if not editable:
            for field in self.fields.values():
                field.disabled = True

    def clean_allowed_paths(self):
        from .policy import clean_allowed_paths, parse_paths

        try:
            return clean_allowed_paths(parse_paths(self.cleaned_data.get("allowed_paths") or ""))
        except ServiceError as exc:
            raise ValidationError(exc.message) from exc

    def rules(self) -> dict:
        from .policy import FEATURE_LABELS

        return {feature: self.cleaned_data[feature] for feature in FEATURE_LABELS}


class EnvironmentPolicyForm(StyledFormMixin, forms.Form):
    """An environment's overrides: for each feature, its own least role, or the
    organisation's rule."""

    def __init__(self, *args, environment=None, policy=None, editable: bool = True, **kwargs):
        from .policy import FEATURE_LABELS, LEVEL_LABELS, organisation_rules

        super().__init__(*args, **kwargs)
        rules = organisation_rules(policy)
        overrides = environment.compose_overrides or {}
        for feature, label in FEATURE_LABELS.items():
            inherit = _("As the organisation: %(level)s") % {"level": LEVEL_LABELS[rules[feature]]}
            self.fields[feature] = forms.ChoiceField(
                label=label,
                required=False,
                choices=[("", inherit), *_level_choices()],
                initial=overrides.get(feature, ""),
            )
            self.fields[feature].disabled = not editable
        _style_selects(self)

    def overrides(self) -> dict:
        from .policy import FEATURE_LABELS

        return {feature: self.cleaned_data.get(feature) or None for feature in FEATURE_LABELS}
