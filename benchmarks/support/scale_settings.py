"""Settings of benchmarks/bench_organizations_at_scale.py only (never production): the
developer settings plus `benchmarks.support.scale_app`, a tenant app whose one-column
migration the benchmark applies to every organisation with `manage.py migrate_all`.

WINDFLOW_BENCH_SCALE_COLUMN=1 (set by the benchmark for that run) gives the app its second
migration, which adds one column."""

from windflow.settings.dev import *  # noqa: F403
from windflow.settings.env import env_bool

SCALE_APP = "benchmarks.support.scale_app"
TENANT_APPS = [*TENANT_APPS, SCALE_APP]  # noqa: F405
INSTALLED_APPS = [*INSTALLED_APPS, SCALE_APP]  # noqa: F405

WINDFLOW_BENCH_SCALE_COLUMN = env_bool("WINDFLOW_BENCH_SCALE_COLUMN", False)
MIGRATION_MODULES = {
    "scale_app": f"{SCALE_APP}.migrations_column"
    if WINDFLOW_BENCH_SCALE_COLUMN
    else f"{SCALE_APP}.migrations"
}
