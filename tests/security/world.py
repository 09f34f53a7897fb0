"""The victim organisation's objects for the cross-organisation tests: one real object of
every kind a route can name (environment, secret, server, stack, revision, deployment, audit
event, token, invitation, member, notification), each carrying a unique marker that must
never show up in an answer given to another organisation."""

from __future__ import annotations

import hashlib
import secrets as random
from dataclasses import dataclass, field

from django.db import connection


@dataclass
class Victim:
    organization: object
    owner: object
    membership: object
    environment: object
    secret: object
    target: object
    stack: object
    revision: object
    deployment: object
    stack_action: object
    audit_event: object
    token: object
    token_secret: str
    invitation: object
    member: object
    notification: object
    support_access: object = None
    git_source: object = None
    source_archive: object = None
    markers: list[str] = field(default_factory=list)

    def objects_by_model(self) -> dict:
        """model class -> the victim's object of that model (for the admin's object_id)."""
        from apps.tenants.models import Domain

        objects = [
            self.organization,
            Domain.objects.filter(tenant=self.organization).first(),
            self.owner,
            self.member,
            self.token,
            self.invitation,
            self.audit_event,
            self.environment,
            self.secret,
            self.target,
            self.stack,
            self.revision,
            self.deployment,
            self.stack_action,
            self.notification,
            self.support_access,
            self.git_source,
            self.source_archive,
        ]
        return {type(obj): obj for obj in objects if obj is not None}

    def fills(self) -> dict:
        """Values for path parameters that do not depend on where they appear."""
        return {
            "name": self.stack.name,
            "number": self.revision.number,
            "container": f"{self.stack.name}-web-1",
            "deployment_id": self.deployment.pk,
            # the stack's webhook (/hooks/git/<uid>/): another host never finds it
            "uid": self.stack.uid,
            "action_id": self.stack_action.pk,
            "target_id": self.target.pk,
            # the stored hash of the invitation, as if it had leaked: never an accept link
            "token": self.invitation.token_hash,
            "fmt": "csv",
            "verb": "check",
        }

    def pk_for(self, path: str):
        """The victim's object named by a `pk` / `slug` parameter in `path` (page or API)."""
        return getattr(self.object_for(path), "slug" if "slug" in path else "pk", None)

    def object_for(self, path: str):
        """The victim object a page or API path (pattern or OpenAPI template) is about."""
        path = path.lstrip("/").replace("^", "")
        prefixes = {
            ("environments/", "api/v1/environments/"): self.environment,
            ("servers/", "api/v1/targets/"): self.target,
            ("organizations/",): self.organization,
            ("secrets/", "api/v1/secrets/"): self.secret,
            ("deployments/", "api/v1/deployments/"): self.deployment,
            ("settings/members/", "api/v1/members/"): self.member,
            ("settings/invitations/", "api/v1/invitations/"): self.invitation,
            ("settings/tokens/", "api/v1/tokens/"): self.token,
            ("api/v1/audit-events/",): self.audit_event,
        }
        for keys, obj in prefixes.items():
            if path.startswith(keys):
                return obj
        return None


def build_victim(organization, owner, *, tag: str | None = None) -> Victim:
    """Create the objects (with `organization` active: connection.set_tenant first)."""
    from apps.accounts import services as accounts
    from apps.accounts.models import Membership, Role, User
    from apps.audit import services as audit
    from apps.deployments import journal
    from apps.deployments import services as deployments
    from apps.environments.models import Environment
    from apps.notifications import services as notifications
    from apps.secrets import services as secrets
    from apps.sources import webhooks
    from apps.sources.models import GitSource, SourceArchive, WebhookDelivery
    from apps.stacks import services as stacks
    from apps.stacks.models import StackAction
    from apps.targets import services as targets

    assert connection.schema_name == organization.schema_name
    tag = tag or random.token_hex(5)
    marker = f"vic{tag}"
    membership = Membership.objects.get(user=owner, organization=organization)
    member = Membership.objects.filter(organization=organization).exclude(
        user=owner
    ).first() or Membership.objects.create(
        user=User.objects.create_user(f"{marker}-member@victim.test", "pw-victim-123456"),
        organization=organization,
        role=Role.DEVELOPER,
    )
    environment = Environment.objects.create(
        name=f"{marker} env",
        slug=f"{marker}-env",
        variables={"VICTIM_VARIABLE": f"{marker}-variable"},
    )
    secret = secrets.create_secret(
        membership,
        name=f"{marker.upper()}_SECRET",
        value=f"{marker}-secret-value",
        description=f"{marker}-secret-description",
    )
    target = targets.create_target(
        membership, name=f"{marker}-srv", kind="local", labels={"victim": f"{marker}-label"}
    )
    compose = (
        "services:\n  web:\n    image: busybox:1\n"
        f"    environment:\n      VICTIM: {marker}-compose\n"
    )
    stack = stacks.create_stack(
        membership,
        name=f"{marker}-stack",
        environment=environment,
        target=target,
        compose=compose,
        message=f"{marker}-revision-message",
        description=f"{marker}-stack-description",
    )
    revision = stack.revisions.get(number=1)
    # Its webhook (push to deploy), with a secret and one delivery on record.
    webhook_secret = webhooks.rotate_secret(membership, stack)
    WebhookDelivery.objects.create(
        stack=stack,
        provider="github",
        delivery_id=f"{marker}-delivery",
        verified=True,
        event="push",
        ref=f"refs/heads/{marker}-branch",
        verdict="ignored_ref",
        status_code=202,
    )
    # The stack follows a repository (as the worker leaves it after a failed fetch), and an
    # archive was uploaded: every text they carry is a marker.
    git_source = GitSource.objects.create(
        stack=stack,
        url=f"https://git.invalid/{marker}/shop.git",
        ref="main",
        auth="token",
        token_secret=secret.name,
        status="error",
        error_code="auth_failed",
        error_message=f"{marker}-source-error",
        error_hint=f"{marker}-source-hint",
        warning=f"{marker}-source-warning",
    )
    source_archive = SourceArchive.objects.create(
        digest=hashlib.sha256(marker.encode()).hexdigest(),
        content=f"{marker}-archive-content".encode(),
        size=32,
        filename=f"{marker}-archive.tar.gz",
    )
    deployment = deployments.request_deployment(membership, stack)
    journal.append_log(deployment, f"{marker}-log-line")
    deployment.reason = f"{marker}-reason"
    deployment.save(update_fields=["reason"])
    # A restart that failed, as the worker records it (a deployment is queued: no new request).
    stack_action = StackAction.objects.create(
        stack=stack,
        action="restart",
        status="failed",
        message=f"{marker}-control-message",
        hint=f"{marker}-control-hint",
    )
    audit_event = audit.record(
        "security.victim", object_type="stack", object_label=f"{marker}-audit-label", actor=owner
    )
    token, token_secret = accounts.create_api_token(membership, name=f"{marker}-token")
    invitation, _url = accounts.invite(
        membership, email=f"{marker}-invitee@victim.test", role=Role.VIEWER
    )
    (notification,) = notifications.notify([owner], verb="victim", text=f"{marker}-notification")
    # Platform staff in the victim organisation, through a support access with a reason.
    staff = User.objects.create_user(f"{marker}-staff@victim.test", "pw-victim-123456")
    staff.is_staff = True
    staff.save(update_fields=["is_staff"])
    support_access = accounts.start_support_access(
        staff, organization, reason=f"{marker}-support-reason"
    )
    markers = [
        environment.name,
        environment.slug,
        f"{marker}-variable",
        secret.name,
        f"{marker}-secret-value",
        f"{marker}-secret-description",
        target.name,
        f"{marker}-label",
        stack.name,
        f"{marker}-compose",
        f"{marker}-revision-message",
        f"{marker}-stack-description",
        f"{marker}-log-line",
        f"{marker}-reason",
        f"{marker}-control-message",
        f"{marker}-control-hint",
        f"{marker}-audit-label",
        token.name,
        invitation.email,
        f"{marker}-notification",
        f"{marker}-support-reason",
        staff.email,
        str(stack.uid),
        webhook_secret,
        f"{marker}-delivery",
        f"{marker}-branch",
        git_source.url,
        f"{marker}-source-error",
        f"{marker}-source-hint",
        f"{marker}-source-warning",
        source_archive.filename,
        token.prefix,
        token_secret,
        *[m.user.email for m in Membership.objects.filter(organization=organization)],
    ]
    return Victim(
        organization=organization,
        owner=owner,
        membership=membership,
        environment=environment,
        secret=secret,
        target=target,
        stack=stack,
        revision=revision,
        deployment=deployment,
        stack_action=stack_action,
        audit_event=audit_event,
        token=token,
        token_secret=token_secret,
        invitation=invitation,
        member=member,
        notification=notification,
        support_access=support_access,
        git_source=git_source,
        source_archive=source_archive,
        markers=markers,
    )


def give_test_engine(organization) -> None:
    """Let `organization` (a live one) make `local` servers on the test Docker engine, as
    platform staff would in the admin. Deleting the organisation takes the assignment away."""
    from apps.tenants.models import LocalEngine
    from devtools import tests_engine_socket

    engine, _created = LocalEngine.objects.get_or_create(
        socket_path=tests_engine_socket(), defaults={"name": "test-engine"}
    )
    engine.organizations.add(organization)
