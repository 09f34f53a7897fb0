"""windflow.engine.compose.interpolate: Compose variable interpolation. No database."""

import pytest

from windflow.engine.compose import ComposeError
from windflow.engine.compose.interpolate import (
    interpolate,
    interpolate_string,
    referenced_variables,
)
from windflow.engine.compose.load import load_compose_with_positions

VARIABLES = {"SET": "value", "EMPTY": "", "NONE": None}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("$SET", "value"),
        ("${SET}", "value"),
        ("a-$SET.b", "a-value.b"),
        ("${SET}x$SET", "valuexvalue"),
        ("${SET:-d}", "value"),
        ("${EMPTY:-d}", "d"),
        ("${UNSET:-d}", "d"),
        ("${NONE:-d}", "d"),
        ("${EMPTY-d}", ""),
        ("${UNSET-d}", "d"),
        ("${UNSET:-}", ""),
        ("${SET:?msg}", "value"),
        ("${EMPTY?msg}", ""),
        ("${SET:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${UNSET:+alt}", ""),
        ("${SET+alt}", "alt"),
        ("${EMPTY+alt}", "alt"),
        ("${UNSET+alt}", ""),
        ("$$", "$"),
        ("$$SET", "$SET"),
        ("$${SET}", "${SET}"),
        ("price $5, a $ sign, end$", "price $5, a $ sign, end$"),
        ("${UNSET:-${SET}}", "value"),
        ("${UNSET:-${OTHER:-deep}-x}", "deep-x"),
        ("${UNSET:-a:b/c}", "a:b/c"),
        ("${SET:+${SET}!}", "value!"),
        ("no variables", "no variables"),
    ],
)
def test_it_interpolates_each_form(template, expected):
    assert interpolate_string(template, VARIABLES) == expected


def test_it_interpolates_values_recursively_but_not_keys_nor_non_strings():
    document = {
        "services": {
            "${SET}": {
                "image": "app:${TAG:-1.0}",
                "ports": ["${PORT:-80}:80", 8080],
                "environment": {"A": "$SET", "B": None, "C": True},
            }
        }
    }
    result = interpolate(document, VARIABLES)
    assert result == {
        "services": {
            "${SET}": {
                "image": "app:1.0",
                "ports": ["80:80", 8080],
                "environment": {"A": "value", "B": None, "C": True},
            }
        }
    }
    assert document["services"]["${SET}"]["image"] == "app:${TAG:-1.0}"  # not mutated


def test_it_lists_every_missing_variable_with_paths_and_lines():
    text = (
        "services:\n"
        "  web:\n"
        "    image: ${IMAGE}\n"
        "    environment:\n"
        "      DB_URL: ${DB_URL}\n"
        "      OK: ${HAS_DEFAULT:-x}\n"
        "  worker:\n"
        "    environment:\n"
        "      - URL=$DB_URL\n"
    )
    document, positions = load_compose_with_positions(text)
    with pytest.raises(ComposeError) as info:
        interpolate(document, {}, positions=positions)
    error = info.value
    assert error.code == "variable-missing"
    assert error.missing_variables == ("DB_URL", "IMAGE")
    assert "2 variables not set" in error.message
    assert "services.web.environment.DB_URL line 5" in error.message
    assert "services.worker.environment[0] line 9" in error.message
    assert "services.web.image line 3" in error.message
    assert "HAS_DEFAULT" not in error.message
    assert [(p.path, p.line) for p in error.problems] == [
        ("services.web.image", 3),
        ("services.web.environment.DB_URL", 5),
        ("services.worker.environment[0]", 9),
    ]
    assert error.line == 3


def test_it_reports_missing_paths_without_positions():
    with pytest.raises(ComposeError) as info:
        interpolate({"services": {"web": {"image": "$A", "labels": {"x.y": "$B"}}}}, {})
    assert 'services.web.labels["x.y"]' in info.value.message
    assert info.value.line is None


def test_it_is_lenient_when_not_strict():
    assert interpolate({"a": "x${UNSET}y"}, {}, strict=False) == {"a": "xy"}


def test_it_raises_the_required_message():
    with pytest.raises(ComposeError) as info:
        interpolate({"services": {"db": {"image": "${PGPASS:?set the password}"}}}, {})
    assert 'required variable "PGPASS" is not set: set the password' in info.value.message
    assert "services.db.image" in info.value.message
    with pytest.raises(ComposeError, match='"EMPTY" is empty: need it'):
        interpolate_string("${EMPTY:?need it}", VARIABLES)
    with pytest.raises(ComposeError, match='"UNSET" is not set'):
        interpolate_string("${UNSET?}", VARIABLES)


@pytest.mark.parametrize(
    "template",
    [
        "${}",
        "${ SET}",
        "${SET }",
        "${1ABC}",
        "${SET:x}",
        "${SET",
        "a ${SET:-b",
        "${SET!}",
        "${UNSET:-${}}",
    ],
)
def test_it_refuses_invalid_syntax_clearly(template):
    with pytest.raises(ComposeError) as info:
        interpolate({"services": {"web": {"image": template}}}, VARIABLES)
    error = info.value
    assert error.code == "interpolation-syntax"
    assert "services.web.image" in error.message
    assert "$$" in error.hint


def test_it_collects_problems_of_all_kinds_at_once():
    with pytest.raises(ComposeError) as info:
        interpolate({"a": "${X}", "b": "${Y:?why}", "c": "${", "d": "$Z"}, {})
    error = info.value
    assert error.code == "interpolation"
    assert [p.path for p in error.problems] == ["a", "b", "c", "d"]
    assert error.missing_variables == ("X", "Z")


def test_it_lists_referenced_variables():
    document = {
        "services": {
            "web": {
                "image": "${REGISTRY:-docker.io}/app:${TAG}",
                "environment": ["A=$A", "LITERAL=$$NOT", "N=${OUTER:-${INNER}}"],
                "labels": {"$KEY_NOT_SCANNED": "${BAD"},
                "replicas": 2,
            }
        }
    }
    assert referenced_variables(document) == {"REGISTRY", "TAG", "A", "OUTER", "INNER"}
