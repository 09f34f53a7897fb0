"""`manage.py run_worker`, the Procfile's worker: one process, stopped gracefully by one signal
whether it reaches the process or its whole group (tests/test_scheduler.py stops one so and
finds the scheduler's lock let go)."""

import io

import pytest
from django.core.management import call_command


def test_it_refuses_fewer_than_one_thread_with_a_clear_message():
    err = io.StringIO()
    with pytest.raises(SystemExit) as stopped:
        call_command("run_worker", "--threads", "0", stderr=err)
    assert stopped.value.code == 2
    assert err.getvalue().strip() == "--threads must be at least 1"
