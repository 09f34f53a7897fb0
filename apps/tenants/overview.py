"""What platform staff read of an organisation from the public host's admin: its members,
environments, servers, stacks and latest deployments, read in its schema for this call
only, and recorded in its audit trail and the platform's."""

from __future__ import annotations

from dataclasses import dataclass

from django_tenants.utils import tenant_context

from apps.accounts.models import Membership
from apps.audit.services import record_in
from apps.deployments.models import Deployment
from apps.environments.models import Environment
from apps.stacks.models import Stack
from apps.targets.models import Target

from .models import Organization

DEPLOYMENTS_SHOWN = 50


@dataclass(frozen=True)
class Overview:
    organization: Organization
    members: list
    environments: list
    targets: list
    stacks: list
    deployments: list
    deployment_count: int


def inspect_organization(organization: Organization, *, actor) -> Overview:
    """`organization`'s data, for platform staff `actor` (a User), read-only. The schema is
    switched for the reads and switched back whatever happens; every row is loaded before
    it is. Each look is an `organization.inspect` event in the organisation's trail (its
    admins see that staff looked) and in the platform's."""
    if organization.is_public:
        raise Organization.DoesNotExist("the public schema is the platform's, not an organisation")
    members = list(
        Membership.objects.filter(organization=organization)
        .select_related("user")
        .order_by("role", "user__email")
    )
    with tenant_context(organization):
        environments = list(Environment.objects.order_by("name"))
        targets = list(Target.objects.order_by("name"))
        stacks = list(
            Stack.objects.select_related("environment", "target", "current_revision").order_by(
                "name"
            )
        )
        deployments = list(
            Deployment.objects.select_related(
                "stack", "revision", "target", "environment", "rolled_back_to"
            )[:DEPLOYMENTS_SHOWN]
        )
        deployment_count = Deployment.objects.count()
    for chain in (organization, None):
        record_in(chain, "organization.inspect", obj=organization, actor=actor)
    return Overview(
        organization=organization,
        members=members,
        environments=environments,
        targets=targets,
        stacks=stacks,
        deployments=deployments,
        deployment_count=deployment_count,
    )
