"""Git token canary: a stack fetches from a real repository (devtools.gitserver, http with
a token check) with an access token kept as a WindFlow secret, once with success and once
failing (a repository that refuses it); then every page, API answer and admin page about
the sources is fetched, and the token is looked for, in every encoding the redaction knows,
in every text and JSON column of every schema, in every Redis key and value, in every answer
and in the log records. There must be none."""

from __future__ import annotations

import uuid

from apps.secrets import services as secrets
from apps.sources import services as sources
from apps.sources.models import GitSource
from tests.base import api_client, client_for, run_queued_jobs
from tests.security.leaks import Transcript, found_in, scan_database, scan_redis
from tests.sources.conftest import PROJECT
from windflow.redaction import RedactingFilter


def test_it_stores_and_shows_a_git_token_nowhere(
    owner,
    acme,
    membership,
    staging,
    local_target,
    git_server,
    tmp_path,
    settings,
    django_capture_on_commit_callbacks,
    caplog,
):
    settings.WINDFLOW_SOURCE_CACHE_DIR = str(tmp_path / "source-cache")
    caplog.handler.addFilter(RedactingFilter())
    caplog.set_level("DEBUG")
    token = f"glpat-canary-{uuid.uuid4().hex}"
    good = git_server.repo(token=token)
    good.commit(PROJECT)
    other = git_server.repo(token=f"another-{uuid.uuid4().hex}")  # refuses our token
    other.commit(PROJECT)
    secrets.create_secret(membership, name="GIT_TOKEN", value=token)
    with django_capture_on_commit_callbacks(execute=True):
        for name, repo in (("shop", good), ("blog", other)):
            sources.create_git_stack(
                membership,
                name=name,
                environment=staging,
                target=local_target,
                url=repo.http_url,
                auth="token",
                token_secret="GIT_TOKEN",
            )
    with django_capture_on_commit_callbacks(execute=True):
        run_queued_jobs()
    shop, blog = (
        GitSource.objects.get(stack__name="shop"),
        GitSource.objects.get(stack__name="blog"),
    )
    assert shop.status == "ok", shop.error_message
    assert (blog.status, blog.error_code) == ("error", "auth_failed")

    transcript = Transcript()
    page, api = client_for(owner, acme), api_client(owner, acme)
    for path in (
        "/stacks/shop/",
        "/stacks/blog/",
        "/stacks/shop/revisions/1/",
        "/audit/",
        "/admin/sources/gitsource/",
        f"/admin/sources/gitsource/{shop.pk}/change/",
        f"/admin/sources/gitsource/{blog.pk}/change/",
    ):
        transcript.add_response(path, page.get(path))
    for path in (
        "/api/v1/stacks/shop/source/",
        "/api/v1/stacks/blog/source/",
        "/api/v1/stacks/shop/revisions/1/",
        "/api/v1/audit-events/",
    ):
        transcript.add_response(path, api.get(path))
    transcript.add("log records", caplog.text)

    assert transcript.texts and all("[200]" in label for label, _ in transcript.texts[:-1])
    assert scan_database(token) == []
    assert scan_redis(token) == []
    assert transcript.scan(token) == []
    assert found_in(caplog.text, token) == []
