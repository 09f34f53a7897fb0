from django.apps import AppConfig


class StacksConfig(AppConfig):
    name = "apps.stacks"
    verbose_name = "Stacks"
