from django.apps import AppConfig


class ScaleAppConfig(AppConfig):
    """A tenant app of the scale benchmark only: one table, and (with
    WINDFLOW_BENCH_SCALE_COLUMN) a migration that adds one column to it."""

    name = "benchmarks.support.scale_app"
    label = "scale_app"
    default_auto_field = "django.db.models.BigAutoField"
