from django.core.management.base import BaseCommand, CommandError

from apps.tenants import index, reindex


class Command(BaseCommand):
    help = (
        "Rebuild the operator console's index (counters, failed and stuck deployments, "
        "offline servers) from every organisation's schema, and prune what it no longer "
        "shows. Security events are kept as they are."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--org", action="append", default=[], help="only this organisation (slug); repeatable"
        )

    def handle(self, *args, **options):
        slugs = options["org"]
        queryset = reindex.organizations(slugs)
        if slugs:
            missing = sorted(set(slugs) - set(queryset.values_list("slug", flat=True)))
            if missing:
                raise CommandError(f"No organisation with the slug {', '.join(missing)}.")

        def progress(done, total, seconds):
            self.stdout.write(f"{done}/{total} organisations in {seconds:.1f}s")

        done, seconds = reindex.rebuild(queryset, progress=progress)
        pruned = index.prune()
        each = seconds / done * 1000 if done else 0.0
        self.stdout.write(
            f"Rebuilt the operator index of {done} organisations in {seconds:.1f}s "
            f"({each:.1f} ms each); pruned "
            + ", ".join(f"{n} {what}" for what, n in pruned.items())
            + "."
        )
