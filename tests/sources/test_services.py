"""Sources services: uploaded archives (safe unpack, load, checks, revisions with their
manifest, nothing left behind on refusal) and materialize()."""

import pytest

from apps.audit.models import AuditEvent
from apps.sources import services
from apps.sources.models import SourceArchive
from apps.stacks import services as stacks
from apps.stacks.models import Stack, StackRevision
from tests.base import member
from tests.sources.conftest import NGINX_CONF, tar_gz, zip_bomb, zip_bytes
from windflow.errors import Forbidden, ServiceError


def upload(actor, data, *, name="shop", **fields):
    return services.upload_archive(
        actor, stack_name=name, data=data, filename="shop.tar.gz", **fields
    )


def test_it_creates_a_stack_from_an_archive(membership, staging, local_target, project):
    _stack, revision, created = upload(
        membership, tar_gz(project), environment=staging, target=local_target
    )
    assert created and revision.number == 1
    assert revision.source_kind == "archive"
    assert len(revision.archive_digest) == 64
    assert set(revision.manifest) == {"compose.yaml", "nginx.conf"}
    assert "./nginx.conf:/etc/nginx/nginx.conf" in revision.compose
    stored = SourceArchive.objects.get(digest=revision.archive_digest)
    assert stored.size == len(bytes(stored.content))
    event = AuditEvent.objects.filter(action="stack.create").latest("id")
    assert event.changes["source"] == "archive"


def test_it_adds_a_revision_with_the_changed_files(membership, staging, local_target, project):
    upload(membership, tar_gz(project), environment=staging, target=local_target)
    project["nginx.conf"] = NGINX_CONF + "# tuned\n"
    project["static/index.html"] = "<h1>hi</h1>"
    stack, revision, created = upload(membership, tar_gz(project), message="tuned")
    assert not created and revision.number == 2 and revision.message == "tuned"
    old = stack.revisions.get(number=1)
    assert stacks.changed_files(old, revision) == {
        "added": ["static/index.html"],
        "removed": [],
        "modified": ["nginx.conf"],
    }
    assert stacks.diff_revisions(old, revision)["files"]["modified"] == ["nginx.conf"]


def test_it_gives_the_latest_revision_back_for_the_same_archive(
    membership, staging, local_target, project
):
    data = tar_gz(project)
    upload(membership, data, environment=staging, target=local_target)
    _stack, revision, created = upload(membership, data)
    assert revision.number == 1 and not created
    assert SourceArchive.objects.count() == 1


def test_it_keeps_the_variables_of_the_latest_revision(membership, staging, local_target, project):
    stack, _revision, _created = upload(
        membership, tar_gz(project), environment=staging, target=local_target
    )
    stacks.revise_stack(
        membership,
        stack,
        compose=stack.latest_revision.compose,
        variables={"GREETING": "bonjour"},
        source={
            "source_kind": "archive",
            "archive_digest": stack.latest_revision.archive_digest,
            "manifest": stack.latest_revision.manifest,
        },
    )
    project["nginx.conf"] = NGINX_CONF + "# again\n"
    _stack, revision, _created = upload(membership, tar_gz(project))
    assert revision.variables == {"GREETING": "bonjour"}


def test_it_reads_a_zip_and_a_subfolder(membership, staging, local_target, project):
    files = {f"apps/shop/{name}": content for name, content in project.items()}
    files["README.md"] = "monorepo"
    _stack, revision, _created = upload(
        membership,
        zip_bytes(files),
        environment=staging,
        target=local_target,
        subfolder="apps/shop",
    )
    assert revision.subfolder == "apps/shop"
    assert set(revision.manifest) == {"compose.yaml", "nginx.conf"}


def test_it_uses_the_compose_files_in_order(membership, staging, local_target, project):
    project["compose.prod.yaml"] = "services:\n  web:\n    image: nginx:1.27-alpine\n"
    _stack, revision, _created = upload(
        membership,
        tar_gz(project),
        environment=staging,
        target=local_target,
        compose_files="compose.yaml, compose.prod.yaml",
    )
    assert revision.compose_files == ["compose.yaml", "compose.prod.yaml"]
    assert "nginx:1.27-alpine" in revision.compose


def refused(actor, data, code, **fields):
    with pytest.raises(ServiceError) as caught:
        upload(actor, data, **fields)
    assert caught.value.code == code, caught.value.message
    assert not Stack.objects.filter(name="shop").exists()
    assert not StackRevision.objects.exists()
    assert not SourceArchive.objects.exists()
    return caught.value


def test_it_refuses_a_tar_with_dot_dot_entries(membership, staging, local_target, project):
    bad = {**project, "../evil.sh": "rm -rf /"}
    error = refused(
        membership, tar_gz(bad), "archive_unsafe", environment=staging, target=local_target
    )
    assert "evil.sh" in error.message and error.field == "archive"


def test_it_refuses_an_escaping_symlink(membership, staging, local_target, project):
    refused(
        membership,
        tar_gz(project, links={"passwd": "../../../etc/passwd"}),
        "archive_unsafe",
        environment=staging,
        target=local_target,
    )


def test_it_refuses_a_zip_bomb(membership, staging, local_target, settings):
    settings.WINDFLOW_UPLOAD_MAX_BYTES = 10 * 1024**2
    refused(membership, zip_bomb(), "archive_too_large", environment=staging, target=local_target)


def test_it_refuses_an_upload_over_the_limit(membership, staging, local_target, project, settings):
    data = tar_gz(project)
    settings.WINDFLOW_UPLOAD_MAX_BYTES = len(data) - 1
    error = refused(membership, data, "archive_too_large", environment=staging, target=local_target)
    assert "MB" in error.message


def test_it_refuses_what_is_not_an_archive(membership, staging, local_target):
    refused(
        membership, b"hello, world", "archive_invalid", environment=staging, target=local_target
    )


def test_it_refuses_a_mount_of_a_file_not_in_the_project(
    membership, staging, local_target, project
):
    del project["nginx.conf"]
    error = refused(
        membership, tar_gz(project), "compose_invalid", environment=staging, target=local_target
    )
    assert "nginx.conf" in error.message
    assert error.problems and error.problems[0].file == "compose.yaml"


def test_it_refuses_a_missing_subfolder(membership, staging, local_target, project):
    refused(
        membership,
        tar_gz(project),
        "subfolder_missing",
        environment=staging,
        target=local_target,
        subfolder="apps/none",
    )


def test_it_refuses_a_subfolder_that_leaves_the_project(membership, staging, local_target, project):
    with pytest.raises(ServiceError) as caught:
        upload(
            membership, tar_gz(project), environment=staging, target=local_target, subfolder="../x"
        )
    assert caught.value.field == "subfolder"


def test_it_needs_an_environment_and_a_server_to_create(membership, project):
    with pytest.raises(ServiceError) as caught:
        upload(membership, tar_gz(project))
    assert caught.value.field == "environment"


def test_it_refuses_a_viewer(acme, viewer, staging, local_target, project):
    with pytest.raises(Forbidden):
        upload(member(viewer, acme), tar_gz(project), environment=staging, target=local_target)
    assert not Stack.objects.exists()


def test_it_lets_a_developer_upload(acme, developer, staging, local_target, project):
    _stack, revision, created = upload(
        member(developer, acme), tar_gz(project), environment=staging, target=local_target
    )
    assert created and revision.author == developer


def test_it_materializes_an_archive_revision(
    membership, staging, local_target, project, source_cache
):
    _stack, revision, _created = upload(
        membership,
        tar_gz({f"shop/{k}": v for k, v in project.items()}),
        environment=staging,
        target=local_target,
    )
    root = services.materialize(revision)
    assert (root / "nginx.conf").read_text() == NGINX_CONF
    assert str(root).startswith(str(source_cache))
    assert services.materialize(revision) == root  # from the cache


def test_it_materializes_nothing_for_a_pasted_compose(make_stack):
    assert services.materialize(make_stack().latest_revision) is None


def test_it_reads_the_project_env_file_for_the_checks(membership, staging, local_target, project):
    project["compose.yaml"] = project["compose.yaml"].replace("nginx:1.27", "nginx:${TAG}")
    project[".env"] = "TAG=1.27\n"
    _stack, revision, _created = upload(
        membership, tar_gz(project), environment=staging, target=local_target
    )
    assert "nginx:${TAG}" in revision.compose and revision.variables == {}


def test_it_names_the_file_and_line_of_a_finding(membership, staging, local_target, project):
    project["compose.override.yaml"] = "services:\n  web:\n    ports:\n      - 'not a port'\n"
    error = refused(
        membership, tar_gz(project), "compose_invalid", environment=staging, target=local_target
    )
    assert error.problems[0].file == "compose.override.yaml", error.problems
    assert error.problems[0].line == 4


def test_it_deletes_the_deploy_key_with_its_stack(membership, make_git_stack):
    from apps.secrets.models import SecretRef
    from apps.sources.models import GitSource

    stack = make_git_stack("ssh://git@127.0.0.1:2222/srv/shop.git", auth="deploy_key")
    credential = GitSource.objects.get(stack=stack).deploy_key
    assert credential.purpose == "server"
    stacks.delete_stack(membership, stack)
    assert not SecretRef.all_purposes.filter(pk=credential.pk).exists()
    assert AuditEvent.objects.filter(action="secret.delete").exists()


def test_it_drops_the_archives_that_only_a_deleted_stack_used(
    membership, staging, local_target, project
):
    shared = tar_gz(project)
    upload(membership, shared, environment=staging, target=local_target)
    upload(membership, shared, name="blog", environment=staging, target=local_target)
    project["nginx.conf"] = NGINX_CONF + "# only shop\n"
    upload(membership, tar_gz(project))
    assert SourceArchive.objects.count() == 2
    stacks.delete_stack(membership, Stack.objects.get(name="shop"))
    (kept,) = SourceArchive.objects.all()
    assert kept.digest == Stack.objects.get(name="blog").latest_revision.archive_digest
