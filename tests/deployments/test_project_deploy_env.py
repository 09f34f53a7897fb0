"""Deploying a project that uses env_file: and a .env (issue 13), through the runner on the
local test engine: the container gets its env files' values under environment:, the
project's .env fills in the variables the deployment does not give, and an env file that
the deployment's variables name but the project lacks fails it clearly before anything is
created. No mocks."""

import pytest

from apps.deployments.choices import DeploymentStatus
from apps.sources import services as sources
from apps.stacks import services as stacks
from devtools import remove_compose_project
from tests.deploying import deploy, log_text, project_containers
from windflow.engine.sources.archive import pack

PROJECT = {
    "compose.yaml": """\
services:
  web:
    image: ${REGISTRY}/windflow-test/web:1
    env_file:
      - app.env
      - path: ./${STAGE}.env
      - path: ./local.env
        required: false
    environment:
      FROM_BOTH: environment
      TAG_SEEN: ${TAG}
""",
    ".env": "STAGE=staging\nTAG=from-dotenv\nGREETING=from-dotenv\nONLY_IN_DOTENV=dotenv\n",
    "app.env": (
        "FROM_FILE=app\nFROM_BOTH=app\nOVERRIDDEN=app\nGREETING_SEEN=${GREETING}\n"
        "DOTENV_SEEN=${ONLY_IN_DOTENV}\n"
        'QUOTED="two words"\n'
    ),
    "staging.env": "OVERRIDDEN=staging\n",
}
PROJECT_KEYS = (
    "FROM_FILE",
    "FROM_BOTH",
    "OVERRIDDEN",
    "GREETING_SEEN",
    "DOTENV_SEEN",
    "QUOTED",
    "TAG_SEEN",
)


@pytest.fixture
def envs_stack(membership, staging, local_target, test_images, tmp_path):
    """Stack `envs` from the project above, uploaded as an archive; its containers are
    removed after the test."""
    staging.variables = {
        **staging.variables,  # GREETING=hello
        "REGISTRY": test_images["web:1"].split("/", 1)[0],
        "FROM_FILE": "a variable of the environment",
    }
    staging.save()
    for path, text in PROJECT.items():
        (tmp_path / path).write_text(text)
    stack, revision, _ = sources.upload_archive(
        membership,
        stack_name="envs",
        data=pack(tmp_path, ignore=False),
        filename="envs.tar.gz",
        environment=staging,
        target=local_target,
    )
    yield stack, revision
    remove_compose_project(stack.project)


def container_env(stack) -> dict[str, str]:
    (container,) = project_containers(stack.project)
    return dict(item.partition("=")[::2] for item in container.attrs["Config"]["Env"])


def test_it_gives_the_container_its_env_files_under_environment_and_the_dotenv_under_variables(
    membership, envs_stack
):
    stack, first = envs_stack
    # A revision of the same project with variables of its own, as the stack's page and the
    # API make it: checked without the project folder (its env files are noted, not read),
    # which the deployment reads.
    revision = stacks.revise_stack(
        membership,
        stack,
        compose=first.compose,
        variables={"TAG": "from-the-revision", "STAGE": "staging"},
        source=stacks.source_of(first),
    )
    deployment = deploy(membership, stack, revision)
    assert deployment.status == DeploymentStatus.SUCCEEDED, log_text(deployment)
    env = container_env(stack)
    assert {key: env.get(key) for key in PROJECT_KEYS} == {
        "FROM_FILE": "app",  # a variable of the environment does not override an env file
        "FROM_BOTH": "environment",  # environment: wins over the env files
        "OVERRIDDEN": "staging",  # the later env file wins
        "GREETING_SEEN": "hello",  # env files are interpolated, the variables over .env
        "DOTENV_SEEN": "dotenv",  # and the .env under them
        "QUOTED": "two words",
        "TAG_SEEN": "from-the-revision",  # the revision's variable over the .env default
    }


def test_an_env_file_the_project_lacks_at_deploy_time_fails_clearly_and_creates_nothing(
    membership, staging, envs_stack
):
    stack, revision = envs_stack
    # The deployment's variables now name an env file the project does not have.
    staging.variables = {**staging.variables, "STAGE": "prod"}
    staging.save()
    deployment = deploy(membership, stack, revision)
    assert deployment.status == DeploymentStatus.FAILED
    assert deployment.diagnosis["code"] == "compose_invalid"
    assert deployment.reason == (
        "the project of revision 1 cannot be read (compose.yaml line 6): "
        "services.web.env_file[1].path: the env file ./${STAGE}.env is not in the project."
    )
    assert "prod.env" in deployment.diagnosis["hint"]
    assert "the env file ./${STAGE}.env is not in the project" in log_text(deployment)
    assert project_containers(stack.project) == []


def test_a_pasted_merged_text_with_env_file_fails_clearly_without_its_project(
    membership, make_stack, envs_stack
):
    _, revision = envs_stack
    # Accepted when saved: the text names its project (x-windflow-project).
    pasted = make_stack(revision.compose, name="pasted", variables={"STAGE": "staging", "TAG": "1"})
    deployment = deploy(membership, pasted)
    assert deployment.status == DeploymentStatus.FAILED
    assert deployment.diagnosis["code"] == "project_files_missing"
    assert deployment.reason == (
        "services.web.env_file[0] names an env file of the project, and revision 1 is a "
        "pasted compose file without one"
    )
    assert project_containers(pasted.project) == []
