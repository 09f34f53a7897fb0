"""The organisation admin shows Git sources and uploaded archives read-only, without a
secret value: the token is a secret's name, the deploy key's private half never appears."""

from apps.secrets import services as secrets
from apps.sources import services
from apps.sources.models import GitSource, SourceArchive
from tests.base import client_for
from tests.sources.conftest import tar_gz

TOKEN = "ghp-admin-canary-token-value"


def test_it_shows_a_git_source_read_only_without_secrets(owner, acme, membership, make_git_stack):
    secrets.create_secret(membership, name="GIT_TOKEN", value=TOKEN)
    token_stack = make_git_stack(
        "http://127.0.0.1:9/acme/shop.git", auth="token", token_secret="GIT_TOKEN"
    )
    key_stack = make_git_stack(
        "ssh://git@127.0.0.1:2222/srv/blog.git", name="blog", auth="deploy_key"
    )
    private_key = secrets.read_value(GitSource.objects.get(stack=key_stack).deploy_key)
    page = client_for(owner, acme)
    listed = page.get("/admin/sources/gitsource/")
    assert listed.status_code == 200 and "acme/shop.git" in listed.content.decode()
    for stack in (token_stack, key_stack):
        source = GitSource.objects.get(stack=stack)
        shown = page.get(f"/admin/sources/gitsource/{source.pk}/change/")
        text = shown.content.decode()
        assert shown.status_code == 200 and source.url in text
        assert TOKEN not in text
        assert private_key.splitlines()[1] not in text
        assert 'name="url"' not in text  # read-only: no input
    assert page.post(f"/admin/sources/gitsource/{source.pk}/delete/").status_code == 403


def test_it_shows_an_archive_without_its_content(owner, acme, membership, staging, local_target):
    data = tar_gz({"compose.yaml": "services:\n  web:\n    image: nginx:1.27\n"})
    services.upload_archive(
        membership,
        stack_name="shop",
        data=data,
        filename="shop.tar.gz",
        environment=staging,
        target=local_target,
    )
    archive = SourceArchive.objects.get()
    page = client_for(owner, acme)
    shown = page.get(f"/admin/sources/sourcearchive/{archive.pk}/change/")
    assert shown.status_code == 200
    assert archive.digest in shown.content.decode() and "shop.tar.gz" in shown.content.decode()


def test_it_hides_the_sources_admin_from_a_developer(acme, developer):
    assert client_for(developer, acme).get("/admin/sources/gitsource/").status_code in (302, 403)
