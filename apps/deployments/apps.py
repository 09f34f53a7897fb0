from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    name = "apps.deployments"
    verbose_name = "Deployments"

    def ready(self) -> None:
        # Connects tasks.start_next to journal.finished in every process (web, worker,
        # scheduler): a finished deployment wakes the next queued one.
        from . import tasks  # noqa: F401
