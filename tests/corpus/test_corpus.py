"""The corpus of real-shaped compose projects (tests/corpus/INDEX.md): every folder is in the
index, and is valid compose for the reference implementation (`docker compose config`),
whose view of it matches the folder's expected.json."""

import pytest

from tests.corpus.corpus import (
    indexed_names,
    mismatches,
    projects,
    reference_config,
    summary_of_reference,
)

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
