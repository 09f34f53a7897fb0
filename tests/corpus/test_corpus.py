"""The corpus of real-shaped compose projects (tests/corpus/INDEX.md): every folder is in the
index, is valid compose for the reference implementation (`docker compose config`) whose
view of it matches the folder's expected.json, and WindFlow's engine loads and plans it to
the same expected.json."""

import pytest

from tests.corpus.corpus import (
    indexed_names,
    mismatches,
    project,
    projects,
    reference_config,
    summary_of_plan,
    summary_of_reference,
)
from windflow.engine.compose import ComposeError
from windflow.engine.compose.analyse import analyse
from windflow.engine.compose.project import load_project

PROJECTS = projects()
REGISTRY = "registry.test:5000"


@pytest.fixture(scope="session")
def compose_cli():
    from devtools import ensure_compose_plugin

    version = ensure_compose_plugin()
    assert version is not None, "docker compose v2 is needed to check the corpus"
    return version


def test_it_has_at_least_twenty_projects_each_in_the_index():
    names = [corpus_project.name for corpus_project in PROJECTS]
    assert len(names) >= 20
    assert sorted(indexed_names()) == names


@pytest.mark.parametrize("corpus_project", PROJECTS, ids=lambda p: p.name)
def test_it_is_compose_that_docker_compose_reads_as_expected(compose_cli, corpus_project):
    values = {**corpus_project.variables(REGISTRY), **corpus_project.secrets}
    config = reference_config(corpus_project, values, "corpus-check")
    found = summary_of_reference(config, corpus_project.root, REGISTRY)
    assert mismatches(found, corpus_project.expected) == []


# --- WindFlow's engine: the project folder loaded, analysed and planned -------------------


def windflow_analysis(corpus_project, values, *, root=None, files=None):
    loaded = load_project(
        root or corpus_project.root,
        corpus_project.compose_files if files is None else files,
        variables=values,
    )
    return analyse(
        loaded.compose_text,
        values,
        project="corpus-check",
        placeholders=corpus_project.secrets,
        origin=loaded,
    )


@pytest.mark.parametrize("corpus_project", PROJECTS, ids=lambda p: p.name)
def test_it_loads_and_plans_each_project_as_docker_compose_does(corpus_project):
    analysis = windflow_analysis(corpus_project, corpus_project.variables(REGISTRY))
    assert analysis.errors == []
    found = summary_of_plan(analysis.plan, REGISTRY)
    assert mismatches(found, corpus_project.expected) == []


def test_it_merges_override_files_in_the_order_given():
    corpus_project = project("override-order")
    values = corpus_project.variables(REGISTRY)
    reverse = ["compose.prod.yaml", "compose.yaml"]
    plans = {
        "given": windflow_analysis(corpus_project, values).plan,
        "reversed": windflow_analysis(corpus_project, values, files=reverse).plan,
    }
    images = {order: plan.service("web").image for order, plan in plans.items()}
    assert images == {
        "given": f"{REGISTRY}/windflow-test/web:2",
        "reversed": f"{REGISTRY}/windflow-test/web:1",
    }


def test_it_reads_the_override_file_by_default_as_compose_does():
    corpus_project = project("override-files")
    analysis = windflow_analysis(corpus_project, corpus_project.variables(REGISTRY), files=[])
    assert analysis.plan.service("web").environment["APP_ENV"] == "development"


def test_it_takes_defaults_from_the_projects_dotenv_and_the_given_variables_over_them():
    corpus_project = project("dotenv-interpolation")
    values = {**corpus_project.variables(REGISTRY), "WEB_TAG": "1"}
    web = windflow_analysis(corpus_project, values).plan.service("web")
    assert web.image == f"{REGISTRY}/windflow-test/web:1"
    assert web.environment["GREETING"] == "hello from .env"


def test_it_finds_no_compose_file_at_the_root_of_the_monorepo():
    corpus_project = project("monorepo")
    with pytest.raises(ComposeError) as refused:
        load_project(corpus_project.folder, variables=corpus_project.variables(REGISTRY))
    assert refused.value.code == "project-no-compose-file"
