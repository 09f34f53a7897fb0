from django.apps import AppConfig


class SourcesConfig(AppConfig):
    name = "apps.sources"
    verbose_name = "Sources"

    def ready(self):
        from . import signals  # noqa: F401
