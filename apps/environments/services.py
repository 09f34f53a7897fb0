"""Environments: create, change, delete, and the deploy grants on them."""

from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils.text import slugify
from django.utils.translation import gettext as _
from guardian.shortcuts import assign_perm, get_users_with_perms, remove_perm

from apps.accounts import permissions
from apps.accounts.models import Membership
from apps.audit import services as audit
from windflow.errors import Conflict, ServiceError

from .models import Environment

EDITABLE_FIELDS = (
    "name",
    "kind",
    "protected",
    "description",
    "variables",
    "git_policy",
    "poll_mode",
)
DEPLOY_PERMISSION = "deploy_environment"


# --- Access: how pages, the API and consumers reach an environment ------------------------


def visible_environments(actor: Membership | None, queryset=None):
    """The organisation's environments that `actor` may see."""
    if queryset is None:
        queryset = Environment.objects.all()
    return permissions.visible(actor, queryset, "environment.view")


def get_environment_for(
    actor: Membership | None, slug, action="environment.view", *, queryset=None
) -> Environment:
    """The environment `slug`, for `action` on it: NotFound when `actor` cannot see it,
    Forbidden when their role does not allow `action`."""
    return permissions.get_visible(actor, visible_environments(actor, queryset), action, slug=slug)


# --- Changes -------------------------------------------------------------------------------


def _check_protection_change(actor: Membership, protected: bool, current: bool = False) -> None:
    if protected != current:
        permissions.require(actor, "environment.protect")


def _check_git_policy_change(actor: Membership, environment: Environment, policy) -> None:
    """What a push does to a protected environment is part of its protection: only those
    who may protect it change it there."""
    if policy is not None and policy != environment.git_policy and environment.protected:
        permissions.require(actor, "environment.protect")


def _save(environment: Environment) -> Environment:
    environment.full_clean()
    try:
        with transaction.atomic():
            environment.save()
    except IntegrityError as exc:
        raise Conflict(
            _("An environment with this name already exists."), field="name", code="duplicate"
        ) from exc
    return environment


def _unique_slug_error(slug: str, exclude_pk=None) -> None:
    clash = Environment.objects.filter(slug=slug).exclude(pk=exclude_pk)
    if clash.exists():
        raise Conflict(
            _("An environment with this name already exists."), field="name", code="duplicate"
        )


def create_environment(actor: Membership, **fields) -> Environment:
    permissions.require(actor, "environment.add")
    _check_protection_change(actor, fields.get("protected", False))
    name = (fields.get("name") or "").strip()
    slug = slugify(fields.pop("slug", None) or name)
    if not slug:
        raise ServiceError(_("The name needs at least one letter or digit."), field="name")
    _unique_slug_error(slug)
    environment = Environment(
        slug=slug, **{k: v for k, v in fields.items() if k in EDITABLE_FIELDS}
    )
    environment.name = name
    with transaction.atomic():
        _save(environment)
        audit.record(
            "environment.create", obj=environment, changes=_snapshot(environment), actor=actor
        )
    return environment


def _snapshot(environment: Environment) -> dict:
    return {field: getattr(environment, field) for field in EDITABLE_FIELDS}


def update_environment(actor: Membership, environment: Environment, **fields) -> Environment:
    permissions.require(actor, "environment.change", environment)
    if "protected" in fields:
        _check_protection_change(actor, fields["protected"], environment.protected)
    _check_git_policy_change(actor, environment, fields.get("git_policy"))
    before = _snapshot(environment)
    for field in EDITABLE_FIELDS:
        if field in fields:
            setattr(environment, field, fields[field])
    environment.name = environment.name.strip()
    with transaction.atomic():
        _save(environment)
        changes = audit.diff(before, _snapshot(environment))
        if changes:
            audit.record("environment.update", obj=environment, changes=changes, actor=actor)
    return environment


def delete_environment(actor: Membership, environment: Environment) -> None:
    permissions.require(actor, "environment.delete", environment)
    try:
        with transaction.atomic():
            audit.record(
                "environment.delete", obj=environment, changes=_snapshot(environment), actor=actor
            )
            environment.delete()
    except ProtectedError as exc:
        users = sorted({f"{obj._meta.verbose_name} {obj}" for obj in exc.protected_objects})
        raise Conflict(
            _("%(environment)s is still used by: %(users)s. Move or delete them first.")
            % {"environment": environment.name, "users": ", ".join(users[:10])},
            code="in_use",
        ) from exc


def grant_deploy(actor: Membership, environment: Environment, member: Membership) -> None:
    """Let one member deploy to this environment even if their role alone would not."""
    permissions.require(actor, "environment.grant", environment)
    if member.organization_id != actor.organization_id:
        raise ServiceError(_("This person is not a member of the organisation."), field="user")
    with transaction.atomic():
        assign_perm(DEPLOY_PERMISSION, member.user, environment)
        audit.record(
            "environment.grant_deploy",
            obj=environment,
            changes={"member": member.user.email},
            actor=actor,
        )


def revoke_deploy(actor: Membership, environment: Environment, member: Membership) -> None:
    permissions.require(actor, "environment.grant", environment)
    with transaction.atomic():
        remove_perm(DEPLOY_PERMISSION, member.user, environment)
        audit.record(
            "environment.revoke_deploy",
            obj=environment,
            changes={"member": member.user.email},
            actor=actor,
        )


def deploy_grantees(environment: Environment):
    return get_users_with_perms(
        environment, only_with_perms_in=[DEPLOY_PERMISSION], with_superusers=False
    ).order_by("email")
