from django.apps import AppConfig


class WindFlowConfig(AppConfig):
    """The project package is an app too: shared template tags and management commands."""

    name = "windflow"
    verbose_name = "WindFlow"
