"""Polling (GitOps, issue 13): the scheduler's job enqueues a check of each Git source whose
interval has elapsed, once per interval whatever the number of schedulers; a check runs
under a lock per source, and a new commit deploys or only records the drift, as the
environment's poll mode says."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.deployments.models import Deployment
from apps.environments.choices import PollMode
from apps.sources import push
from apps.sources.models import GitSource
from tests.base import queued_messages, run_queued_jobs
from tests.deploying import make_world
from tests.sources.webhook_helpers import project
from windflow import scheduler
from windflow.hotcache import redis_client


@pytest.fixture
def polled(acme, owner, git_server, settings, tmp_path):
    settings.WINDFLOW_GIT_ALLOW_INSECURE = True
    settings.WINDFLOW_SOURCE_CACHE_DIR = str(tmp_path / "source-cache")
    world = make_world(acme, owner)
    world.repo = git_server.repo()
    world.first = world.repo.commit(project("one"), "first")
    world.source = GitSource.objects.create(
        stack=world.stack, url=world.repo.git_url, poll_interval=60
    )
    yield world
    connection.set_schema_to_public()


def checks_queued():
    return [(args, schema) for actor, args, schema in queued_messages() if actor == "check_source"]


def test_it_runs_polling_from_the_scheduler_in_every_organisation(acme, globex):
    jobs = {job.name: job for job in scheduler.periodic_jobs()}
    assert jobs["poll_sources"].every_seconds == scheduler.POLL_EVERY_SECONDS
    jobs["poll_sources"].enqueue()
    schemas = {schema for actor, _a, schema in queued_messages() if actor == "poll_sources"}
    assert schemas == {acme.schema_name, globex.schema_name}


def test_it_picks_the_sources_whose_interval_elapsed(polled, acme):
    now = timezone.now()
    never = polled.source
    assert push.due_sources(now) == [never.pk]
    GitSource.objects.filter(pk=never.pk).update(last_checked_at=now - timedelta(seconds=30))
    assert push.due_sources(now) == []
    GitSource.objects.filter(pk=never.pk).update(last_checked_at=now - timedelta(seconds=61))
    assert push.due_sources(now) == [never.pk]
    GitSource.objects.filter(pk=never.pk).update(poll_interval=0)
    assert push.due_sources(now) == []


def test_it_enqueues_one_check_per_interval_whatever_the_schedulers(polled, acme):
    from apps.sources.push_tasks import poll_sources

    poll_sources()
    poll_sources()  # a second scheduler, or an overlapping round
    assert checks_queued() == [((polled.source.pk,), acme.schema_name)]


def test_it_deploys_a_new_commit_found_by_polling(polled, acme):
    outcome = push.check_source(acme.schema_name, polled.source.pk)
    assert outcome.verdict == "deployed"
    deployment = outcome.deployment
    assert deployment.revision.commit_sha == polled.first
    event = AuditEvent.objects.filter(action="deployment.request").latest("id")
    assert event.actor_label == "polling" and "(polling)" in event.changes["why"]
    # Nothing new: the next round does nothing.
    assert push.check_source(acme.schema_name, polled.source.pk) is None
    second = polled.repo.commit(project("two"), "second")
    again = push.check_source(acme.schema_name, polled.source.pk)
    assert again.verdict == "deployed" and again.deployment.revision.commit_sha == second
    assert Deployment.objects.filter(stack=polled.stack).count() == 2


def test_it_only_reports_the_drift_when_the_environment_says_so(polled, acme):
    polled.environment.poll_mode = PollMode.REPORT
    polled.environment.save()
    outcome = push.check_source(acme.schema_name, polled.source.pk)
    assert outcome.verdict == "recorded"
    assert outcome.revision.commit_sha == polled.first
    assert not Deployment.objects.filter(stack=polled.stack).exists()
    drift = AuditEvent.objects.filter(action="stack.drift").latest("id")
    assert drift.changes["commit"] == polled.first and drift.actor_label == "polling"


def test_it_never_checks_a_source_twice_at_once(polled, acme):
    lock = f"windflow:poll:run:{acme.schema_name}:{polled.source.pk}"
    redis_client("default").set(lock, "another worker", ex=60)
    assert push.check_source(acme.schema_name, polled.source.pk) is None
    assert not Deployment.objects.filter(stack=polled.stack).exists()
    redis_client("default").delete(lock)
    assert push.check_source(acme.schema_name, polled.source.pk).verdict == "deployed"
    assert not redis_client("default").exists(lock)  # released after the check


def test_it_runs_the_queued_check_in_the_worker(polled, acme):
    from apps.sources.push_tasks import poll_sources

    poll_sources()
    assert "check_source" in run_queued_jobs()
    assert Deployment.objects.filter(stack=polled.stack).count() == 1
