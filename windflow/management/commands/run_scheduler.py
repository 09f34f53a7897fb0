import os
import socket

from django.core.management.base import BaseCommand
from django_redis import get_redis_connection

from windflow import scheduler


class Command(BaseCommand):
    help = "Run the periodic-job scheduler (one active per installation, Redis-locked)."

    def handle(self, *args, **options):
        identity = f"{socket.gethostname()}:{os.getpid()}"
        self.stdout.write(f"scheduler {identity} started")
        try:
            scheduler.run(get_redis_connection("default"), identity)
        except KeyboardInterrupt:
            self.stdout.write("scheduler stopped")
