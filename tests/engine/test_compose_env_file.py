"""env_file: and the project's .env as a plan sees them: a service's environment is its env
files' values (in order) under its environment:, as docker compose does; build args named
without a value take it from the variables. Pure Python: no database, no Docker."""

import textwrap

import pytest

from windflow.engine.compose import ComposeError
from windflow.engine.compose.analyse import analyse
from windflow.engine.compose.plan import build_plan
from windflow.engine.compose.project import load_project

ENV_FILES = {
    "base.env": {"A": "base", "B": "base", "C": "base", "UNSET": None},
    "prod.env": {"B": "prod", "D": "prod"},
}


def service(config, **kwargs):
    document = {"services": {"web": {"image": "web:1", **config}}}
    return build_plan(document, "p", **kwargs).service("web")


def write(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_it_gives_a_service_its_env_files_in_order_under_its_environment():
    web = service(
        {
            "env_file": ["base.env", {"path": "./prod.env", "required": True}],
            "environment": {"C": "environment", "E": "environment"},
        },
        env_files=ENV_FILES,
    )
    assert web.environment == {
        "A": "base",
        "B": "prod",  # the later file wins
        "C": "environment",  # environment: wins over every env file
        "D": "prod",
        "E": "environment",
    }  # UNSET: a bare KEY of an env file with no value is not set


def test_a_bare_key_of_environment_unsets_what_an_env_file_gives():
    web = service({"env_file": "base.env", "environment": ["A", "B=list"]}, env_files=ENV_FILES)
    assert web.environment == {"B": "list", "C": "base"}


def test_an_optional_env_file_that_is_missing_gives_nothing_and_a_required_one_is_refused():
    optional = service(
        {"env_file": [{"path": "local.env", "required": False}, "prod.env"]}, env_files=ENV_FILES
    )
    assert optional.environment == {"B": "prod", "D": "prod"}
    with pytest.raises(ComposeError) as refused:
        service({"env_file": ["base.env", "gone.env"]}, env_files=ENV_FILES)
    assert refused.value.code == "project-file-missing"
    assert refused.value.path == "services.web.env_file[1]"
    assert "./gone.env is not in the project" in refused.value.message


def test_env_file_without_the_projects_files_is_refused_never_dropped():
    with pytest.raises(ComposeError) as refused:
        service({"env_file": "base.env"})
    assert refused.value.code == "compose-env-file-unread"
    assert refused.value.path == "services.web.env_file"


def test_an_env_file_value_is_part_of_the_config_hash():
    before = service({"env_file": "prod.env"}, env_files=ENV_FILES)
    changed = {**ENV_FILES, "prod.env": {"B": "prod", "D": "changed"}}
    after = service({"env_file": "prod.env"}, env_files=changed)
    assert before.config_hash != after.config_hash


@pytest.mark.parametrize(
    "args",
    [
        ["REGISTRY", "NOPE", "FIXED=1"],
        {"REGISTRY": None, "NOPE": None, "FIXED": 1},
    ],
)
def test_a_build_arg_without_a_value_takes_it_from_the_variables(args):
    web = service(
        {"build": {"context": ".", "args": args}},
        variables={"REGISTRY": "registry.test:5000", "OTHER": "x"},
    )
    assert web.build.args == {"REGISTRY": "registry.test:5000", "FIXED": "1"}


# --- analyse with the project: .env, env files, interpolation --------------------------------


@pytest.fixture
def project_root(tmp_path):
    write(
        tmp_path,
        {
            "compose.yaml": """\
                services:
                  app:
                    image: ${REGISTRY}/app:${TAG}
                    build:
                      context: .
                      args: [REGISTRY, TAG]
                    env_file:
                      - app.env
                      - path: local.env
                        required: false
                    environment:
                      MODE: ${MODE:-compose}
            """,
            "Dockerfile": "FROM scratch\n",
            ".env": "TAG=2\nREGISTRY=from-dotenv\nGREETING=hello\n",
            "app.env": 'GREETING="${GREETING} from app.env"\nMODE=app.env\nURL=${REGISTRY}/x\n',
        },
    )
    return tmp_path


def test_a_project_is_planned_with_its_dotenv_under_the_variables_given(project_root):
    variables = {"REGISTRY": "registry.test:5000"}
    project = load_project(project_root, variables=variables)
    app = analyse(project.compose_text, variables, project="p", origin=project).plan.service("app")
    assert app.image == "registry.test:5000/app:2"  # the variable wins, .env fills TAG
    assert app.build.args == {"REGISTRY": "registry.test:5000", "TAG": "2"}
    assert app.environment == {
        "GREETING": "hello from app.env",  # interpolated from .env
        "MODE": "compose",  # environment: wins over the env file
        "URL": "registry.test:5000/x",  # interpolated from the variables given
    }


def test_the_merged_text_checked_without_its_project_notes_its_env_files(project_root):
    variables = {"REGISTRY": "r", "TAG": "1"}
    project = load_project(project_root, variables=variables)
    analysis = analyse(project.compose_text, variables, project="p")  # an edit, later on
    assert analysis.errors == []
    notes = [(p.severity, p.code, p.path) for p in analysis.problems if "env file" in p.message]
    assert notes == [
        ("info", "compose-env-file-unread", "services.app.env_file[0]"),
        ("info", "compose-env-file-unread", "services.app.env_file[1].path"),
    ]
    assert analysis.plan.service("app").environment == {"MODE": "compose"}


def test_an_inline_stack_with_env_file_keeps_its_clear_refusal():
    text = "services:\n  web:\n    image: web:1\n    env_file: app.env\n"
    analysis = analyse(text, {}, project="p")
    assert [(p.code, p.path) for p in analysis.errors] == [
        ("compose-unsupported", "services.web.env_file")
    ]
    assert "keeps only the compose text" in analysis.errors[0].message
