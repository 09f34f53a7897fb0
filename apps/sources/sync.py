"""Sources, the run side (the worker): fetch a stack's Git ref and make a revision when the
project changed (sync_source), make a revision from one commit (revision_from_commit), and
give a revision's project folder to a deployment (materialize). Called by
:mod:`apps.sources.tasks` and by the deployment runner; imports neither the services nor
the tasks of this app.

Credentials (a token, a deploy key) are read only for the block that uses them, inside a
redaction scope: git's messages are scrubbed by the engine and every text we store goes
through redaction too."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts import permissions
from apps.accounts.models import Membership
from apps.audit import services as audit
from apps.secrets import services as secrets
from apps.stacks import services as stacks
from apps.stacks.choices import SourceKind
from apps.stacks.models import Stack, StackRevision
from windflow.engine.compose import ComposeError
from windflow.engine.compose.project import Project, load_project
from windflow.engine.sources import archive as archives
from windflow.engine.sources import git
from windflow.engine.sources.cache import Cache
from windflow.engine.sources.errors import SourceError
from windflow.errors import Conflict, ServiceError
from windflow.i18n import translated_problem
from windflow.redaction import redact, secrets_in_scope

from .choices import GitAuth, SourceStatus
from .models import GitSource, SourceArchive

logger = logging.getLogger(__name__)


def source_cache() -> Cache:
    return Cache(
        Path(settings.WINDFLOW_SOURCE_CACHE_DIR),
        max_bytes=settings.WINDFLOW_SOURCE_CACHE_MAX_BYTES,
    )


def archive_limits() -> archives.Limits:
    return archives.Limits(max_archive_size=settings.WINDFLOW_UPLOAD_MAX_BYTES)


def url_options() -> dict:
    """What the installation allows of a repository URL (the engine's check_url options)."""
    return {
        "allow_private": settings.WINDFLOW_GIT_ALLOW_PRIVATE,
        "allow_insecure": settings.WINDFLOW_GIT_ALLOW_INSECURE,
    }


def _git_options() -> dict:
    return {"cache": source_cache(), **url_options()}


@contextlib.contextmanager
def git_auth(source: GitSource) -> Iterator[git.GitAuth]:
    """The source's credentials for one block, kept out of every log and stored text."""
    if source.auth == GitAuth.TOKEN:
        with secrets.resolved(
            [source.token_secret], environment=source.stack.environment
        ) as values:
            yield git.GitAuth.with_token(values[source.token_secret])
        return
    if source.auth == GitAuth.DEPLOY_KEY:
        if source.deploy_key_id is None:
            raise ServiceError(
                _("The deploy key of this stack was deleted: generate a new one."),
                code="credential_missing",
            )
        private_key = secrets.read_value(source.deploy_key)
        auth = git.GitAuth.with_deploy_key(private_key, known_hosts=source.host_key)
        with secrets_in_scope(auth.secrets()):
            yield auth
        return
    yield git.NO_AUTH


# --- A project folder, loaded and checked ---------------------------------------------------


def project_root(top: Path, subfolder: str) -> Path:
    """`subfolder` of a fetched or unpacked tree, which must be a folder inside it."""
    root = top / subfolder if subfolder else top
    if subfolder and (
        not root.is_dir() or root.is_symlink() or not root.resolve().is_relative_to(top.resolve())
    ):
        raise ServiceError(
            _("There is no folder %(folder)s in the project.") % {"folder": subfolder},
            field="subfolder",
            code="subfolder_missing",
        )
    return root


def load_checked(root: Path, compose_files, variables, *, environment):
    """load_project with the environment's and the stack's variables; a refusal becomes
    ComposeInvalid (every problem with its file and line, in the reader's language)."""
    explicit = dict(environment.variables or {}) if environment is not None else {}
    explicit.update(variables or {})
    try:
        return load_project(root, compose_files, variables=explicit)
    except ComposeError as exc:
        problems = [translated_problem(problem) for problem in exc.problems] or [
            translated_problem(exc.as_problem())
            if hasattr(exc, "as_problem")
            else stacks.Problem("error", exc.message, code="compose-invalid")
        ]
        raise stacks.ComposeInvalid(
            stacks.explained(problems[0]), field="compose", problems=problems
        ) from None


# --- Git ------------------------------------------------------------------------------------


def sync_source(source_id: int) -> StackRevision | None:
    """Fetch the source's ref: a new revision when the project (merged compose or any file
    of the project folder) changed since the latest one, None otherwise. The outcome is
    recorded on the source (status, error code, message and hint, last commit); a branch
    that was rewritten (force-pushed) is a warning on the source and in the revision's
    message."""
    source = (
        GitSource.objects.select_related("stack", "stack__environment", "stack__target")
        .filter(pk=source_id)
        .first()
    )
    if source is None:
        return None
    stack = source.stack
    previous = source.last_sha
    try:
        with git_auth(source) as auth:
            remote = git.resolve_ref(source.url, source.ref, auth, **_git_options())
            if remote.known_hosts and not source.host_key:
                source.host_key = remote.known_hosts  # trusted on first use, then pinned
            warning = _force_push_warning(source, previous, remote, auth)
            message = _("Commit %(sha)s of %(ref)s") % {"sha": remote.sha[:10], "ref": source.ref}
            if warning:
                message = _("%(message)s (force-pushed)") % {"message": message}
            revision = _revision_from_tree(
                None, source, remote.sha, auth, message=message, check_actor=None
            )
    except SourceError as exc:
        _record_failure(source, exc.code, exc.message, exc.hint)
        return None
    except stacks.ComposeInvalid as exc:
        _record_failure(
            source,
            exc.code,
            exc.message,
            _("Fix the project in the repository and push, then fetch again."),
        )
        return None
    except ServiceError as exc:
        _record_failure(source, exc.code, exc.message, "")
        return None
    except OSError as exc:  # the worker's cache folder (full disk, permissions)
        logger.exception("fetching %s for %s", source.url, stack.name)
        _record_failure(
            source,
            "cache_error",
            _("The worker could not write the fetched project: %(error)s")
            % {"error": exc.strerror or exc},
            _("Check the worker's WINDFLOW_SOURCE_CACHE_DIR (free space, permissions)."),
        )
        return None
    _record_success(source, remote.sha, warning, revision)
    if warning:
        audit.record(
            "stack.force_push",
            obj=stack,
            changes={"ref": source.ref, "from": previous, "to": remote.sha},
            actor=None,
        )
    return revision


def _force_push_warning(source: GitSource, previous: str, remote, auth) -> str:
    """A warning when the branch moved to a commit whose history lacks the last one fetched
    (it was rewritten); "" for a fast-forward, a tag or a commit."""
    if not previous or remote.sha == previous or remote.kind not in ("branch", "head"):
        return ""
    if git.is_ancestor(source.url, previous, remote.sha, auth, **_git_options()):
        return ""
    return _(
        "%(ref)s was rewritten (force-pushed): %(old)s is no longer in its history, now at %(new)s."
    ) % {"ref": source.ref, "old": previous[:10], "new": remote.sha[:10]}


def revision_from_commit(
    actor: Membership | None, stack: Stack, sha: str, *, message: str = ""
) -> StackRevision:
    """A revision of `stack` from commit `sha` of its repository (fetched into the cache,
    loaded, checked): the new revision, or the latest one when this commit changes nothing
    in the project. `actor` None: the worker (a push, polling)."""
    if actor is not None:
        permissions.require(actor, "stack.change")
        stacks.require_change_in(actor, stack.environment)
    source = GitSource.objects.select_related("stack", "stack__environment").get(stack=stack)
    with git_auth(source) as auth:
        return _revision_from_tree(
            actor,
            source,
            sha,
            auth,
            message=message or _("Commit %(sha)s") % {"sha": sha[:10]},
            check_actor=actor,
        )


def _revision_from_tree(actor, source, sha, auth, *, message, check_actor) -> StackRevision:
    stack = source.stack
    tree = git.fetch(source.url, sha, auth, **_git_options())
    root = project_root(tree, source.subfolder)
    latest = stack.latest_revision
    variables = dict(latest.variables) if latest else {}
    secret_names = list(latest.secrets) if latest else []
    project = load_checked(root, source.compose_files, variables, environment=stack.environment)
    manifest = archives.manifest(root)
    if (
        latest is not None
        and latest.source_kind == SourceKind.GIT
        and latest.compose == project.compose_text
        and latest.manifest == manifest
        and latest.subfolder == source.subfolder
        and latest.compose_files == source.compose_files
    ):
        return latest
    stacks.require_valid(
        project.compose_text,
        variables=variables,
        secrets=secret_names,
        environment=stack.environment,
        project=stack.name,
        actor=check_actor,
        target=stack.target,
        origin=project,
    )
    try:
        return stacks.append_revision(
            actor,
            stack,
            compose=project.compose_text,
            variables=variables,
            secrets=secret_names,
            message=message,
            source={
                "source_kind": SourceKind.GIT,
                "commit_sha": sha,
                "source_ref": source.ref,
                "subfolder": source.subfolder,
                "compose_files": list(source.compose_files),
                "manifest": manifest,
            },
        )
    except Conflict as exc:
        if exc.code == "no_changes":
            return stack.latest_revision
        raise


def _record_failure(source: GitSource, code: str, message: str, hint: str) -> None:
    GitSource.objects.filter(pk=source.pk).update(
        status=SourceStatus.ERROR,
        error_code=(code or "invalid")[:64],
        error_message=redact(message or ""),
        error_hint=redact(hint or ""),
        host_key=source.host_key,
        last_checked_at=timezone.now(),
    )
    audit.record(
        "stack.fetch_failed",
        obj=source.stack,
        changes={"url": source.url, "ref": source.ref, "code": code},
        actor=None,
    )


def _record_success(source: GitSource, sha: str, warning: str, revision) -> None:
    with transaction.atomic():
        GitSource.objects.filter(pk=source.pk).update(
            status=SourceStatus.OK,
            last_sha=sha,
            error_code="",
            error_message="",
            error_hint="",
            warning=redact(warning) if warning else "",
            host_key=source.host_key,
            last_checked_at=timezone.now(),
        )


# --- A revision's project folder ------------------------------------------------------------


def materialize(revision: StackRevision) -> Path | None:
    """The project root of `revision` (its subfolder applied) as a read-only folder of the
    worker's cache: the commit checked out from the repository, or the archive unpacked
    from the database. None for a pasted compose text."""
    if revision.source_kind == SourceKind.GIT:
        source = GitSource.objects.select_related("stack", "stack__environment").get(
            stack_id=revision.stack_id
        )
        try:
            with git_auth(source) as auth:
                tree = git.fetch(source.url, revision.commit_sha, auth, **_git_options())
        except SourceError as exc:
            raise ServiceError(f"{exc.message} {exc.hint}".strip(), code=exc.code) from None
        return project_root(tree, revision.subfolder)
    if revision.source_kind == SourceKind.ARCHIVE:
        digest = revision.archive_digest
        cache = source_cache()

        def unpack(folder: Path) -> None:
            content = SourceArchive.objects.filter(digest=digest).values_list("content", flat=True)
            data = content.first()
            if data is None:
                raise ServiceError(
                    _("The archive of revision %(n)d is missing.") % {"n": revision.number},
                    code="archive_missing",
                )
            archives.unpack(bytes(data), folder / "tree", limits=archive_limits())

        entry = cache.entry(f"archive-{digest}", unpack)
        return project_root(archives.content_root(entry / "tree"), revision.subfolder)
    return None


def revision_project(revision: StackRevision, variables) -> tuple[Path, Project] | None:
    """The project of `revision` as a deployment sees it: its folder (materialize) and the
    project loaded from it with `variables` (the deployment's: the project's ``.env`` fills
    in under them, env files are interpolated with them). None for a pasted compose text.
    Raises ComposeInvalid when the folder no longer loads (a required env file missing...),
    every problem with its file and line."""
    folder = materialize(revision)
    if folder is None:
        return None
    files = list(revision.compose_files or ())
    return folder, load_checked(folder, files, variables, environment=None)
