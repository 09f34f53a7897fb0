"""The sync_source job against real Git servers on loopback (devtools.gitserver): a first
revision from a commit, no revision for a commit that changes nothing in the project, a
force-push recorded as a warning, and each failure recorded on the source with its code and
hint, leaving no revision behind."""

import pytest

from apps.audit.models import AuditEvent
from apps.secrets import services as secrets
from apps.sources import services
from apps.sources.models import GitSource
from apps.stacks.models import Stack, StackRevision
from tests.base import run_queued_jobs
from tests.sources.conftest import NGINX_CONF, PROJECT
from windflow.errors import ServiceError

TOKEN = "glpat-s3cret-t0ken-value"


@pytest.fixture
def git_stack(membership, staging, local_target, source_cache, django_capture_on_commit_callbacks):
    """git_stack(url, **fields) -> the GitSource of a new stack `shop`, after its job ran."""

    def make(url, *, run=True, **fields):
        with django_capture_on_commit_callbacks(execute=True):
            stack = services.create_git_stack(
                membership,
                name=fields.pop("name", "shop"),
                environment=staging,
                target=local_target,
                url=url,
                **fields,
            )
        if run:
            sync(django_capture_on_commit_callbacks)
        return GitSource.objects.get(stack=stack)

    return make


def sync(capture):
    with capture(execute=True):
        return run_queued_jobs()


def fetch_now(membership, source, capture) -> GitSource:
    """ "Fetch now", then the job: the source as the worker left it."""
    with capture(execute=True):
        services.request_sync(membership, source)
    assert sync(capture) == ["sync_source"]
    source.refresh_from_db()
    return source


def test_it_makes_the_first_revision_from_the_branch(git_server, git_stack):
    repo = git_server.repo()
    sha = repo.commit(PROJECT)
    source = git_stack(repo.git_url, ref="main")
    assert (source.status, source.last_sha, source.error_code) == ("ok", sha, "")
    revision = source.stack.latest_revision
    assert revision.number == 1 and revision.source_kind == "git"
    assert (revision.commit_sha, revision.source_ref) == (sha, "main")
    assert set(revision.manifest) == {"compose.yaml", "nginx.conf"}
    assert sha[:10] in revision.message


def test_it_makes_a_revision_only_when_the_project_changed(
    git_server, git_stack, membership, django_capture_on_commit_callbacks
):
    repo = git_server.repo()
    repo.commit({f"shop/{name}": content for name, content in PROJECT.items()})
    source = git_stack(repo.git_url, subfolder="shop")
    outside = repo.commit({"docs/README.md": "elsewhere in the monorepo"})
    fetch_now(membership, source, django_capture_on_commit_callbacks)
    assert source.last_sha == outside and source.stack.revisions.count() == 1
    changed = repo.commit({"shop/nginx.conf": NGINX_CONF + "# tuned\n"})
    fetch_now(membership, source, django_capture_on_commit_callbacks)
    latest = source.stack.latest_revision
    assert latest.number == 2 and latest.commit_sha == changed
    assert latest.manifest != source.stack.revisions.get(number=1).manifest


def test_it_records_a_force_push_as_a_warning(
    git_server, git_stack, membership, django_capture_on_commit_callbacks
):
    repo = git_server.repo()
    repo.commit(PROJECT, "first")
    old = repo.commit({"nginx.conf": NGINX_CONF + "# second\n"}, "second")
    source = git_stack(repo.git_url)
    new = repo.rewrite({"nginx.conf": NGINX_CONF + "# rewritten\n"})
    fetch_now(membership, source, django_capture_on_commit_callbacks)
    assert source.status == "ok" and source.last_sha == new
    assert "force-pushed" in source.warning and old[:10] in source.warning
    assert "force-pushed" in source.stack.latest_revision.message
    assert AuditEvent.objects.filter(action="stack.force_push").exists()


@pytest.mark.parametrize(
    ("url", "ref", "code"),
    [
        ("git://127.0.0.1:9/none.git", "main", "repo_unreachable"),
        (None, "no-such-branch", "ref_not_found"),
    ],
)
def test_it_records_why_a_fetch_failed(git_server, git_stack, url, ref, code):
    repo = git_server.repo()
    repo.commit(PROJECT)
    source = git_stack(url or repo.git_url, ref=ref)
    assert (source.status, source.error_code) == ("error", code)
    assert source.error_message and source.error_hint
    assert not StackRevision.objects.exists()


def test_it_records_a_project_that_does_not_load(git_server, git_stack):
    repo = git_server.repo()
    repo.commit({"compose.yaml": PROJECT["compose.yaml"]})  # nginx.conf is missing
    source = git_stack(repo.git_url)
    assert (source.status, source.error_code) == ("error", "compose_invalid")
    assert "nginx.conf" in source.error_message
    assert not StackRevision.objects.exists()


def test_it_fetches_with_a_token_and_never_stores_it(git_server, git_stack, membership):
    repo = git_server.repo(token=TOKEN)
    sha = repo.commit(PROJECT)
    secrets.create_secret(membership, name="GIT_TOKEN", value=TOKEN)
    source = git_stack(repo.http_url, auth="token", token_secret="GIT_TOKEN")
    assert (source.status, source.last_sha) == ("ok", sha), source.error_message
    for row in GitSource.objects.values():
        assert TOKEN not in str(row)
    for event in AuditEvent.objects.all():
        assert TOKEN not in str(event.changes)


def test_it_records_a_wrong_token(git_server, git_stack, membership):
    repo = git_server.repo(token=TOKEN)
    repo.commit(PROJECT)
    secrets.create_secret(membership, name="GIT_TOKEN", value="glpat-wrong-token-value")
    source = git_stack(repo.http_url, auth="token", token_secret="GIT_TOKEN")
    assert (source.status, source.error_code) == ("error", "auth_failed")
    assert "glpat-wrong-token-value" not in source.error_message + source.error_hint


def test_it_fetches_with_the_deploy_key_once_added(
    git_server, git_sshd, git_stack, membership, django_capture_on_commit_callbacks
):
    repo = git_server.repo()
    sha = repo.commit(PROJECT)
    source = git_stack(repo.ssh_url(git_sshd), auth="deploy_key", run=False)
    assert source.public_key.startswith("ssh-ed25519 ") and source.deploy_key_id
    assert source.status == "idle"  # nothing queued before the key is in the repository
    fetch_now(membership, source, django_capture_on_commit_callbacks)
    assert (source.status, source.error_code) == ("error", "auth_failed")
    git_sshd.authorize("root", source.public_key)
    fetch_now(membership, source, django_capture_on_commit_callbacks)
    assert (source.status, source.last_sha) == ("ok", sha), source.error_message
    assert source.host_key  # pinned at the first fetch
    assert source.stack.latest_revision.commit_sha == sha


def test_it_refuses_a_private_address_unless_allowed(make_git_stack, settings):
    settings.WINDFLOW_GIT_ALLOW_PRIVATE = False
    with pytest.raises(ServiceError) as caught:
        make_git_stack("https://127.0.0.1/acme/shop.git")
    assert (caught.value.code, caught.value.field) == ("url_refused", "url")
    assert not Stack.objects.exists()


def test_it_materializes_a_git_revision(git_server, git_stack, source_cache):
    repo = git_server.repo()
    repo.commit({f"shop/{name}": content for name, content in PROJECT.items()})
    source = git_stack(repo.git_url, subfolder="shop")
    root = services.materialize(source.stack.latest_revision)
    assert (root / "nginx.conf").read_text() == NGINX_CONF
    assert root.name == "shop" and str(root).startswith(str(source_cache))


def test_it_fetches_again_after_the_branch_is_corrected(
    git_server, git_stack, membership, django_capture_on_commit_callbacks
):
    repo = git_server.repo()
    sha = repo.commit(PROJECT, branch="trunk")
    source = git_stack(repo.git_url, ref="main")
    assert source.error_code == "ref_not_found"
    with django_capture_on_commit_callbacks(execute=True):
        services.update_source(membership, source, ref="trunk")
    sync(django_capture_on_commit_callbacks)
    source.refresh_from_db()
    assert (source.status, source.last_sha, source.error_code) == ("ok", sha, "")
    assert AuditEvent.objects.filter(action="stack.source_update").exists()


def test_it_generates_a_deploy_key_when_switching_to_one(git_stack, git_server, membership):
    repo = git_server.repo()
    repo.commit(PROJECT)
    source = git_stack(repo.git_url)
    with pytest.raises(ServiceError) as caught:
        services.update_source(membership, source, auth="deploy_key")
    assert caught.value.field == "url"  # git:// is no SSH URL
    source.refresh_from_db()
    services.update_source(
        membership, source, url="ssh://git@127.0.0.1:2222/srv/shop.git", auth="deploy_key"
    )
    source.refresh_from_db()
    assert source.public_key.startswith("ssh-ed25519 ") and source.host_key == ""
