"""The compose policy: which role may deploy each host-level compose feature.

A feature (windflow.engine.compose.hostaccess.FEATURES: privileged, host namespaces, host
paths, the Docker socket, cap_add, devices, security_opt, sysctls) gives a container part of
the server it runs on. The organisation's policy names, for each, the least role that may
deploy it, or nobody; an environment may override a feature's rule. Bind mounts of host
directories on the policy's allow-list need no feature (sensitive paths always do).

The default is admin for every feature: whoever may deploy a privileged container, mount
``/`` or the Docker socket is root on that server, which is what adding and changing
servers (``target.add``, ``target.change``) already takes. Developers and operators deploy
none of them until an owner or admin says otherwise.

On a Docker engine shared between organisations (``apps.targets.services.is_shared_engine``)
every feature is refused to everyone, whatever the policy says, and so are volumes and
networks that the stack does not own (external or named: another organisation's, there).

Both the save path (apps.stacks.services) and the deploy start (apps.deployments.runner)
call :func:`refusals`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.db import connection, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.accounts import permissions
from apps.accounts.choices import Role
from apps.accounts.models import Membership
from apps.audit import services as audit
from apps.tenants import index as operator_index
from windflow.engine.compose import Problem
from windflow.engine.compose.hostaccess import (
    FEATURES,
    FOREIGN_RESOURCE,
    HostFeature,
    normalise_host_path,
    outside_allow_list,
    valid_allow_list_entry,
)
from windflow.errors import ServiceError
from windflow.i18n import translated

from .models import ComposePolicy, Environment

NOBODY = "nobody"
DEFAULT_LEVEL = Role.ADMIN.value
# The levels a rule may take, from the most open to the closed one.
LEVELS = (Role.DEVELOPER.value, Role.OPERATOR.value, Role.ADMIN.value, Role.OWNER.value, NOBODY)
MAX_ALLOWED_PATHS = 50
MAX_PATH_LENGTH = 500
CODE = "policy-refused"

FEATURE_LABELS = {
    "privileged": gettext_lazy("Privileged containers (privileged: true)"),
    "host_namespaces": gettext_lazy(
        "Host namespaces (network_mode, pid, ipc, uts or userns_mode: host)"
    ),
    "host_path": gettext_lazy("Bind mounts of host paths outside the allow-list"),
    "docker_socket": gettext_lazy("The Docker socket (docker.sock, /var/run, /run)"),
    "cap_add": gettext_lazy("Added Linux capabilities (cap_add)"),
    "devices": gettext_lazy("Host devices (devices)"),
    "security_opt": gettext_lazy(
        "Loosened confinement (security_opt: seccomp/apparmor unconfined…)"
    ),
    "sysctls": gettext_lazy("Kernel parameters (sysctls)"),
}
assert set(FEATURE_LABELS) == set(FEATURES)

LEVEL_LABELS = {
    Role.DEVELOPER.value: gettext_lazy("Developers and above"),
    Role.OPERATOR.value: gettext_lazy("Operators and above"),
    Role.ADMIN.value: gettext_lazy("Admins and owners"),
    Role.OWNER.value: gettext_lazy("Owners only"),
    NOBODY: gettext_lazy("Nobody"),
}


def _who(level: str) -> str:
    return {
        Role.DEVELOPER.value: _("developers, operators, admins and owners"),
        Role.OPERATOR.value: _("operators, admins and owners"),
        Role.ADMIN.value: _("admins and owners"),
        Role.OWNER.value: _("owners"),
    }.get(level, _("nobody"))


# --- Reading ----------------------------------------------------------------------------------


def get_policy() -> ComposePolicy:
    """The organisation's policy (created with the defaults when missing)."""
    policy = ComposePolicy.objects.filter(pk=ComposePolicy.SINGLETON).first()
    if policy is None:
        policy, _created = ComposePolicy.objects.get_or_create(pk=ComposePolicy.SINGLETON)
    return policy


def organisation_rules(policy: ComposePolicy | None = None) -> dict[str, str]:
    """feature -> level, every feature present (the default where the policy says nothing)."""
    stored = (policy or get_policy()).rules or {}
    return {
        feature: stored[feature] if stored.get(feature) in LEVELS else DEFAULT_LEVEL
        for feature in FEATURES
    }


def effective_rules(
    environment: Environment | None, policy: ComposePolicy | None = None
) -> dict[str, tuple[str, str]]:
    """feature -> (level, "environment" | "organisation") in `environment`."""
    rules = {
        feature: (level, "organisation") for feature, level in organisation_rules(policy).items()
    }
    overrides = (environment.compose_overrides or {}) if environment is not None else {}
    for feature, level in overrides.items():
        if feature in rules and level in LEVELS:
            rules[feature] = (level, "environment")
    return rules


def describe(environment: Environment | None = None) -> dict:
    """The policy as the API shows it: rules, allowed paths, and (for an environment) its
    overrides and the resulting rules."""
    policy = get_policy()
    data = {
        "features": {key: str(label) for key, label in FEATURE_LABELS.items()},
        "levels": list(LEVELS),
        "rules": organisation_rules(policy),
        "allowed_paths": list(policy.allowed_paths or []),
        "updated_at": policy.updated_at,
    }
    if environment is not None:
        data = {
            "environment": environment.slug,
            "overrides": dict(environment.compose_overrides or {}),
            "effective": {
                feature: {"level": level, "from": source}
                for feature, (level, source) in effective_rules(environment, policy).items()
            },
            "allowed_paths": data["allowed_paths"],
        }
    return data


# --- Cleaning input -----------------------------------------------------------------------------


def _level_error(feature: str, level) -> str:
    return _("“%(level)s” is not a level for %(feature)s: use one of %(levels)s.") % {
        "level": level,
        "feature": feature,
        "levels": ", ".join(LEVELS),
    }


def clean_rules(
    rules, *, field: str = "rules", allow_inherit: bool = False
) -> dict[str, str | None]:
    """{feature: level}; with `allow_inherit`, None or "" means "no override"."""
    if not isinstance(rules, Mapping):
        raise ServiceError(_("Rules must be an object of feature: level."), field=field)
    cleaned: dict[str, str | None] = {}
    for feature, level in rules.items():
        if feature not in FEATURES:
            raise ServiceError(
                _("“%(feature)s” is not a host-level feature: use one of %(features)s.")
                % {"feature": feature, "features": ", ".join(FEATURES)},
                field=field,
                code="unknown_feature",
            )
        if allow_inherit and level in (None, ""):
            cleaned[feature] = None
            continue
        if not isinstance(level, str) or level not in LEVELS:
            raise ServiceError(_level_error(feature, level), field=field, code="unknown_level")
        cleaned[feature] = level
    return cleaned


def clean_allowed_paths(paths, *, field: str = "allowed_paths") -> list[str]:
    """Absolute host directories, normalised, without duplicates; sensitive ones refused."""
    if isinstance(paths, str) or not isinstance(paths, Iterable):
        raise ServiceError(_("Allowed paths must be a list of host paths."), field=field)
    paths = list(paths)
    if len(paths) > MAX_ALLOWED_PATHS:
        raise ServiceError(
            _("At most %(n)d allowed paths.") % {"n": MAX_ALLOWED_PATHS}, field=field
        )
    cleaned: list[str] = []
    for path in paths:
        if not isinstance(path, str) or len(path) > MAX_PATH_LENGTH:
            raise ServiceError(
                _("Each allowed path must be a host path of at most %(n)d characters.")
                % {"n": MAX_PATH_LENGTH},
                field=field,
            )
        reason = valid_allow_list_entry(path)
        if reason is not None:
            raise ServiceError(
                _(
                    "%(path)s cannot be allowed: it is %(reason)s. Write an absolute directory "
                    "such as /srv/app."
                )
                % {"path": path.strip() or '""', "reason": reason},
                field=field,
                code="invalid_path",
            )
        normal = normalise_host_path(path)
        if normal not in cleaned:
            cleaned.append(normal)
    return cleaned


def parse_paths(text: str) -> list[str]:
    """One path per line (the page's textarea); blank lines and # comments ignored."""
    return [
        line.strip()
        for line in (text or "").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


# --- Changing -------------------------------------------------------------------------------------


def update_policy(actor: Membership, *, rules=None, allowed_paths=None) -> ComposePolicy:
    """Change the organisation's rules (the features given; the others keep theirs) and/or
    its allowed host paths. Owners and admins only; every change is audited."""
    permissions.require(actor, "compose_policy.change")
    new_rules = clean_rules(rules) if rules is not None else None
    new_paths = clean_allowed_paths(allowed_paths) if allowed_paths is not None else None
    with transaction.atomic():
        get_policy()
        policy = ComposePolicy.objects.select_for_update().get(pk=ComposePolicy.SINGLETON)
        before = {"rules": organisation_rules(policy), "allowed_paths": list(policy.allowed_paths)}
        if new_rules is not None:
            policy.rules = {**organisation_rules(policy), **new_rules}
        if new_paths is not None:
            policy.allowed_paths = new_paths
        after = {"rules": organisation_rules(policy), "allowed_paths": list(policy.allowed_paths)}
        changes = audit.diff(before, after)
        if changes:
            policy.save()
            audit.record(
                "compose_policy.update",
                obj=policy,
                changes={
                    **_rule_changes(before["rules"], after["rules"]),
                    **(
                        {"allowed_paths": changes["allowed_paths"]}
                        if "allowed_paths" in changes
                        else {}
                    ),
                },
                actor=actor,
            )
    return policy


def _rule_changes(before: dict, after: dict) -> dict:
    return {
        f"rules.{feature}": [before.get(feature), after.get(feature)]
        for feature in FEATURES
        if before.get(feature) != after.get(feature)
    }


def set_overrides(
    actor: Membership, environment: Environment, overrides, *, replace: bool = True
) -> Environment:
    """The environment's own rule for some features (None or "": follow the organisation).
    `replace` sets exactly these overrides; otherwise they are merged into the current ones.
    Owners and admins only; audited."""
    permissions.require(actor, "compose_policy.change")
    cleaned = clean_rules(overrides, field="overrides", allow_inherit=True)
    with transaction.atomic():
        environment = Environment.objects.select_for_update().get(pk=environment.pk)
        before = dict(environment.compose_overrides or {})
        current = {} if replace else dict(before)
        for feature, level in cleaned.items():
            if level is None:
                current.pop(feature, None)
            else:
                current[feature] = level
        after = {feature: current[feature] for feature in FEATURES if feature in current}
        if after != before:
            environment.compose_overrides = after
            environment.save(update_fields=["compose_overrides", "updated_at"])
            audit.record(
                "environment.compose_policy",
                obj=environment,
                changes={
                    f"overrides.{feature}": [before.get(feature), after.get(feature)]
                    for feature in FEATURES
                    if before.get(feature) != after.get(feature)
                },
                actor=actor,
            )
    return environment


# --- Checking ---------------------------------------------------------------------------------


def member_of_user(user_id) -> Membership | None:
    """The membership, read fresh from the database (never a cache: the role at deploy time
    is the role now), of a user in the active organisation."""
    tenant = getattr(connection, "tenant", None)
    if user_id is None or tenant is None or getattr(tenant, "pk", None) is None:
        return None
    return (
        Membership.objects.select_related("user")
        .filter(user_id=user_id, organization_id=tenant.pk, user__is_active=True)
        .first()
    )


def _shared(target) -> bool:
    if target is None:
        return False
    from apps.targets.services import is_shared_engine

    return is_shared_engine(target)


def refusals(
    member: Membership | None,
    features: Iterable[HostFeature],
    *,
    environment: Environment | None,
    target=None,
) -> list[Problem]:
    """One error Problem (code ``policy-refused``) for each host-level feature in
    `features` that `member` may not deploy in `environment` on `target`: the message names
    the feature, the service and the place, who may, and the member's role."""
    features = list(features)
    if not features:
        return []
    policy = get_policy()
    shared = _shared(target)
    if not shared:
        # Volumes and networks outside the project matter only where others' may be.
        features = [f for f in features if f.feature in FEATURES]
        features = outside_allow_list(features, policy.allowed_paths or [])
    rules = effective_rules(environment, policy)
    where = environment.name if environment is not None else _("this organisation")
    role = member.get_role_display() if member is not None else _("no role")
    problems = []
    for found in features:
        level, source = rules.get(found.feature, (NOBODY, "organisation"))
        if not shared and permissions.role_allows(member, level):
            continue
        if found.feature == FOREIGN_RESOURCE:
            label = _("volumes and networks that the stack does not own")
        else:
            label = FEATURE_LABELS.get(found.feature, found.feature)
        if shared:
            message = _(
                "%(detail)s: %(target)s is a Docker engine shared with other organisations, "
                "where nobody may deploy %(label)s (compose policy: %(feature)s)."
            ) % {
                "detail": translated(found.detail),
                "target": target.name,
                "label": label,
                "feature": found.feature,
            }
            hint = _("Remove it, or deploy the stack to a server of your own.")
        else:
            message = _(
                "%(detail)s: the compose policy (%(feature)s, %(source)s rule) lets %(who)s "
                "deploy %(label)s in %(where)s; your role is %(role)s."
            ) % {
                "detail": translated(found.detail),
                "feature": found.feature,
                "source": _("environment") if source == "environment" else _("organisation"),
                "who": _who(level),
                "label": label,
                "where": where,
                "role": role,
            }
            hint = _(
                "Remove it, ask a member who may deploy it, or ask an owner or admin to change "
                "the compose policy."
            )
        problems.append(
            Problem(
                "error",
                message,
                line=found.line,
                path=found.path,
                code=CODE,
                hint=hint,
            )
        )
    return problems


def record_refusal(member: Membership | None, problems: Iterable[Problem], *, stack: str) -> None:
    """A save or a deployment of `stack` that the policy refused (`problems` with code
    ``policy-refused``), as a security event for the platform's operators: who, the stack
    and where in its compose file; never a value."""
    places = sorted({problem.path or "?" for problem in problems if problem.code == CODE})
    if not places:
        return
    operator_index.security_event(
        "policy_refusal",
        actor=member.user.email if member is not None else "",
        summary=f"stack {stack}: {', '.join(places)}",
    )
