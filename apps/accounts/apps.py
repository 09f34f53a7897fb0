from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    # allauth's own section (e-mail addresses) is titled "Accounts": ours must differ.
    verbose_name = _("People and access")

    def ready(self):
        from . import schema, signals  # noqa: F401  (OpenAPI security schemes; revocation)
