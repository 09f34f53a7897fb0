"""The sources API as the CLI uses it: POST /stacks/upload/ (multipart), POST /stacks/ with
a Git `source`, GET /stacks/{name}/source/, POST /stacks/{name}/source/sync/; refusals in the
one error body with their codes, nothing left behind."""

import pytest

from apps.sources.models import GitSource, SourceArchive
from apps.stacks.models import Stack, StackRevision
from tests.base import api_client, error_of, queued_messages
from tests.sources.conftest import NGINX_CONF, archive_file, tar_gz, zip_bomb


def post_upload(client, data: bytes, **fields):
    body = {"archive": archive_file(data), "name": "shop", **fields}
    return client.post("/api/v1/stacks/upload/", body, format="multipart")


@pytest.fixture
def client(owner, acme, staging, local_target):
    return api_client(owner, acme)


def test_it_creates_a_stack_from_an_upload(client, project):
    response = post_upload(client, tar_gz(project), environment="staging", target="web-1")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["created"] is True
    assert body["stack"]["name"] == "shop" and body["stack"]["latest_revision"] == 1
    revision = body["revision"]
    assert revision["number"] == 1 and revision["source_kind"] == "archive"
    assert len(revision["archive_digest"]) == 64
    assert set(revision["manifest"]) == {"compose.yaml", "nginx.conf"}


def test_it_adds_a_revision_to_an_existing_stack(client, project):
    post_upload(client, tar_gz(project), environment="staging", target="web-1")
    project["nginx.conf"] = NGINX_CONF + "# tuned\n"
    response = post_upload(client, tar_gz(project), message="tuned", compose_files="compose.yaml")
    assert response.status_code == 201, response.content
    assert response.json()["created"] is False
    assert response.json()["revision"]["number"] == 2
    diff = client.get("/api/v1/stacks/shop/diff/").json()
    assert diff["files"] == {"added": [], "removed": [], "modified": ["nginx.conf"]}
    listed = client.get("/api/v1/stacks/shop/revisions/").json()["results"]
    assert listed[0]["source_kind"] == "archive"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (tar_gz({"compose.yaml": "services: {}\n", "../escape": "x"}), "archive_unsafe"),
        (tar_gz({"compose.yaml": "services: {}\n"}, links={"l": "/etc/passwd"}), "archive_unsafe"),
        (b"not an archive at all", "archive_invalid"),
    ],
)
def test_it_refuses_an_unsafe_archive(client, data, code):
    response = post_upload(client, data, environment="staging", target="web-1")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == code and "archive" in error["fields"]
    assert not Stack.objects.exists() and not SourceArchive.objects.exists()


def test_it_refuses_a_zip_bomb_and_an_archive_over_the_limit(client, project, settings):
    settings.WINDFLOW_UPLOAD_MAX_BYTES = 10 * 1024**2
    response = post_upload(client, zip_bomb(), environment="staging", target="web-1")
    assert error_of(response)["code"] == "archive_too_large"
    settings.WINDFLOW_UPLOAD_MAX_BYTES = 100
    response = post_upload(client, tar_gz(project), environment="staging", target="web-1")
    assert response.status_code == 400
    assert error_of(response)["code"] == "archive_too_large"
    assert not Stack.objects.exists()


def test_it_lists_the_problems_of_a_project_that_does_not_load(client, project):
    del project["nginx.conf"]
    response = post_upload(client, tar_gz(project), environment="staging", target="web-1")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "compose_invalid"
    assert "nginx.conf" in error["message"]
    assert error["problems"][0]["file"] == "compose.yaml"
    assert not Stack.objects.exists() and not StackRevision.objects.exists()


def test_it_needs_a_place_to_create_from_an_upload(client, project):
    response = post_upload(client, tar_gz(project))
    assert response.status_code == 400
    assert "environment" in error_of(response)["fields"]


def test_it_refuses_an_upload_to_a_viewer(acme, viewer, staging, local_target, project):
    response = post_upload(
        api_client(viewer, acme), tar_gz(project), environment="staging", target="web-1"
    )
    assert response.status_code == 403
    assert not Stack.objects.exists()


def test_it_creates_a_git_stack_and_queues_its_fetch(client, git_server, project):
    repo = git_server.repo()
    repo.commit(project)
    response = client.post(
        "/api/v1/stacks/",
        {
            "name": "shop",
            "environment": "staging",
            "target": "web-1",
            "source": {"kind": "git", "url": repo.git_url, "ref": "main"},
        },
        format="json",
    )
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["stack"]["latest_revision"] is None
    assert body["source"]["status"] == "fetching" and body["source"]["url"] == repo.git_url
    shown = client.get("/api/v1/stacks/shop/source/")
    assert shown.status_code == 200 and shown.json()["ref"] == "main"
    synced = client.post("/api/v1/stacks/shop/source/sync/")
    assert synced.status_code == 202


def test_it_shows_the_deploy_key_and_never_a_private_key(client, git_sshd, git_server):
    repo = git_server.repo()
    response = client.post(
        "/api/v1/stacks/",
        {
            "name": "shop",
            "environment": "staging",
            "target": "web-1",
            "source": {"kind": "git", "url": repo.ssh_url(git_sshd), "auth": "deploy_key"},
        },
        format="json",
    )
    assert response.status_code == 202, response.content
    assert response.json()["source"]["public_key"].startswith("ssh-ed25519 ")
    assert "PRIVATE KEY" not in response.content.decode()
    assert not queued_messages()  # the key is not in the repository yet


def test_it_refuses_a_bad_git_source(client):
    response = client.post(
        "/api/v1/stacks/",
        {
            "name": "shop",
            "environment": "staging",
            "target": "web-1",
            "source": {"kind": "git", "url": "file:///etc", "ref": "main"},
        },
        format="json",
    )
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "url_refused" and "url" in error["fields"]
    assert not Stack.objects.exists() and not GitSource.objects.exists()


def test_it_answers_404_for_a_stack_without_a_source(client, make_stack):
    make_stack()
    response = client.get("/api/v1/stacks/shop/source/")
    assert response.status_code == 404 and error_of(response)["code"] == "no_source"


def test_it_keeps_the_openapi_schema_valid(client):
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/stacks/upload/" in paths
    assert "/api/v1/stacks/{name}/source/sync/" in paths


def test_it_changes_a_source_through_the_api(client, git_stack):
    response = client.patch(
        "/api/v1/stacks/shop/source/", {"ref": "release", "poll_interval": 300}, format="json"
    )
    assert response.status_code == 202, response.content
    assert response.json()["ref"] == "release" and response.json()["poll_interval"] == 300
    refused = client.patch("/api/v1/stacks/shop/source/", {"poll_interval": 5}, format="json")
    assert refused.status_code == 400
    assert "poll_interval" in error_of(refused)["fields"]


def test_it_lets_a_developer_change_the_ref_but_not_the_token_secret(
    acme, developer, membership, make_git_stack
):
    from apps.secrets import services as secrets

    for name in ("GIT_TOKEN", "OTHER_TOKEN"):
        secrets.create_secret(membership, name=name, value=f"value-of-{name}")
    make_git_stack("http://127.0.0.1:9/shop.git", auth="token", token_secret="GIT_TOKEN")
    client = api_client(developer, acme)
    kept = client.patch("/api/v1/stacks/shop/source/", {"ref": "v2"}, format="json")
    assert kept.status_code == 202, kept.content
    changed = client.patch(
        "/api/v1/stacks/shop/source/", {"token_secret": "OTHER_TOKEN"}, format="json"
    )
    assert changed.status_code == 403
    assert GitSource.objects.get().token_secret == "GIT_TOKEN"


def test_it_refuses_a_body_over_the_limit(client, settings):
    settings.WINDFLOW_UPLOAD_MAX_BYTES = 1024
    big = bytes(range(256)) * 1024  # 256 KiB, over the limit and its multipart slack
    response = post_upload(client, big, environment="staging", target="web-1")
    assert response.status_code == 400
    assert error_of(response)["code"] == "archive_too_large"
    assert not Stack.objects.exists()
