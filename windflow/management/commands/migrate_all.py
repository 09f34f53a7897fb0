from django.core.management.base import BaseCommand, CommandError

from apps.tenants.migrating import Interrupted, default_processes
from apps.tenants.services import migrate_everything


class Command(BaseCommand):
    help = (
        "Migrate the public schema, the template schema and every organisation's schema that "
        "is behind, in parallel. Safe to interrupt and run again: it resumes with the schemas "
        "still behind. Exits non-zero, naming them, when a schema failed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--processes",
            type=int,
            default=None,
            help="Schemas migrated at once (default: WINDFLOW_MIGRATE_PROCESSES, else one per "
            f"core: {default_processes()} here).",
        )
        parser.add_argument(
            "--progress-every",
            type=float,
            default=10.0,
            help="Seconds between progress lines (default 10).",
        )

    def _write_now(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()  # progress, as it happens, also when piped to a log

    def handle(self, *args, **options):
        if options["processes"] is not None and options["processes"] < 1:
            raise CommandError("--processes must be at least 1.")
        verbosity = options["verbosity"]
        try:
            report = migrate_everything(
                verbosity=verbosity,
                processes=options["processes"],
                write=self._write_now if verbosity >= 1 else None,
                every=options["progress_every"],
            )
        except Interrupted as interrupted:
            raise CommandError(str(interrupted)) from None
        failed = [f"{outcome.schema}: {outcome.error}" for outcome in report.failures]
        named = {outcome.schema for outcome in report.failures}
        behind = [schema for schema in report.still_behind if schema not in named]
        if failed or behind:
            raise CommandError(
                "\n".join(
                    [f"{len(failed)} schema(s) failed, {len(report.still_behind)} behind:"]
                    + [f"  {line}" for line in failed]
                    + [f"  {schema}: still behind" for schema in behind]
                )
            )
        self.stdout.write(
            f"{report.total} organisation schema(s), {len(report.behind)} migrated by this run."
        )
        self.stdout.write(self.style.SUCCESS("All schemas are up to date."))
