"""Every permission decision of WindFlow goes through this module.

A decision depends on the member's role in the current organisation (RBAC), and for some
actions on an object grant (django-guardian), e.g. a developer allowed to deploy to a
protected environment. Views, API views, admin actions and actors ask `can()` and filter
querysets through `visible()`; nothing else compares roles.

An action is `<resource>.<verb>`, with one vocabulary of verbs for every app:

- CRUD, as Django names them, on the organisation's objects of that kind:
  `view` (see them), `add` (create one), `change` (edit one: its settings, its content, a
  new revision or version of it), `delete` (remove, revoke or archive one).
- Named verbs for what is not CRUD; each means the same in every app:
  - `deploy`: change what runs on a server (deploy, roll back, resume, cancel, stop, start,
    restart, remove a stack's containers).
  - `check`: ask a server or an object how it is, changing nothing but its recorded status.
  - `prepare`: run the set-up WindFlow needs on a server (install the engine over SSH).
  - `protect`: turn an object's protection on or off.
  - `grant`: give or take someone's object grant (django-guardian) on an object.
  - `use`: make use of things for yourself without changing them for others (your own API
    tokens; secrets referenced by your stacks and deployments).

A new action picks a verb from this list; a new verb is added here (and in
docs/architecture.md) only for an act that none of them names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from guardian.shortcuts import get_perms

from windflow import hotcache
from windflow.errors import Forbidden, NotFound

from .choices import ROLE_RANKS, Role
from .models import Membership

if TYPE_CHECKING:
    from apps.tenants.models import Organization

    from .models import User


# The verbs of the module docstring; every action in ACTIONS ends with one of them.
CRUD_VERBS = ("view", "add", "change", "delete")
NAMED_VERBS = ("deploy", "check", "prepare", "protect", "grant", "use")
VERBS = CRUD_VERBS + NAMED_VERBS


class Action(NamedTuple):
    """One row of the permission table."""

    least_role: Role  # the least role that may perform the action
    label: str  # what it means to a person, for error messages ("deploy or control stacks")


# Every action: the least role that may perform it, and what it means to a person.
ACTIONS: dict[str, Action] = {
    "organization.view": Action(Role.VIEWER, gettext_lazy("see this organisation")),
    "organization.change": Action(Role.ADMIN, gettext_lazy("change this organisation")),
    "member.view": Action(Role.VIEWER, gettext_lazy("see members")),
    "member.change": Action(Role.ADMIN, gettext_lazy("change members' roles")),
    "member.delete": Action(Role.ADMIN, gettext_lazy("remove members")),
    "invitation.view": Action(Role.ADMIN, gettext_lazy("see invitations")),
    "invitation.add": Action(Role.ADMIN, gettext_lazy("invite people")),
    "invitation.delete": Action(Role.ADMIN, gettext_lazy("revoke invitations")),
    "token.use": Action(Role.VIEWER, gettext_lazy("use API tokens")),
    "token.view": Action(Role.ADMIN, gettext_lazy("see other members' tokens")),
    "token.delete": Action(Role.ADMIN, gettext_lazy("revoke other members' tokens")),
    "environment.view": Action(Role.VIEWER, gettext_lazy("see environments")),
    "environment.add": Action(Role.OPERATOR, gettext_lazy("create environments")),
    "environment.change": Action(Role.OPERATOR, gettext_lazy("change environments")),
    "environment.protect": Action(Role.ADMIN, gettext_lazy("protect or unprotect environments")),
    "environment.delete": Action(Role.ADMIN, gettext_lazy("delete environments")),
    "environment.grant": Action(Role.ADMIN, gettext_lazy("grant deploy access")),
    # Deploy to this environment even when it is protected (a role, or a grant: GRANTABLE).
    "environment.deploy": Action(Role.OPERATOR, gettext_lazy("deploy to this environment")),
    "notification.view": Action(Role.VIEWER, gettext_lazy("see notifications")),
    "secret.view": Action(Role.VIEWER, gettext_lazy("see secret names")),
    "secret.add": Action(Role.ADMIN, gettext_lazy("create secrets")),
    "secret.change": Action(Role.ADMIN, gettext_lazy("change or rotate secrets")),
    "secret.delete": Action(Role.ADMIN, gettext_lazy("delete secrets")),
    "secret.use": Action(Role.OPERATOR, gettext_lazy("use secrets in deployments")),
    "audit.view": Action(Role.ADMIN, gettext_lazy("read the audit log")),
    "target.view": Action(Role.VIEWER, gettext_lazy("see servers")),
    "target.add": Action(Role.ADMIN, gettext_lazy("add servers")),
    "target.change": Action(Role.ADMIN, gettext_lazy("change servers and their host keys")),
    "target.delete": Action(Role.ADMIN, gettext_lazy("delete servers")),
    "target.check": Action(Role.OPERATOR, gettext_lazy("test servers")),
    "target.prepare": Action(Role.ADMIN, gettext_lazy("prepare servers")),
    "stack.view": Action(Role.VIEWER, gettext_lazy("see stacks")),
    "stack.add": Action(Role.DEVELOPER, gettext_lazy("create stacks")),
    "stack.change": Action(Role.DEVELOPER, gettext_lazy("change stacks")),
    "stack.delete": Action(Role.OPERATOR, gettext_lazy("delete stacks")),
    # Deploy, roll back, resume, cancel, stop / start a stack; protected environments
    # need more (can_deploy_to), which the services check.
    "stack.deploy": Action(Role.DEVELOPER, gettext_lazy("deploy or control stacks")),
    "deployment.view": Action(Role.VIEWER, gettext_lazy("see deployments")),
    "compose_policy.view": Action(Role.VIEWER, gettext_lazy("see the compose policy")),
    "compose_policy.change": Action(Role.ADMIN, gettext_lazy("change the compose policy")),
}

# What a route that needs no role in the organisation declares instead of an action
# (signing in, accepting an invitation, the public host): every route that changes state
# declares one or the other, and tests/security/test_role_matrix.py holds it to that.
NO_ROLE = "no_role"

# Object permissions that a grant can add on top of a role (guardian codenames).
GRANTABLE = {"environment.deploy": ("deploy_environment", Role.DEVELOPER)}


def get_membership(user: User | None, organization: Organization | None) -> Membership | None:
    if user is None or not user.is_authenticated or organization is None:
        return None

    def load():
        # No ordering: the pair is unique.
        found = Membership.objects.select_related("user", "organization").filter(
            user=user, organization=organization
        )
        return next(iter(found.order_by()[:1]), None)

    return hotcache.remember(hotcache.membership_key(user.pk, organization.pk), load)


def role_at_least(membership: Membership | None, role: Role) -> bool:
    return membership is not None and membership.rank >= ROLE_RANKS[role]


def role_allows(membership: Membership | None, least_role: str | None) -> bool:
    """May this member do what a rule stored as data (a compose policy's least role for a
    host-level feature) allows from `least_role` up? None, "nobody" or an unknown value:
    nobody may."""
    if least_role not in Role.values:
        return False
    return role_at_least(membership, Role(least_role))


def can(membership: Membership | None, action: str, obj=None) -> bool:
    """May this member perform `action` (optionally on `obj`)?"""
    if membership is None:
        return False
    if action not in ACTIONS:
        raise KeyError(f"Unknown action {action!r}: add it to ACTIONS")
    if role_at_least(membership, ACTIONS[action].least_role):
        return True
    return obj is not None and _granted(membership, action, obj)


def _granted(membership: Membership, action: str, obj) -> bool:
    if action not in GRANTABLE:
        return False
    codename, least_role = GRANTABLE[action]
    if not role_at_least(membership, least_role):
        return False
    return codename in get_perms(membership.user, obj)


def require(membership: Membership | None, action: str, obj=None) -> None:
    """Raise Forbidden (a 403 for the API, a message for pages) unless `can()`."""
    if not can(membership, action, obj):
        role = membership.get_role_display() if membership else _("no role")
        raise Forbidden(
            _("Your role (%(role)s) does not allow you to %(action)s.")
            % {"role": role, "action": ACTIONS[action].label if action in ACTIONS else action}
        )


def can_deploy_to(membership: Membership | None, environment) -> bool:
    """Unprotected environments take deployments from developers; protected ones need an
    operator, or a developer with an explicit grant on that environment."""
    if membership is None:
        return False
    if not environment.protected and role_at_least(membership, Role.DEVELOPER):
        return True
    return can(membership, "environment.deploy", environment)


def require_deploy_to(membership: Membership | None, environment) -> None:
    """Raise Forbidden unless `can_deploy_to()`."""
    if not can_deploy_to(membership, environment):
        role = membership.get_role_display() if membership else _("no role")
        raise Forbidden(
            _("Your role (%(role)s) does not allow you to deploy to %(environment)s.")
            % {"role": role, "environment": environment.name}
        )


def can_use_admin(membership: Membership | None) -> bool:
    """The organisation's Django admin (`<slug>.<base>/admin/`): its owners and admins, and
    platform staff through a support access (which stands for an admin). Platform staff,
    superusers included, have no other way in."""
    return role_at_least(membership, Role.ADMIN)


def assignable_roles(membership: Membership | None) -> list[Role]:
    """Roles this member may give to others: never above their own; only owners make owners."""
    if not can(membership, "member.change"):
        return []
    return [role for role in Role if role.rank <= membership.rank]


def can_change_member(
    actor: Membership | None, target: Membership, action: str = "member.change"
) -> bool:
    """May `actor` do `action` ("member.change" or "member.delete") to `target`? Admins act
    on members up to admin; only owners act on owners."""
    return can(actor, action) and target.rank <= actor.rank


def visible(membership: Membership | None, queryset, action: str):
    """The part of `queryset` the member may see for `action` (e.g. "environment.view").
    Today a member who may view a kind of object sees all of the organisation's; object-level
    read restrictions plug in here."""
    if membership is None or not can(membership, action):
        return queryset.none()
    return queryset


def get_visible(membership: Membership | None, queryset, action: str, **lookup):
    """The one object of `queryset` that `lookup` names, for `action` on it: what every
    model's access helper (`get_<model>_for`) comes down to. `queryset` is already what the
    member may see (`visible()`), so a missing object, another organisation's and a
    malformed key all raise NotFound alike; Forbidden (naming the role) when the member sees
    the object but may not `action` it."""
    try:
        obj = queryset.get(**lookup)
    except (queryset.model.DoesNotExist, ValueError, TypeError, ValidationError):
        raise NotFound() from None
    require(membership, action, obj)
    return obj
