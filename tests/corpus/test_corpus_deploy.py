"""The corpus deployed for real: each project marked `deploy` in its expected.json is packed
as an archive (the whole folder, as a checkout has it), uploaded as a stack of acme on the
local server (the run's private Docker engine), deployed through the runner (builds, project
files, secrets as files), serves its pages on ports published on 127.0.0.1, and is removed
from its server by the stack's remove action."""

import secrets as random
import urllib.request

import pytest

from apps.deployments.choices import DeploymentStatus
from apps.environments.models import Environment
from apps.secrets import services as secrets
from apps.sources import services as sources
from apps.stacks import control, runtime
from devtools import free_port, remove_compose_project
from tests.corpus.corpus import projects
from tests.deploying import deploy, log_text, project_containers
from windflow.engine.sources import archive

DEPLOYED = [corpus_project for corpus_project in projects() if corpus_project.expected["deploy"]]
RUN = random.token_hex(2)  # run-scoped stack names: c<run>-<project>


def page(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return response.read().decode()


@pytest.fixture
def deployed_projects():
    """The compose projects the test deployed, removed from the engine after it."""
    made = []
    yield made
    for name in made:
        remove_compose_project(name)


def test_it_deploys_a_good_share_of_the_corpus():
    assert len(DEPLOYED) >= 8


@pytest.mark.parametrize("corpus_project", DEPLOYED, ids=lambda p: p.name)
def test_it_deploys_the_project_as_it_is(
    membership, local_target, test_images, image_registry, deployed_projects, corpus_project
):
    ports = {name: free_port() for name in corpus_project.port_variables}
    environment = Environment.objects.create(
        name="corpus",
        slug="corpus",
        variables=corpus_project.variables(image_registry.url, ports),
    )
    for name, value in corpus_project.secrets.items():
        secrets.create_secret(membership, name=name, value=value, environment=environment)
    name = f"c{RUN}-{corpus_project.name}"[:63]
    deployed_projects.append(name)
    stack, revision, created = sources.upload_archive(
        membership,
        stack_name=name,
        data=archive.pack(corpus_project.folder, ignore=False),
        filename=f"{corpus_project.name}.tar.gz",
        environment=environment,
        target=local_target,
        compose_files=corpus_project.compose_files or None,
        subfolder=corpus_project.expected.get("subfolder", ""),
        message="corpus",
    )
    assert created
    deployment = deploy(membership, stack, revision)
    assert deployment.status == DeploymentStatus.SUCCEEDED, (
        f"{deployment.reason}\n{log_text(deployment)}"
    )
    served = {
        (port, path): page(ports[port], path) for port, path, _ in corpus_project.expected["pages"]
    }
    assert served == {(port, path): text for port, path, text in corpus_project.expected["pages"]}
    removed = runtime.run_control(control.request_control(membership, stack, "remove").pk)
    assert removed["ok"], removed
    assert project_containers(stack.project) == []
