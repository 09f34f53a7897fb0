"""windflow.engine.compose.validate: the Compose Specification schema, in plain words.
Pure Python: no database, no Docker."""

import copy

import pytest

from windflow.engine.compose import finding
from windflow.engine.compose.validate import RULES, validate

CLEAN = {
    "name": "shop",
    "services": {
        "web": {
            "image": "nginx:1.27",
            "ports": ["127.0.0.1:8080:80", {"target": 443, "published": "8443"}],
            "depends_on": {"db": {"condition": "service_healthy", "restart": True}},
            "healthcheck": {"test": ["CMD", "true"], "interval": "5s", "start_interval": "1s"},
            "environment": {"DB_PASSWORD": "${DB_PASSWORD}", "DEBUG": 0},
            "x-note": "extension fields are fine",
        },
        "db": {"image": "postgres:16", "volumes": ["data:/var/lib/postgresql/data"]},
    },
    "volumes": {"data": {}},
    "x-common": {"anything": True},
}


def doc(**web):
    d = copy.deepcopy(CLEAN)
    d["services"]["web"].update(web)
    return d


def by_path(problems):
    return {p.path: p for p in problems}


def test_it_accepts_a_clean_stack():
    assert validate(CLEAN) == []


def test_it_names_the_path_of_a_wrong_type_in_plain_words():
    problems = validate(doc(ports=[["80"]]))
    assert [p.path for p in problems] == ["services.web.ports[0]"]
    p = problems[0]
    assert p.rule == "compose-schema" and p.severity == "error"
    assert p.message == "services.web.ports[0] must be a number, a string or a mapping, not a list"


def test_it_names_an_unknown_key_and_suggests_the_close_one():
    problems = by_path(validate(doc(imagee="x")))
    p = problems["services.web.imagee"]
    assert "unknown key 'imagee'" in p.message and "services.web.imagee" in p.message
    assert p.hint == "Did you mean 'image'?"


def test_it_lists_the_allowed_values_of_an_enum():
    d = doc(depends_on={"db": {"condition": "whenever"}})
    p = by_path(validate(d))["services.web.depends_on.db.condition"]
    assert "must be one of: service_started, service_healthy" in p.message
    assert "'whenever'" in p.message


def test_it_reports_nested_long_syntax_errors_at_their_key():
    p = by_path(validate(doc(ports=[{"target": "eighty"}])))["services.web.ports[0].target"]
    assert p.message == "services.web.ports[0].target must be a whole number, not a string"


def test_it_refuses_a_bad_service_name():
    d = copy.deepcopy(CLEAN)
    d["services"]["my web"] = {"image": "x:1"}
    p = by_path(validate(d))["services.my web"]
    assert "'my web' is not a valid name" in p.message


def test_it_refuses_build_clearly():
    d = copy.deepcopy(CLEAN)
    d["services"]["web"] = {"build": {"context": ".", "dockerfile": "Dockerfile"}}
    problems = validate(d)
    assert len(problems) == 1  # no schema noise about build, no "missing image" on top
    p = problems[0]
    assert (p.rule, p.severity, p.path) == ("compose-unsupported", "error", "services.web.build")
    assert "build is not supported yet: build the image in CI and reference it with image:" in (
        p.message
    )


@pytest.mark.parametrize(
    ("key", "value", "path"),
    [
        ("extends", {"service": "base"}, "services.web.extends"),
        ("develop", {"watch": []}, "services.web.develop"),
        ("env_file", ".env", "services.web.env_file"),
    ],
)
def test_it_refuses_other_unsupported_service_keys(key, value, path):
    problems = validate(doc(**{key: value}))
    assert [(p.rule, p.path) for p in problems] == [("compose-unsupported", path)]
    assert "not supported" in problems[0].message and problems[0].hint


def test_it_refuses_include():
    d = copy.deepcopy(CLEAN)
    d["include"] = ["other.yml"]
    assert [(p.rule, p.path) for p in validate(d)] == [("compose-unsupported", "include")]


def test_it_requires_an_image():
    d = copy.deepcopy(CLEAN)
    del d["services"]["db"]["image"]
    problems = validate(d)
    assert [(p.rule, p.path) for p in problems] == [("service-no-image", "services.db.image")]
    assert problems[0].message == "services.db has no image: say which image to run"


def test_it_requires_services():
    assert [p.rule for p in validate({"volumes": {}})] == ["compose-no-services"]
    assert [p.rule for p in validate({"services": {}})] == ["compose-no-services"]


def test_it_refuses_a_document_that_is_not_a_mapping():
    (p,) = validate(["services"])
    assert p.rule == "compose-schema" and "must be a mapping" in p.message


def test_it_keeps_rules_documented_and_problems_serialisable():
    for rule in {p.rule for p in validate(doc(build=".", imagee=1, ports={}))}:
        assert rule in RULES
    p = finding("compose-schema", "error", "m", "services.web")
    assert p.as_dict() == {
        "rule": "compose-schema",
        "severity": "error",
        "message": "m",
        "path": "services.web",
        "file": None,
        "line": None,
        "column": None,
        "hint": "",
    }
