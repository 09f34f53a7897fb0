"""Sources pages: the "New stack" choices (paste, Git repository, upload archive), the
stack page's source panel (deploy key, status, error with its hint, Fetch now) and the
revision page's source and changed files. Refusals are form errors; nothing is left."""

import pytest

from apps.sources import services
from apps.sources.models import GitSource, SourceArchive
from apps.stacks.models import Stack, StackRevision
from tests.base import client_for, member, queued_messages
from tests.sources.conftest import NGINX_CONF, archive_file, tar_gz


@pytest.fixture
def page(owner, acme, staging, local_target):
    return client_for(owner, acme)


@pytest.fixture
def upload(page, staging, local_target):
    """upload(data): the upload form posted with `data` as the archive of a new stack `shop`."""

    def post(data: bytes):
        fields = {"name": "shop", "environment": staging.pk, "target": local_target.pk}
        return page.post("/stacks/add/upload/", {**fields, "archive": archive_file(data)})

    return post


def test_it_offers_three_sources_for_a_new_stack(page):
    for url in ("/stacks/add/", "/stacks/add/git/", "/stacks/add/upload/"):
        response = page.get(url)
        assert response.status_code == 200
        text = response.content.decode()
        assert 'data-testid="source-choice"' in text
        assert "/stacks/add/git/" in text and "/stacks/add/upload/" in text


def test_it_creates_a_git_stack_and_shows_its_deploy_key(page, staging, local_target, git_server):
    repo = git_server.repo()
    response = page.post(
        "/stacks/add/git/",
        {
            "name": "shop",
            "environment": staging.pk,
            "target": local_target.pk,
            "url": f"ssh://git@127.0.0.1:2222{repo.bare}",
            "ref": "main",
            "auth": "deploy_key",
            "poll_interval": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    source = GitSource.objects.get(stack__name="shop")
    shown = page.get(response["Location"]).content.decode()
    assert 'data-testid="source-panel"' in shown and 'data-testid="deploy-key"' in shown
    assert source.public_key in shown and "data-copy=" in shown
    assert "PRIVATE KEY" not in shown
    assert 'data-testid="fetch-now"' in shown
    assert not queued_messages()


def test_it_shows_a_fetch_error_with_its_hint(page, git_server, make_git_stack):
    repo = git_server.repo()
    repo.commit({"compose.yaml": "services: {}\n"})
    stack = make_git_stack(repo.git_url)
    GitSource.objects.filter(stack=stack).update(
        status="error",
        error_code="ref_not_found",
        error_message="The repository has no branch or tag 'main'.",
        error_hint="Check the branch or tag name.",
    )
    text = page.get("/stacks/shop/").content.decode()
    assert 'data-testid="source-error"' in text
    assert "ref_not_found" in text and "Check the branch or tag name." in text


def test_it_fetches_now_from_the_stack_page(
    page, git_server, django_capture_on_commit_callbacks, make_git_stack
):
    repo = git_server.repo()
    stack = make_git_stack(repo.git_url)
    with django_capture_on_commit_callbacks(execute=True):
        response = page.post("/stacks/shop/source/fetch/")
    assert response.status_code == 302 and response["Location"] == stack.get_absolute_url()
    assert [name for name, _args, _schema in queued_messages()] == ["sync_source"]


def test_it_refuses_fetch_now_to_a_viewer(acme, viewer, make_git_stack):
    make_git_stack("git://127.0.0.1:9/x.git")
    response = client_for(viewer, acme).post("/stacks/shop/source/fetch/")
    assert response.status_code == 403


def test_it_shows_a_git_form_error_and_creates_nothing(page, staging, local_target):
    response = page.post(
        "/stacks/add/git/",
        {
            "name": "shop",
            "environment": staging.pk,
            "target": local_target.pk,
            "url": "file:///etc/passwd",
            "ref": "main",
            "auth": "none",
        },
    )
    assert response.status_code == 200
    assert response.context["form"].errors["url"]
    assert not Stack.objects.exists()


def test_it_uploads_an_archive_from_the_page(page, upload, project):
    response = upload(tar_gz(project))
    assert response.status_code == 302, response.content.decode()[:2000]
    revision = StackRevision.objects.get(stack__name="shop")
    assert response["Location"] == revision.get_absolute_url()
    text = page.get(response["Location"]).content.decode()
    assert 'data-testid="revision-source"' in text
    assert revision.archive_digest[:12] in text


def test_it_shows_why_an_archive_was_refused(upload, project):
    response = upload(tar_gz(project, links={"etc": "/etc"}))
    assert response.status_code == 200
    assert "etc" in " ".join(response.context["form"].errors["archive"])
    assert not Stack.objects.exists() and not SourceArchive.objects.exists()


def test_it_shows_a_missing_mounted_file_on_the_upload_form(upload, project):
    del project["nginx.conf"]
    response = upload(tar_gz(project))
    assert response.status_code == 200
    assert "nginx.conf" in " ".join(response.context["form"].non_field_errors())
    assert not Stack.objects.exists()


def test_it_lists_the_changed_files_of_a_revision(page, membership, staging, local_target, project):
    services.upload_archive(
        membership,
        stack_name="shop",
        data=tar_gz(project),
        environment=staging,
        target=local_target,
    )
    project["nginx.conf"] = NGINX_CONF + "# tuned\n"
    project["robots.txt"] = "User-agent: *\n"
    services.upload_archive(membership, stack_name="shop", data=tar_gz(project))
    text = page.get("/stacks/shop/revisions/2/").content.decode()
    assert 'data-testid="changed-files"' in text
    assert 'data-change="added">+ robots.txt' in text
    assert 'data-change="modified">~ nginx.conf' in text
    diff = page.get("/stacks/shop/revisions/2/diff/").content.decode()
    assert 'data-change="modified">~ nginx.conf' in diff


def test_it_refuses_the_upload_page_to_a_viewer(acme, viewer, staging, local_target):
    assert client_for(viewer, acme).get("/stacks/add/upload/").status_code == 403
    assert member(viewer, acme).role == "viewer"


def test_it_keeps_the_project_when_a_revision_is_made_on_the_page(
    page, membership, staging, local_target, project
):
    _stack, first, _created = services.upload_archive(
        membership,
        stack_name="shop",
        data=tar_gz(project),
        environment=staging,
        target=local_target,
    )
    response = page.post(
        "/stacks/shop/edit/",
        {"compose": first.compose, "variables": "GREETING=bonjour", "message": "greet"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    second = StackRevision.objects.get(stack__name="shop", number=2)
    assert second.variables == {"GREETING": "bonjour"}
    assert (second.source_kind, second.archive_digest) == ("archive", first.archive_digest)
    assert second.manifest == first.manifest


def test_it_changes_the_source_on_its_page(page, git_stack):
    assert page.get("/stacks/shop/source/").status_code == 200
    response = page.post(
        "/stacks/shop/source/",
        {"url": "git://127.0.0.1:9/shop.git", "ref": "v2", "auth": "none", "poll_interval": "0"},
    )
    assert response.status_code == 302
    assert GitSource.objects.get(stack__name="shop").ref == "v2"
    refused = page.post("/stacks/shop/source/", {"url": "file:///etc", "ref": "v2", "auth": "none"})
    assert refused.status_code == 200 and refused.context["form"].errors["url"]


def test_it_refuses_an_upload_over_the_limit_on_the_page(upload, settings):
    settings.WINDFLOW_UPLOAD_MAX_BYTES = 1024
    response = upload(bytes(range(256)) * 1024)
    assert response.status_code == 413
    assert "MB" in response.content.decode()
    assert not Stack.objects.exists()
