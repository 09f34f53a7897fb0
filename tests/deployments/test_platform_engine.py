"""On a Docker engine of the platform's (a local socket handed out by staff), a stack uses
only the networks and volumes it made: a leftover of another organisation, or the platform's
own, is never mounted because its name matches."""

import contextlib
import uuid

import docker
import pytest

from apps.deployments.choices import DeploymentStatus
from apps.targets.services import is_platform_engine
from tests.deploying import add_revision, deploy

COMPOSE = """
services:
  app:
    image: {image}
    volumes: ["data:/data"]
volumes:
  data: {{}}
"""


@pytest.fixture
def engine():
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture
def foreign_volume(engine):
    """A volume named as the stack's would be, made by someone else (no stack label)."""
    name = f"wfp{uuid.uuid4().hex[:8]}"
    volume = engine.volumes.create(f"{name}_data", labels={"owner": "someone-else"})
    yield name
    with contextlib.suppress(docker.errors.NotFound):
        volume.remove(force=True)


def test_it_refuses_a_volume_of_the_same_name_that_the_stack_did_not_make(
    membership, make_stack, test_images, foreign_volume, engine
):
    stack = make_stack(COMPOSE.format(image=test_images["web:1"]), name=foreign_volume)
    assert is_platform_engine(stack.target)

    deployment = deploy(membership, stack)

    assert deployment.status == DeploymentStatus.FAILED
    assert deployment.diagnosis["code"] == "resource_taken"
    assert f"{foreign_volume}_data" in deployment.reason
    project = {"label": f"com.docker.compose.project={foreign_volume}"}
    assert engine.containers.list(all=True, filters=project) == []
    left = engine.volumes.get(f"{foreign_volume}_data")
    assert left.attrs["Labels"] == {"owner": "someone-else"}


def test_it_reuses_the_volume_it_made_on_the_next_release(membership, make_stack, test_images):
    name = f"wfp{uuid.uuid4().hex[:8]}"
    compose = COMPOSE.format(image=test_images["web:1"])
    stack = make_stack(compose, name=name, grace_period=1)
    assert deploy(membership, stack).status == DeploymentStatus.SUCCEEDED, stack.name

    second = add_revision(stack, compose + "\n# release 2\n", author=membership.user)
    deployment = deploy(membership, stack, second)

    assert deployment.status == DeploymentStatus.SUCCEEDED, deployment.reason
