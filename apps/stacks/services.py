"""Stacks: create, revise (immutable revisions), change settings, delete, compare revisions,
and the checks every compose file passes before it is stored (windflow.engine.compose)."""

from __future__ import annotations

import difflib
import re
from dataclasses import replace

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from apps.accounts import permissions
from apps.accounts.models import Membership
from apps.audit import services as audit
from apps.environments import policy
from apps.environments.validators import validate_variables
from apps.secrets.models import SecretRef
from apps.tenants import index as operator_index
from windflow.engine.compose import Problem
from windflow.engine.compose.analyse import Analysis, analyse
from windflow.errors import Conflict, NotFound, ServiceError
from windflow.i18n import translated_problem

from .choices import SourceKind
from .models import STACK_NAME_PATTERN, Stack, StackRevision

NAME_RE = re.compile(STACK_NAME_PATTERN)
# Path segments of the stack pages and API that a stack name must not shadow.
RESERVED_NAMES = frozenset({"add", "validate", "upload"})
SETTINGS_FIELDS = (
    "description",
    "environment",
    "target",
    "auto_rollback",
    "health_timeout",
    "grace_period",
    "registry_credentials",
)
# Revision fields that say where its content came from (apps.sources fills them).
SOURCE_FIELDS = (
    "source_kind",
    "commit_sha",
    "archive_digest",
    "source_ref",
    "subfolder",
    "compose_files",
    "manifest",
)
MAX_SECRETS = 200
MAX_REPORTED_PROBLEMS = 50  # errors of a refused file, on the form and in the API
MAX_REGISTRIES = 20
REGISTRY_RE = re.compile(r"^[A-Za-z0-9.-]+(:\d{1,5})?$")
_MISSING_VARIABLE = re.compile(r'variable "([^"]+)"')


class ComposeInvalid(ServiceError):
    """The compose file (or its variables and secrets) does not pass the checks: `message`
    names the first error with its line; `problems` holds every error, and
    `field_messages` each of them (with its line and fix) on its field."""

    code = "compose_invalid"

    def __init__(
        self, message: str, *, field: str, problems: list[Problem], code: str | None = None
    ):
        super().__init__(message, field=field, code=code)
        self.problems = problems

    @property
    def field_messages(self) -> dict[str, list[str]]:
        fields: dict[str, list[str]] = {}
        for problem in self.problems[:MAX_REPORTED_PROBLEMS]:
            fields.setdefault(problem_field(problem, self.field), []).append(explained(problem))
        more = len(self.problems) - MAX_REPORTED_PROBLEMS
        if more > 0:
            fields.setdefault(self.field, []).append(
                ngettext(
                    "And %(n)d more problem: the live check lists them all.",
                    "And %(n)d more problems: the live check lists them all.",
                    more,
                )
                % {"n": more}
            )
        return fields


def problem_field(problem: Problem, default: str = "compose") -> str:
    """The form field (and API field) a refused file's problem belongs to."""
    return "secrets" if problem.code == "secret-missing" else default


def explained(problem: Problem) -> str:
    """A problem for a form or an API field: its line, its message and its fix."""
    message = _located(problem)
    return f"{message} {problem.hint}" if problem.hint else message


# --- Access: how pages, the API and consumers reach a stack and its revisions ----------------


def visible_stacks(actor: Membership | None, queryset=None):
    """The organisation's stacks that `actor` may see (`queryset`: loaded as the caller
    needs them; by default with their environment, target and current revision)."""
    if queryset is None:
        queryset = Stack.objects.select_related("environment", "target", "current_revision")
    return permissions.visible(actor, queryset, "stack.view")


def get_stack_for(actor: Membership | None, name, action="stack.view", *, queryset=None) -> Stack:
    """The stack named `name`, for `action` on it: NotFound when `actor` cannot see it
    (missing, another organisation's, not a stack name), Forbidden when their role does not
    allow `action`."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise NotFound()
    return permissions.get_visible(actor, visible_stacks(actor, queryset), action, name=name)


def get_revision(stack: Stack, number: int) -> StackRevision:
    """Revision `number` of `stack` (found through get_stack_for): NotFound, saying so, when
    the stack has no such revision."""
    revision = stack.revisions.select_related("stack").filter(number=number).first()
    if revision is None:
        raise NotFound(_("%(stack)s has no revision %(n)d.") % {"stack": stack.name, "n": number})
    return revision


# --- Checks -----------------------------------------------------------------------------


def available_secret_names(environment=None) -> list[str]:
    """Names of the secrets a stack in `environment` may use: organisation-wide ones and
    those of that environment."""
    refs = SecretRef.objects.filter(environment__isnull=True)
    if environment is not None:
        refs = SecretRef.objects.filter(environment__isnull=True) | SecretRef.objects.filter(
            environment=environment
        )
    return sorted(set(refs.order_by().values_list("name", flat=True)))


def normalise_compose(text) -> str:
    """Browsers send textareas with CRLF: store LF so revisions compare and diff cleanly."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    return (text or "").replace("\r\n", "\n").replace("\r", "\n")


def _clean_secrets(secrets) -> list[str]:
    if secrets is None:
        return []
    if isinstance(secrets, str) or not all(isinstance(name, str) for name in secrets):
        raise ServiceError(_("Secrets must be a list of secret names."), field="secrets")
    names = sorted({name.strip() for name in secrets if name.strip()})
    if len(names) > MAX_SECRETS:
        raise ServiceError(_("At most %(n)d secrets.") % {"n": MAX_SECRETS}, field="secrets")
    return names


def clean_registry_credentials(credentials, environment) -> list[dict[str, str]]:
    """[{registry, username, secret}]: one login per registry host, each password (or token)
    in a secret that a stack of `environment` may use."""
    if credentials is None:
        return []
    if not isinstance(credentials, list) or len(credentials) > MAX_REGISTRIES:
        raise ServiceError(
            _("Registry credentials must be a list of at most %(n)d logins.")
            % {"n": MAX_REGISTRIES},
            field="registry_credentials",
        )
    available = set(available_secret_names(environment))
    cleaned, seen = [], set()
    for entry in credentials:
        if not isinstance(entry, dict) or set(entry) != {"registry", "username", "secret"}:
            raise ServiceError(
                _("Each registry login needs exactly: registry, username, secret."),
                field="registry_credentials",
            )
        registry, username, secret = (
            str(entry["registry"]).strip(),
            str(entry["username"]).strip(),
            str(entry["secret"]).strip(),
        )
        if not REGISTRY_RE.match(registry) or registry in seen:
            raise ServiceError(
                _(
                    "%(registry)s is not a registry host (like ghcr.io or 10.0.0.5:5000), or "
                    "appears twice."
                )
                % {"registry": registry or '""'},
                field="registry_credentials",
            )
        if not username or len(username) > 200:
            raise ServiceError(
                _("The user name for %(registry)s is missing.") % {"registry": registry},
                field="registry_credentials",
            )
        if secret not in available:
            raise ServiceError(
                _(
                    "There is no secret %(secret)s for this environment (the password of "
                    "%(registry)s)."
                )
                % {"secret": secret, "registry": registry},
                field="registry_credentials",
            )
        seen.add(registry)
        cleaned.append({"registry": registry, "username": username, "secret": secret})
    return cleaned


def parse_registry_credentials(text: str) -> list[dict[str, str]]:
    """`registry user SECRET_NAME` per line (the settings form's textarea)."""
    credentials = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 3:
            raise ServiceError(
                _(
                    "Line %(n)d: write the registry, the user name and the secret's name, "
                    "separated by spaces."
                )
                % {"n": number},
                field="registry_credentials",
            )
        credentials.append(dict(zip(("registry", "username", "secret"), parts, strict=True)))
    return credentials


def format_registry_credentials(credentials) -> str:
    return "\n".join(
        f"{entry['registry']} {entry['username']} {entry['secret']}" for entry in credentials or ()
    )


def _clean_variables(variables) -> dict[str, str]:
    variables = {} if variables is None else variables
    try:
        validate_variables(variables)
    except ValidationError as exc:
        raise ServiceError(" ".join(exc.messages), field="variables") from exc
    return dict(variables)


def check_compose(
    compose,
    *,
    variables=None,
    secrets=(),
    environment=None,
    project: str = "stack",
    actor: Membership | None = None,
    target=None,
    origin=None,
) -> Analysis:
    """Analyse `compose` as it would deploy in `environment`: the environment's variables
    overlaid by the stack's; listed secrets stand in as placeholders (their values are never
    read here). Adds an error for each listed secret that does not exist there, and makes
    the message of each unset variable say how to provide it. With an `actor`, adds an error
    (``policy-refused``) for each host-level feature the compose policy does not let that
    member deploy in `environment` on `target`. `origin`: the project (engine Project) that
    `compose` was merged from: its `.env` fills the variables not given, and each finding
    names its file and line there. Never raises for bad input."""
    merged = dict((environment.variables or {}) if environment is not None else {})
    merged.update(variables or {})
    secrets = list(secrets or ())
    analysis = analyse(
        normalise_compose(compose),
        merged,
        project=project if NAME_RE.match(project or "") else "stack",
        placeholders=secrets,
        origin=origin,
    )
    problems = []
    if secrets:
        available = set(available_secret_names(environment))
        where = environment.name if environment is not None else _("the organisation")
        for name in secrets:
            if name not in available:
                problems.append(
                    Problem(
                        "error",
                        _("Secret %(name)s does not exist for %(where)s.")
                        % {"name": name, "where": where},
                        code="secret-missing",
                        path="secrets",
                        hint=_(
                            "Create it on the Secrets page (organisation-wide or for this "
                            "environment), or remove it from the stack's secrets."
                        ),
                    )
                )
        for name in sorted(set(secrets) & set(variables or {})):
            problems.append(
                Problem(
                    "warning",
                    _("%(name)s is both a variable and a secret: the variable's value is used.")
                    % {"name": name},
                    code="variable-shadows-secret",
                    path="variables",
                    hint=_("Remove the variable, or the secret, of that name."),
                )
            )
    for problem in analysis.problems:
        if problem.code == "variable-missing":
            match = _MISSING_VARIABLE.search(problem.message)
            name = match.group(1) if match else "NAME"
            problem = replace(
                problem,
                hint=_(
                    "Add %(name)s=value to the stack's variables (or the environment's), pick "
                    "a secret named %(name)s, or give a default: ${%(name)s:-value}."
                )
                % {"name": name},
            )
        problems.append(problem)
    if actor is not None:
        problems.extend(
            policy.refusals(actor, analysis.host_features, environment=environment, target=target)
        )
    analysis.problems = [translated_problem(problem) for problem in problems]
    if not analysis.ok:
        analysis.plan = None
    return analysis


def _located(problem: Problem) -> str:
    if problem.line and f"line {problem.line}" not in problem.message:
        return _("Line %(line)d: %(message)s") % {"line": problem.line, "message": problem.message}
    return problem.message


def require_valid(
    compose, *, variables, secrets, environment, project, actor, target, origin=None
) -> None:
    """Refuse (ComposeInvalid, or policy_refused) a compose text that check_compose finds an
    error in; a policy refusal is recorded for the platform's operators."""
    analysis = check_compose(
        compose,
        variables=variables,
        secrets=secrets,
        environment=environment,
        project=project,
        actor=actor,
        target=target,
        origin=origin,
    )
    if analysis.ok:
        return
    first = analysis.first_error()
    field = problem_field(first)
    message = explained(first)
    code = "policy_refused" if first.code == policy.CODE else None
    policy.record_refusal(actor, analysis.errors, stack=project)
    raise ComposeInvalid(message, field=field, problems=analysis.errors, code=code)


def _require_target_serves(target, environment) -> None:
    served = list(target.environments.all())
    if served and environment not in served:
        raise ServiceError(
            _(
                "%(target)s does not serve %(environment)s (it serves %(served)s): pick another "
                "server, or add the environment on the server's page."
            )
            % {
                "target": target.name,
                "environment": environment.name,
                "served": ", ".join(e.name for e in served),
            },
            field="target",
            code="target_not_in_environment",
        )


def _require_name(name: str) -> str:
    name = (name or "").strip()
    if not NAME_RE.match(name) or name in RESERVED_NAMES:
        if name in RESERVED_NAMES:
            message = _("“%(name)s” is reserved: choose another name.") % {"name": name}
        else:
            message = _(
                "Use lowercase letters, digits, '-' and '_', starting with a letter or a digit "
                "(at most 63): it becomes the compose project name on the server."
            )
        raise ServiceError(message, field="name")
    if Stack.objects.filter(name=name).exists():
        raise Conflict(
            _("A stack named %(name)s already exists.") % {"name": name},
            field="name",
            code="duplicate",
        )
    return name


def _require_place(environment, target) -> None:
    if environment is None:
        raise ServiceError(_("Choose an environment."), field="environment")
    if target is None:
        raise ServiceError(_("Choose a server."), field="target")
    _require_target_serves(target, environment)


def require_change_in(actor: Membership, *environments) -> None:
    """Changing a stack (settings, revisions, variables, secrets, registry logins) in a
    protected environment needs the right to deploy there: otherwise a developer could change
    what a protected environment runs, or move a stack out, revise it, deploy and move it
    back. A move needs that right on both sides."""
    for environment in environments:
        if environment is not None:
            permissions.require_deploy_to(actor, environment)


def _require_unmoved(stack_id: int, environment_id: int) -> None:
    """Lock the stack row (stack first: the lock order of apps.deployments.journal) and
    refuse when it moved to another environment since the rights were checked."""
    current = (
        Stack.objects.select_for_update()
        .filter(pk=stack_id)
        .values_list("environment_id", flat=True)
        .first()
    )
    if current != environment_id:
        raise Conflict(
            _("This stack moved to another environment meanwhile: reload it and try again."),
            code="moved",
        )


def _require_secret_use(actor: Membership, added) -> None:
    """Choosing which secrets a stack may read is for members allowed to use secrets
    (operators and up); developers deploy and edit stacks with the secrets already chosen."""
    if added:
        permissions.require(actor, "secret.use")


def _full_clean(stack: Stack) -> None:
    try:
        stack.full_clean(exclude=["name", "current_revision", "created_by"], validate_unique=False)
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise ServiceError(" ".join(messages), field=field) from exc


# --- Stacks -----------------------------------------------------------------------------


def new_stack(
    actor: Membership,
    *,
    name: str,
    environment,
    target,
    description: str = "",
    auto_rollback: bool = True,
    health_timeout: int = 120,
    grace_period: int = 10,
) -> Stack:
    """A new stack, checked (rights, name, place) but not saved: create_stack saves it with
    its first revision, apps.sources with its Git source."""
    permissions.require(actor, "stack.add")
    name = _require_name(name)
    _require_place(environment, target)
    require_change_in(actor, environment)
    stack = Stack(
        name=name,
        description=(description or "").strip(),
        environment=environment,
        target=target,
        auto_rollback=bool(auto_rollback),
        health_timeout=health_timeout,
        grace_period=grace_period,
        created_by=actor.user,
    )
    _full_clean(stack)
    return stack


def create_stack(
    actor: Membership,
    *,
    name: str,
    environment,
    target,
    compose,
    variables=None,
    secrets=(),
    message: str = "",
    description: str = "",
    auto_rollback: bool = True,
    health_timeout: int = 120,
    grace_period: int = 10,
    source: dict | None = None,
    origin=None,
) -> Stack:
    """A new stack with its first revision; refused unless the compose file passes every
    check for that environment. `source`: where the content came from (revision fields:
    source_kind, commit_sha, archive_digest, manifest...; apps.sources); `origin`: the
    project the compose text was merged from (check_compose)."""
    stack = new_stack(
        actor,
        name=name,
        environment=environment,
        target=target,
        description=description,
        auto_rollback=auto_rollback,
        health_timeout=health_timeout,
        grace_period=grace_period,
    )
    name = stack.name
    variables = _clean_variables(variables)
    secrets = _clean_secrets(secrets)
    _require_secret_use(actor, secrets)
    compose = normalise_compose(compose)
    require_valid(
        compose,
        variables=variables,
        secrets=secrets,
        environment=environment,
        project=name,
        actor=actor,
        target=target,
        origin=origin,
    )
    try:
        with transaction.atomic():
            stack.save()
            revision = _new_revision(
                actor, stack, 1, compose, variables, secrets, message, source=source
            )
            audit.record(
                "stack.create",
                obj=stack,
                changes={**snapshot(stack), "revision": revision.number, **_provenance(revision)},
                actor=actor,
            )
            operator_index.stack_added()
    except IntegrityError as exc:
        raise Conflict(
            _("A stack named %(name)s already exists.") % {"name": name},
            field="name",
            code="duplicate",
        ) from exc
    return stack


def revise_stack(
    actor: Membership,
    stack: Stack,
    *,
    compose,
    variables=None,
    secrets=(),
    message: str = "",
    source: dict | None = None,
    origin=None,
) -> StackRevision:
    """A new revision (latest + 1); an identical content is refused (`no_changes`).
    `source` and `origin`: as create_stack."""
    permissions.require(actor, "stack.change")
    require_change_in(actor, stack.environment)
    variables = _clean_variables(variables)
    secrets = _clean_secrets(secrets)
    compose = normalise_compose(compose)
    require_valid(
        compose,
        variables=variables,
        secrets=secrets,
        environment=stack.environment,
        project=stack.name,
        actor=actor,
        target=stack.target,
        origin=origin,
    )
    return append_revision(
        actor,
        stack,
        compose=compose,
        variables=variables,
        secrets=secrets,
        message=message,
        source=source,
        checked_environment=stack.environment_id,
    )


def append_revision(
    actor: Membership | None,
    stack: Stack,
    *,
    compose: str,
    variables: dict,
    secrets: list,
    message: str = "",
    source: dict | None = None,
    checked_environment: int | None = None,
) -> StackRevision:
    """Store the next revision of `stack` (content already checked by the caller) and audit
    it; `actor` None: the worker (a Git commit). Refused (`no_changes`) when nothing differs
    from the latest revision, or when the stack moved since `checked_environment`."""
    with transaction.atomic():
        _require_unmoved(
            stack.pk,
            stack.environment_id if checked_environment is None else checked_environment,
        )
        latest = stack.revisions.order_by("-number").first()
        if actor is not None:
            _require_secret_use(actor, set(secrets) - set(latest.secrets if latest else ()))
        if latest is not None and _same_content(latest, compose, variables, secrets, source):
            raise Conflict(
                _("Nothing changed since revision %(n)d.") % {"n": latest.number},
                code="no_changes",
            )
        number = (latest.number if latest else 0) + 1
        revision = _new_revision(
            actor, stack, number, compose, variables, secrets, message, source=source
        )
        audit.record(
            "stack.revise",
            obj=stack,
            changes={
                "revision": revision.number,
                "message": revision.message,
                **_provenance(revision),
            },
            actor=actor,
        )
    return revision


def _same_content(latest: StackRevision, compose, variables, secrets, source) -> bool:
    source = source or {}
    return (
        latest.compose == compose
        and latest.variables == variables
        and sorted(latest.secrets) == sorted(secrets)
        and latest.source_kind == source.get("source_kind", SourceKind.INLINE)
        and latest.commit_sha == source.get("commit_sha", "")
        and latest.manifest == source.get("manifest", {})
        and latest.compose_files == source.get("compose_files", [])
        and latest.subfolder == source.get("subfolder", "")
    )


def _new_revision(
    actor, stack, number, compose, variables, secrets, message, *, source=None
) -> StackRevision:
    return StackRevision.objects.create(
        stack=stack,
        number=number,
        compose=compose,
        variables=variables,
        secrets=secrets,
        message=(message or "").strip()[:200],
        author=actor.user if actor is not None else None,
        **{field: value for field, value in (source or {}).items() if field in SOURCE_FIELDS},
    )


def source_of(revision: StackRevision | None) -> dict | None:
    """Where `revision`'s content came from, to carry into a revision made from it on the
    page or the API (new variables, an edited compose): it keeps the project's files (the
    commit or the archive). None for a pasted compose text."""
    if revision is None or revision.source_kind == SourceKind.INLINE:
        return None
    return {field: getattr(revision, field) for field in SOURCE_FIELDS}


def _provenance(revision: StackRevision) -> dict:
    """Where a revision came from, for its audit event (nothing for a pasted compose)."""
    if revision.source_kind == SourceKind.INLINE:
        return {}
    return {
        "source": revision.source_kind,
        **({"commit": revision.commit_sha} if revision.commit_sha else {}),
        **({"archive": revision.archive_digest} if revision.archive_digest else {}),
    }


def snapshot(stack: Stack) -> dict:
    """A stack's settings as its audit events record them."""
    return {
        "description": stack.description,
        "environment": stack.environment.name if stack.environment_id else None,
        "target": stack.target.name if stack.target_id else None,
        "auto_rollback": stack.auto_rollback,
        "health_timeout": stack.health_timeout,
        "grace_period": stack.grace_period,
        "registry_credentials": stack.registry_credentials,
    }


def update_stack(actor: Membership, stack: Stack, **settings) -> Stack:
    """Change where and how the stack deploys (not its content: that is a revision)."""
    permissions.require(actor, "stack.change")
    unknown = set(settings) - set(SETTINGS_FIELDS)
    if unknown:
        raise ServiceError(
            _("These settings cannot be changed here: %(names)s.")
            % {"names": ", ".join(sorted(unknown))}
        )
    before = snapshot(stack)
    environment_before = stack.environment_id
    environment = settings.get("environment", stack.environment)
    target = settings.get("target", stack.target)
    require_change_in(actor, stack.environment)
    if environment is not None and environment.pk != stack.environment_id:
        require_change_in(actor, environment)
    if target is not None and target.pk != stack.target_id and stack.current_revision_id:
        raise Conflict(
            _(
                "%(stack)s runs on %(server)s: remove it from %(server)s first, then change "
                "its server."
            )
            % {"stack": stack.name, "server": stack.target.name},
            field="target",
            code="deployed",
        )
    _require_place(environment, target)
    moved = environment.pk != stack.environment_id
    if moved or target.pk != stack.target_id:
        latest = stack.latest_revision
        if latest is not None:
            analysis = check_compose(
                latest.compose,
                variables=latest.variables,
                secrets=latest.secrets,
                environment=environment,
                project=stack.name,
                actor=actor,
                target=target,
            )
            # A new server only changes what the compose policy allows (a shared engine).
            errors = (
                analysis.errors if moved else [p for p in analysis.errors if p.code == policy.CODE]
            )
            if errors:
                policy.record_refusal(actor, errors, stack=stack.name)
                raise ServiceError(
                    _("Revision %(n)d would not work in %(environment)s: %(problem)s")
                    % {
                        "n": latest.number,
                        "environment": environment.name,
                        "problem": _located(errors[0]),
                    },
                    field="environment" if moved else "target",
                    code="policy_refused" if errors[0].code == policy.CODE else None,
                )
    if "registry_credentials" in settings:
        settings["registry_credentials"] = clean_registry_credentials(
            settings["registry_credentials"], environment
        )
        _require_secret_use(
            actor,
            {entry["secret"] for entry in settings["registry_credentials"]}
            - {entry["secret"] for entry in stack.registry_credentials},
        )
    for field in SETTINGS_FIELDS:
        if field in settings:
            value = settings[field]
            if field == "description":
                value = (value or "").strip()
            setattr(stack, field, value)
    _full_clean(stack)
    with transaction.atomic():
        _require_unmoved(stack.pk, environment_before)
        stack.save()
        changes = audit.diff(before, snapshot(stack))
        if changes:
            audit.record("stack.update", obj=stack, changes=changes, actor=actor)
    return stack


def active_deployments(stack: Stack):
    from apps.deployments.choices import ACTIVE_STATUSES

    return stack.deployments.filter(status__in=ACTIVE_STATUSES)


def delete_stack(actor: Membership, stack: Stack) -> None:
    """Delete a stack and its revisions; refused while it runs on its server or while a
    deployment of it is queued or running."""
    permissions.require(actor, "stack.delete")
    require_change_in(actor, stack.environment)
    with transaction.atomic():
        stack = Stack.objects.select_for_update().select_related("target").get(pk=stack.pk)
        if stack.current_revision_id:
            raise Conflict(
                _(
                    "%(stack)s is deployed on %(server)s. Remove it from the server first, "
                    "then delete it."
                )
                % {"stack": stack.name, "server": stack.target.name},
                code="deployed",
            )
        if active_deployments(stack).exists():
            raise Conflict(
                _(
                    "A deployment of %(stack)s is queued or running: wait for it to finish or "
                    "cancel it, then delete the stack."
                )
                % {"stack": stack.name},
                code="deployment_active",
            )
        audit.record(
            "stack.delete",
            obj=stack,
            changes={**snapshot(stack), "revisions": stack.revisions.count()},
            actor=actor,
        )
        stack.delete()
        operator_index.stack_removed()


# --- Revisions --------------------------------------------------------------------------

_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")


def diff_revisions(old: StackRevision | None, new: StackRevision) -> dict:
    """What changed from `old` (None: nothing) to `new`: the compose file as unified diff
    lines ({"kind": header|hunk|add|remove|context, "text", "old", "new" line numbers}),
    variables added / removed / changed and secrets added / removed."""
    old_compose = old.compose if old else ""
    old_vars = dict(old.variables) if old else {}
    old_secrets = set(old.secrets) if old else set()
    raw = list(
        difflib.unified_diff(
            old_compose.splitlines(),
            new.compose.splitlines(),
            fromfile=f"r{old.number}" if old else "empty",
            tofile=f"r{new.number}",
            lineterm="",
        )
    )
    lines = []
    old_no = new_no = 0
    for index, text in enumerate(raw):
        if index < 2:
            lines.append({"kind": "header", "text": text, "old": None, "new": None})
            continue
        hunk = _HUNK.match(text)
        if hunk:
            old_no, new_no = int(hunk.group(1)), int(hunk.group(2))
            lines.append({"kind": "hunk", "text": text, "old": None, "new": None})
        elif text.startswith("+"):
            lines.append({"kind": "add", "text": text, "old": None, "new": new_no})
            new_no += 1
        elif text.startswith("-"):
            lines.append({"kind": "remove", "text": text, "old": old_no, "new": None})
            old_no += 1
        else:
            lines.append({"kind": "context", "text": text, "old": old_no, "new": new_no})
            old_no += 1
            new_no += 1
    new_vars = dict(new.variables)
    variables = {
        "added": {k: new_vars[k] for k in sorted(set(new_vars) - set(old_vars))},
        "removed": {k: old_vars[k] for k in sorted(set(old_vars) - set(new_vars))},
        "changed": {
            k: [old_vars[k], new_vars[k]]
            for k in sorted(set(old_vars) & set(new_vars))
            if old_vars[k] != new_vars[k]
        },
    }
    secrets = {
        "added": sorted(set(new.secrets) - old_secrets),
        "removed": sorted(old_secrets - set(new.secrets)),
    }
    files = changed_files(old, new)
    return {
        "from": old.number if old else None,
        "to": new.number,
        "lines": lines,
        "variables": variables,
        "secrets": secrets,
        "files": files,
        "changed": bool(
            lines or any(variables.values()) or any(secrets.values()) or any(files.values())
        ),
    }


def changed_files(old: StackRevision | None, new: StackRevision) -> dict[str, list[str]]:
    """The project files added, removed and modified from `old` (None: nothing) to `new`,
    compared by their manifests ({path: sha256}); empty lists for pasted compose texts."""
    before = dict(old.manifest or {}) if old else {}
    after = dict(new.manifest or {})
    return {
        "added": sorted(set(after) - set(before)),
        "removed": sorted(set(before) - set(after)),
        "modified": sorted(
            path for path in set(before) & set(after) if before[path] != after[path]
        ),
    }


def revision_pair(stack: Stack, from_number=None, to_number=None):
    """The (old, new) revisions to compare: `to` defaults to the latest, `from` to the one
    before `to` (None for revision 1). Raises ServiceError for unknown numbers."""

    def number(value, field):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ServiceError(
                _("“%(value)s” is not a revision number.") % {"value": value}, field=field
            ) from None

    def get(n, field):
        try:
            return get_revision(stack, n)
        except NotFound as exc:
            raise ServiceError(exc.message, field=field, code="not_found") from None

    if to_number in (None, ""):
        new = stack.latest_revision
        if new is None:
            raise ServiceError(_("This stack has no revision yet."), code="not_found")
    else:
        new = get(number(to_number, "to"), "to")
    if from_number in (None, ""):
        old = stack.revisions.filter(number__lt=new.number).order_by("-number").first()
    else:
        old = get(number(from_number, "from"), "from")
    return old, new


def rollback_targets(stack: Stack) -> set[int]:
    """Revisions that a rollback may go to: those that once deployed with success, except
    the one that runs now."""
    return succeeded_revision_ids(stack) - {stack.current_revision_id}


def failed_latest(stack: Stack, latest: StackRevision | None):
    """The last deployment of the latest revision when it failed or was rolled back and that
    revision does not run: the stack's page then offers to fix it, not to deploy it again."""
    from apps.deployments.choices import DeploymentStatus

    if latest is None or stack.current_revision_id == latest.pk:
        return None
    last = latest.deployments.order_by("-created_at", "-pk").first()
    if last is not None and last.status in (DeploymentStatus.FAILED, DeploymentStatus.ROLLED_BACK):
        return last
    return None


def succeeded_revision_ids(stack: Stack) -> set[int]:
    """Revisions of the stack that once deployed with success (rollback targets)."""
    from apps.deployments.choices import DeploymentStatus

    return set(
        stack.deployments.filter(status=DeploymentStatus.SUCCEEDED).values_list(
            "revision_id", flat=True
        )
    )
