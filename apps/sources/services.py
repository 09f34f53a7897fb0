"""Sources of a stack's project (issue 13), the request side: connect a Git repository
(create_git_stack), ask for a fetch (request_sync), upload an archive (upload_archive). What
the worker does (fetch, load, new revision, materialize a revision's folder) is in
:mod:`apps.sources.sync`, reached through :mod:`apps.sources.tasks`.

Every state change checks the actor's rights with the stacks' actions (stack.add,
stack.change) and is audited; a token or a private key never reaches a row, a log line, an
audit event or an answer: tokens are WindFlow secrets named here, deploy keys are server
credentials (apps.secrets) of which only the public half is shown."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from apps.accounts import permissions
from apps.accounts.models import Membership
from apps.audit import services as audit
from apps.environments import policy
from apps.secrets import services as secrets
from apps.stacks import services as stacks
from apps.stacks.choices import SourceKind
from apps.stacks.models import Stack, StackRevision
from windflow.engine import ssh
from windflow.engine.sources import archive as archives
from windflow.engine.sources import git
from windflow.engine.sources.errors import ArchiveError, SourceError
from windflow.errors import Conflict, NotFound, ServiceError

from .choices import GitAuth, SourceStatus
from .models import GitSource, SourceArchive
from .sync import (
    archive_limits,
    load_checked,
    materialize,
    project_root,
    revision_from_commit,
    sync_source,
    url_options,
)
from .tasks import sync_source as sync_source_task

__all__ = [
    "ArchiveRefused",
    "create_git_stack",
    "get_source_for",
    "materialize",
    "request_sync",
    "revision_from_commit",
    "sync_source",
    "update_source",
    "upload_archive",
]

MAX_COMPOSE_FILES = 10
MAX_POLL_INTERVAL = 7 * 24 * 3600
# A ref: a branch, a tag or a commit SHA (git check-ref-format, simplified and stricter).
REF_RE = re.compile(r"^(?!-)(?!.*\.\.)(?!.*//)(?!.*@\{)[A-Za-z0-9._/+-]{1,255}(?<![./])$")


class ArchiveRefused(ServiceError):
    """An uploaded archive that cannot be unpacked safely (code archive_unsafe,
    archive_too_large, archive_invalid), with the hint that says what to do."""

    def __init__(self, message: str, *, code: str, hint: str = ""):
        super().__init__(f"{message} {hint}".strip(), field="archive", code=code)
        self.hint = hint


# --- Access ---------------------------------------------------------------------------------


def get_source_for(actor: Membership | None, name, action="stack.view") -> GitSource:
    """The Git source of the stack named `name`, for `action` on the stack (NotFound and
    Forbidden as stacks.get_stack_for); NotFound when that stack does not follow a
    repository."""
    stack = stacks.get_stack_for(actor, name, action)
    source = GitSource.objects.select_related("stack", "stack__environment").filter(stack=stack)
    found = source.first()
    if found is None:
        raise NotFound(
            _("%(stack)s does not follow a Git repository.") % {"stack": stack.name},
            code="no_source",
        )
    return found


# --- Checks ---------------------------------------------------------------------------------


def clean_git_url(url: str) -> git.GitUrl:
    """An https://, ssh:// or user@host:path URL without credentials in it, whose host is not
    a loopback or private address (unless WINDFLOW_GIT_ALLOW_PRIVATE): the engine's checks."""
    url = (url or "").strip()
    try:
        return git.check_url(url, **url_options())
    except SourceError as exc:
        raise ServiceError(
            f"{exc.message} {exc.hint}".strip(), field="url", code=exc.code
        ) from None


def clean_ref(ref: str) -> str:
    ref = (ref or "").strip() or "main"
    if not REF_RE.match(ref):
        raise ServiceError(
            _("“%(ref)s” is not a branch, tag or commit name.") % {"ref": ref[:80]},
            field="ref",
        )
    return ref


def clean_subfolder(subfolder: str, *, field: str = "subfolder") -> str:
    """A relative folder inside the project ("" for its root), as a posix path."""
    value = (subfolder or "").strip().strip("/")
    if not value or value == ".":
        return ""
    path = PurePosixPath(value)
    if "\\" in value or any(part in ("..", "") for part in path.parts) or len(value) > 255:
        raise ServiceError(
            _("The subfolder must be a relative path inside the project, without “..”."),
            field=field,
        )
    return path.as_posix()


def clean_compose_files(files) -> list[str]:
    """Compose file names relative to the project folder, in order (empty: the default)."""
    if isinstance(files, str):
        files = [part for part in re.split(r"[,\n]", files)]
    files = [str(name).strip() for name in (files or ()) if str(name).strip()]
    if len(files) > MAX_COMPOSE_FILES:
        raise ServiceError(
            _("At most %(n)d compose files.") % {"n": MAX_COMPOSE_FILES}, field="compose_files"
        )
    return [clean_subfolder(name, field="compose_files") for name in files]


def _clean_poll_interval(value) -> int:
    try:
        value = int(value or 0)
    except (TypeError, ValueError):
        value = -1
    if value != 0 and not 60 <= value <= MAX_POLL_INTERVAL:
        raise ServiceError(
            _("The polling interval is 0 (off) or between 60 s and a week."),
            field="poll_interval",
        )
    return value


def _clean_auth(actor, auth, token_secret, environment, *, current=None) -> tuple[str, str]:
    """(auth, token secret name). Choosing the secret a stack reads its token from is for
    members allowed to use secrets (as the stacks' secrets); keeping the one chosen is not.
    `current`: the source being changed."""
    if auth not in GitAuth.values:
        raise ServiceError(_("Choose none, token or deploy_key."), field="auth")
    if auth != GitAuth.TOKEN:
        return auth, ""
    token_secret = (token_secret or "").strip()
    if token_secret not in stacks.available_secret_names(environment):
        raise ServiceError(
            _(
                "Pick the secret that holds the access token (a secret of the organisation or "
                "of this environment)."
            ),
            field="token_secret",
        )
    if current is None or (current.auth, current.token_secret) != (auth, token_secret):
        permissions.require(actor, "secret.use")
    return auth, token_secret


# --- Git stacks -----------------------------------------------------------------------------


def create_git_stack(
    actor: Membership,
    *,
    name: str,
    environment,
    target,
    url: str,
    ref: str = "main",
    subfolder: str = "",
    compose_files=(),
    auth: str = GitAuth.NONE,
    token_secret: str | None = None,
    poll_interval: int = 0,
    description: str = "",
    auto_rollback: bool = True,
    health_timeout: int = 120,
    grace_period: int = 10,
) -> Stack:
    """A new stack that follows a Git repository. It has no revision until the worker has
    fetched and checked the project: for a public repository or a token that happens now
    (queued), for a deploy key once the member has added its public half to the repository
    and pressed "Fetch now" (the key is generated here, its private half kept as a server
    credential)."""
    stack = stacks.new_stack(
        actor,
        name=name,
        environment=environment,
        target=target,
        description=description,
        auto_rollback=auto_rollback,
        health_timeout=health_timeout,
        grace_period=grace_period,
    )
    parsed = clean_git_url(url)
    auth, token_secret = _clean_auth(actor, auth, token_secret, environment)
    _require_auth_fits(auth, parsed)
    source = GitSource(
        url=parsed.url,
        ref=clean_ref(ref),
        subfolder=clean_subfolder(subfolder),
        compose_files=clean_compose_files(compose_files),
        auth=auth,
        token_secret=token_secret,
        poll_interval=_clean_poll_interval(poll_interval),
    )
    try:
        with transaction.atomic():
            stack.save()
            source.stack = stack
            source.save()
            if auth == GitAuth.DEPLOY_KEY:
                _new_deploy_key(actor, source, action="stack.add")
            audit.record(
                "stack.create",
                obj=stack,
                changes={**stacks.snapshot(stack), "source": _source_snapshot(source)},
                actor=actor,
            )
            if auth != GitAuth.DEPLOY_KEY:
                _queue_sync(source)
    except IntegrityError as exc:
        raise Conflict(
            _("A stack named %(name)s already exists.") % {"name": stack.name},
            field="name",
            code="duplicate",
        ) from exc
    return stack


def update_source(actor: Membership, source: GitSource, **fields) -> GitSource:
    """Change what a Git stack follows (URL, ref, subfolder, compose files, authentication,
    token secret, polling interval), then fetch again. A new host forgets the pinned host
    key; switching to a deploy key generates one (its public half is then shown)."""
    permissions.require(actor, "stack.change")
    stack = source.stack
    stacks.require_change_in(actor, stack.environment)
    unknown = set(fields) - set(GitSource.CHOSEN_FIELDS)
    if unknown:
        raise ServiceError(
            _("These settings cannot be changed here: %(names)s.")
            % {"names": ", ".join(sorted(unknown))}
        )
    before = _source_snapshot(source)
    url = fields.get("url", source.url)
    parsed = clean_git_url(url)
    auth = fields.get("auth", source.auth)
    token_secret = fields.get("token_secret", source.token_secret)
    auth, token_secret = _clean_auth(actor, auth, token_secret, stack.environment, current=source)
    _require_auth_fits(auth, parsed)
    if git_host(parsed.url) != git_host(source.url):
        source.host_key = ""
    source.url = parsed.url
    source.auth, source.token_secret = auth, token_secret
    if "ref" in fields:
        source.ref = clean_ref(fields["ref"])
    if "subfolder" in fields:
        source.subfolder = clean_subfolder(fields["subfolder"])
    if "compose_files" in fields:
        source.compose_files = clean_compose_files(fields["compose_files"])
    if "poll_interval" in fields:
        source.poll_interval = _clean_poll_interval(fields["poll_interval"])
    with transaction.atomic():
        source.save()
        if auth == GitAuth.DEPLOY_KEY and source.deploy_key_id is None:
            _new_deploy_key(actor, source, action="stack.change")
        changes = audit.diff(before, _source_snapshot(source))
        if changes:
            audit.record("stack.source_update", obj=stack, changes=changes, actor=actor)
        if auth != GitAuth.DEPLOY_KEY or source.last_sha:
            _queue_sync(source)
    return source


def git_host(url: str) -> str:
    try:
        return git.check_url(url, allow_private=True, allow_insecure=True).host
    except SourceError:
        return ""


def _require_auth_fits(auth: str, parsed) -> None:
    if auth == GitAuth.DEPLOY_KEY and parsed.scheme != "ssh":
        raise ServiceError(
            _("A deploy key needs an SSH URL (ssh://… or git@host:owner/repo.git)."),
            field="url",
        )
    if auth == GitAuth.TOKEN and parsed.scheme not in ("https", "http"):  # http: dev only
        raise ServiceError(_("A token needs an https:// URL."), field="url")


def _new_deploy_key(actor: Membership, source: GitSource, *, action: str) -> None:
    private_key, public_key = ssh.generate_ed25519_keypair(f"windflow-{source.stack.name}")
    credential = secrets.create_server_credential(
        actor,
        name=f"STACK_{source.stack.uid.hex.upper()}_DEPLOY_KEY",
        value=private_key,
        description=_("Deploy key of stack %(name)s") % {"name": source.stack.name},
        action=action,
    )
    source.deploy_key = credential
    source.public_key = public_key
    source.save(update_fields=["deploy_key", "public_key", "updated_at"])


def _source_snapshot(source: GitSource) -> dict:
    """What an audit event says about a source: never a token or a key."""
    return {
        "kind": "git",
        "url": source.url,
        "ref": source.ref,
        "subfolder": source.subfolder,
        "compose_files": source.compose_files,
        "auth": source.auth,
        **({"token_secret": source.token_secret} if source.token_secret else {}),
        "poll_interval": source.poll_interval,
    }


def _queue_sync(source: GitSource) -> None:
    from windflow.workers import send_on_commit

    GitSource.objects.filter(pk=source.pk).update(status=SourceStatus.FETCHING)
    source.status = SourceStatus.FETCHING
    send_on_commit(sync_source_task, source.pk)


def request_sync(actor: Membership, source: GitSource) -> GitSource:
    """Fetch now ("Fetch now", the API's source/sync): the worker fetches the ref and makes
    a revision when the commit or the merged compose changed."""
    permissions.require(actor, "stack.change")
    stacks.require_change_in(actor, source.stack.environment)
    with transaction.atomic():
        audit.record(
            "stack.fetch",
            obj=source.stack,
            changes={"url": source.url, "ref": source.ref},
            actor=actor,
        )
        _queue_sync(source)
    return source


# --- Uploaded archives ----------------------------------------------------------------------


def upload_archive(
    actor: Membership,
    *,
    stack_name: str,
    data,
    filename: str = "",
    environment=None,
    target=None,
    compose_files=None,
    subfolder: str = "",
    message: str = "",
) -> tuple[Stack, StackRevision, bool]:
    """A new revision of stack `stack_name` from a project archive (.tar.gz, .tgz, .tar or
    .zip; `data` bytes or a file), unpacked safely into a temporary folder, loaded and
    checked like any compose file, stored once per digest. Creates the stack when absent
    (then `environment` and `target` are required). Returns (stack, revision, created): an
    archive identical to the latest revision's gives that revision back. Nothing is left
    behind when it is refused."""
    content = _read_upload(data)
    compose_files = clean_compose_files(compose_files)
    subfolder = clean_subfolder(subfolder)
    stack = _stack_to_upload_to(actor, stack_name)
    if stack is None:
        stacks.new_stack(actor, name=stack_name, environment=environment, target=target)
        environment_now, variables, secret_names = environment, {}, []
    else:
        permissions.require(actor, "stack.change")
        stacks.require_change_in(actor, stack.environment)
        latest = stack.latest_revision
        environment_now = stack.environment
        variables = dict(latest.variables) if latest else {}
        secret_names = list(latest.secrets) if latest else []
    digest = archives.digest(content)
    with tempfile.TemporaryDirectory(prefix="windflow-upload-") as folder:
        root = _unpack(content, Path(folder) / "project", subfolder)
        project = load_checked(root, compose_files, variables, environment=environment_now)
        manifest = archives.manifest(root)
    source = {
        "source_kind": SourceKind.ARCHIVE,
        "archive_digest": digest,
        "subfolder": subfolder,
        "compose_files": compose_files,
        "manifest": manifest,
    }
    message = (message or "").strip() or _("Uploaded %(file)s") % {
        "file": (filename or "archive")[:150]
    }
    try:
        with transaction.atomic():
            _store_archive(digest, content, filename)
            if stack is None:
                stack = stacks.create_stack(
                    actor,
                    name=stack_name,
                    environment=environment,
                    target=target,
                    compose=project.compose_text,
                    message=message,
                    source=source,
                    origin=project,
                )
                return stack, stack.latest_revision, True
            try:
                revision = stacks.revise_stack(
                    actor,
                    stack,
                    compose=project.compose_text,
                    variables=variables,
                    secrets=secret_names,
                    message=message,
                    source=source,
                    origin=project,
                )
            except Conflict as exc:
                if exc.code != "no_changes":
                    raise
                return stack, stack.latest_revision, False
            return stack, revision, False
    except stacks.ComposeInvalid as exc:
        # Recorded again: the refusal's record went with the rolled back transaction.
        policy.record_refusal(actor, exc.problems, stack=stack_name)
        raise


def upload_cleaned(actor: Membership, data) -> tuple[Stack, StackRevision, bool]:
    """upload_archive from the upload form's or API's cleaned data: `archive` (the uploaded
    file), `name`, and optionally `environment`, `target`, `compose_files`, `subfolder`,
    `message`."""
    upload = data["archive"]
    return upload_archive(
        actor,
        stack_name=data["name"],
        data=upload,
        filename=upload.name or "",
        environment=data.get("environment"),
        target=data.get("target"),
        compose_files=data.get("compose_files"),
        subfolder=data.get("subfolder") or "",
        message=data.get("message") or "",
    )


# What a multipart body carries besides the archive (boundaries, headers, the other fields).
MULTIPART_SLACK = 64 * 1024


def refuse_oversized_body(content_length) -> None:
    """Refuse an upload request whose declared body is over the limit before it is read (a
    large body is never spooled to disk for nothing)."""
    try:
        length = int(content_length or 0)
    except (TypeError, ValueError):
        return
    limit = settings.WINDFLOW_UPLOAD_MAX_BYTES
    if length > limit + MULTIPART_SLACK:
        raise _too_large(length, limit)


def _read_upload(data) -> bytes:
    limit = settings.WINDFLOW_UPLOAD_MAX_BYTES
    size = getattr(data, "size", None)
    if size is None and isinstance(data, bytes | bytearray):
        size = len(data)
    if size is not None and size > limit:
        raise _too_large(size, limit)
    content = data if isinstance(data, bytes) else bytes(data.read(limit + 1))
    if len(content) > limit:
        raise _too_large(len(content), limit)
    if not content:
        raise ArchiveRefused(
            _("The archive is empty."), code="archive_invalid", hint=_("Upload a .tar.gz or .zip.")
        )
    return content


def _too_large(size: int, limit: int) -> ArchiveRefused:
    return ArchiveRefused(
        _("The archive is %(size)s MB: the limit is %(limit)s MB.")
        % {"size": round(size / 1024**2, 1), "limit": round(limit / 1024**2, 1)},
        code="archive_too_large",
        hint=_(
            "Leave build outputs and dependencies (node_modules, .venv, dist) out, with a "
            ".dockerignore or .gitignore."
        ),
    )


def _stack_to_upload_to(actor: Membership, name: str) -> Stack | None:
    try:
        return stacks.get_stack_for(actor, name, "stack.change")
    except NotFound:
        return None


def _unpack(content: bytes, dest: Path, subfolder: str) -> Path:
    """Unpack safely into `dest` (a temporary folder): the project root, `subfolder` of the
    archive's content (an archive of one folder counts as that folder)."""
    try:
        archives.unpack(content, dest, limits=archive_limits())
    except ArchiveError as exc:
        raise ArchiveRefused(exc.message, code=exc.code, hint=exc.hint) from None
    return project_root(archives.content_root(dest), subfolder)


def _store_archive(digest: str, content: bytes, filename: str) -> SourceArchive:
    archive, _created = SourceArchive.objects.get_or_create(
        digest=digest,
        defaults={
            "content": content,
            "size": len(content),
            "filename": PurePosixPath(filename or "archive").name[:255],
        },
    )
    return archive
