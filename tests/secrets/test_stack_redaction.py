"""The values in scope for a stack's text (issue 9): its organisation's secrets, those of its
environment (and of the environments it was deployed in before), their recent versions; a
rotation is masked at once; a backend that does not answer withholds the text."""

import pytest

from apps.accounts.models import Membership
from apps.deployments.models import Deployment
from apps.environments.models import Environment
from apps.secrets import redaction, services
from apps.stacks import runtime
from apps.stacks.models import Stack, StackRevision
from apps.targets.models import Target
from windflow.errors import ServiceError
from windflow.redaction import MASK


@pytest.fixture
def manager(owner, acme, in_acme):
    return Membership.objects.get(user=owner, organization=acme)


@pytest.fixture
def stack(in_acme):
    staging = Environment.objects.create(name="staging", slug="staging")
    target = Target.objects.create(name="web-1", slug="web-1", kind="ssh", host="10.0.0.1")
    stack = Stack.objects.create(name="shop", environment=staging, target=target)
    StackRevision.objects.create(stack=stack, number=1, compose="services: {}\n")
    return stack


def test_it_masks_the_secrets_a_stack_can_reach_and_no_others_needlessly(manager, stack):
    prod = Environment.objects.create(name="prod", slug="prod")
    qa = Environment.objects.create(name="qa", slug="qa")
    services.create_secret(manager, name="ORG_WIDE", value="org-wide-value")
    services.create_secret(
        manager, name="DB", value="staging-db-value", environment=stack.environment
    )
    services.create_secret(manager, name="DB", value="prod-db-value", environment=prod)
    services.create_secret(manager, name="DB", value="qa-db-value", environment=qa)
    # The stack was deployed in prod before it moved to staging.
    Deployment.objects.create(
        stack=stack, number=1, revision=stack.revisions.get(), target=stack.target, environment=prod
    )
    text = "org-wide-value staging-db-value prod-db-value qa-db-value"
    assert redaction.redact_for_stack(stack, text) == f"{MASK} {MASK} {MASK} qa-db-value"


def test_it_masks_a_rotated_value_at_once_and_keeps_masking_the_old_one(manager, stack):
    secret = services.create_secret(manager, name="API_TOKEN", value="token-version-1")
    assert redaction.redact_for_stack(stack, "token-version-1") == MASK
    services.rotate_secret(manager, secret, "token-version-2")
    # A container started before the rotation still prints the old value.
    assert redaction.redact_for_stack(stack, "token-version-2 token-version-1") == f"{MASK} {MASK}"


def test_it_masks_server_credentials_a_container_started_before_may_still_print(manager, stack):
    services.create_server_credential(manager, name="TARGET_WEB_1_SSH_KEY", value="ssh-key-value")
    assert redaction.redact_for_stack(stack, "key: ssh-key-value") == f"key: {MASK}"


def test_it_withholds_text_and_hides_logs_when_the_values_cannot_be_read(vault, manager, stack):
    services.create_secret(manager, name="API_TOKEN", value="vault-held-value")
    vault.seal()
    withheld = redaction.redact_for_stack(stack, "printed vault-held-value")
    assert "vault-held-value" not in withheld
    assert withheld.startswith("[withheld:") and "sealed" in withheld
    assert redaction.redact_data_for_stack(stack, {"detail": "vault-held-value"}).keys() == {
        "withheld"
    }
    with pytest.raises(ServiceError) as hidden:
        runtime.container_log_tail(stack, "anything")
    assert hidden.value.code == "secrets_unavailable"
