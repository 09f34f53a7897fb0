"""The worker process: Dramatiq's worker threads in this one process.

`manage.py rundramatiq` execs the `dramatiq` command, whose main process only forks the
process that does the work and passes signals on to it: 15 MB for a process that waits. It
also turns one stop into two: an orchestrator or `make run` that signals the whole group
reaches the worker once directly and once through the main process, and dramatiq takes the
second SIGTERM as "kill now" (running jobs are cut, the scheduler's lock is not let go). Here
one SIGTERM (or SIGINT) stops the worker gracefully: no new message is taken, running jobs get
--shutdown-timeout seconds to finish.
"""

import signal
import threading

import dramatiq
from django.core.management.base import BaseCommand
from django_dramatiq.management.commands.rundramatiq import Command as RundramatiqCommand

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Command(BaseCommand):
    help = "Run the Dramatiq worker (and the scheduler's thread) in this process."

    def add_arguments(self, parser):
        parser.add_argument("--threads", type=int, default=8, help="worker threads")
        parser.add_argument(
            "--shutdown-timeout",
            type=float,
            default=600,
            help="seconds running jobs get to finish once asked to stop",
        )

    def handle(self, *args, threads, shutdown_timeout, **options):
        if threads < 1:
            self.stderr.write("--threads must be at least 1")
            raise SystemExit(2)
        RundramatiqCommand(stdout=self.stdout).discover_tasks_modules()
        broker = dramatiq.get_broker()
        broker.emit_after("process_boot")

        stopping = threading.Event()
        for number in STOP_SIGNALS:
            signal.signal(number, lambda *_: stopping.set())
        worker = dramatiq.Worker(broker, worker_threads=threads)
        worker.start()
        self.stdout.write(f"worker ready: {threads} threads")
        while not stopping.wait(1):
            pass
        self.stdout.write("worker stopping: running jobs may finish")
        worker.stop(timeout=int(shutdown_timeout * 1000))
        broker.close()
        self.stdout.write("worker stopped")
