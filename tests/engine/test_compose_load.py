"""windflow.engine.compose.load: safe YAML with limits. Pure Python, no database."""

import time
import tracemalloc

import pytest

from windflow.engine.compose import ComposeError, Problem, format_path
from windflow.engine.compose.load import (
    MAX_ALIAS_NODES,
    MAX_BYTES,
    MAX_DEPTH,
    load_compose,
    load_compose_with_positions,
)

LOL_BOMB = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
    "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
)


def refused(text) -> ComposeError:
    with pytest.raises(ComposeError) as info:
        load_compose(text)
    error = info.value
    assert isinstance(error, ValueError)
    assert error.message and str(error) == error.message
    assert error.problems and isinstance(error.problems[0], Problem)
    return error


def test_it_loads_a_compose_file_as_plain_python():
    document = load_compose(
        "services:\n"
        "  web:\n"
        "    image: nginx:1.25\n"
        '    ports: ["80:80", 22:22]\n'
        "    environment: {DEBUG: yes, ON: on, N: 017, H: 0x10, O: 0o17, F: .5}\n"
        "    healthcheck: {disable: false, retries: 3, start_period: ~}\n"
        "    labels: {date: 2024-01-01}\n"
    )
    web = document["services"]["web"]
    assert web["image"] == "nginx:1.25"
    # YAML 1.2 core schema like Compose: no sexagesimal ports, no yes/on booleans
    assert web["ports"] == ["80:80", "22:22"]
    assert web["environment"] == {"DEBUG": "yes", "ON": "on", "N": 17, "H": 16, "O": 15, "F": 0.5}
    assert web["healthcheck"] == {"disable": False, "retries": 3, "start_period": None}
    assert web["labels"] == {"date": "2024-01-01"}


def test_it_accepts_bytes_and_merge_keys_and_anchors():
    document = load_compose(
        b"x-base: &base\n  restart: always\n  image: a:1\n"
        b"services:\n  web:\n    <<: *base\n    image: b:2\n  api: *base\n"
    )
    assert document["services"]["web"] == {"restart": "always", "image": "b:2"}
    assert document["services"]["api"] == {"restart": "always", "image": "a:1"}


def test_it_records_positions_of_values():
    _, positions = load_compose_with_positions(
        "services:\n  web:\n    image: x\n    ports:\n      - 80:80\n"
    )
    assert positions[("services", "web", "image")] == (3, 12)
    assert positions[("services", "web", "ports", 0)] == (5, 9)


def test_it_refuses_a_file_larger_than_1_mib():
    text = "services: {}\n" + "# padding\n" * (MAX_BYTES // 10)
    error = refused(text)
    assert error.code == "compose-too-large"
    assert "1 MiB" in error.message
    refused(text.encode())
    # multi-byte characters count as bytes
    refused("a: " + "é" * (MAX_BYTES // 2))


def test_it_refuses_malformed_yaml_with_line_and_column():
    error = refused("services:\n  web:\n    image: [nginx\n  api: {}\n")
    assert error.code == "yaml-syntax"
    assert error.line == 4 and error.column == 6
    assert "line 4, column 6" in error.message and "line 3, column 12" in error.message

    error = refused("services:\n\tweb: {}\n")
    assert error.line == 2 and "line 2" in error.message


def test_it_refuses_text_that_is_not_utf8():
    error = refused(b"services:\n  web: \xff\xfe\n")
    assert error.code == "yaml-encoding" and error.line == 2


def test_it_refuses_the_billion_laughs_quickly_and_without_memory():
    tracemalloc.start()
    started = time.perf_counter()
    error = refused(LOL_BOMB)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # Refused before any expansion: a few MiB and moments, where expanding would take
    # gigabytes and never end (a scaled bound).
    assert elapsed < 10
    assert peak < 10 * 1024 * 1024
    assert error.code == "yaml-alias-bomb"
    assert "alias" in error.message and error.line is not None


def test_it_accepts_reasonable_alias_use():
    anchor = "x-env: &env {" + ", ".join(f"K{i}: v" for i in range(20)) + "}\n"
    services = "".join(f"  s{i}:\n    environment: *env\n" for i in range(200))
    document = load_compose(anchor + "services:\n" + services)
    assert len(document["services"]) == 200
    assert MAX_ALIAS_NODES > 200 * 41


def test_it_refuses_recursive_and_unknown_aliases_and_duplicate_anchors():
    assert refused("a: &a [1, *a]\n").code == "yaml-recursive-alias"
    error = refused("a: 1\nb: *nope\n")
    assert error.code == "yaml-unknown-alias" and error.line == 2
    error = refused("a: &x 1\nb: &x 2\n")
    assert error.code == "yaml-duplicate-anchor" and "line 1" in error.message


def test_it_refuses_nesting_deeper_than_64():
    ok = "a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n"
    load_compose(ok)
    error = refused("a: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "\n")
    assert error.code == "yaml-too-deep" and "64" in error.message
    # a very deep file is refused early, by the parser's own nesting limit, without
    # recursion errors
    error = refused("a: " + "[" * 200_000)
    assert error.code == "yaml-syntax"
    assert "exceeded maximum nesting depth" in error.message
    # depth through an alias counts too
    deep = "[" * 40 + "]" * 40
    error = refused(f"x: &d {deep}\ny: " + "[" * 30 + "*d" + "]" * 30 + "\n")
    assert error.code == "yaml-too-deep"


def test_it_refuses_a_top_level_that_is_not_a_mapping():
    error = refused("- web\n- api\n")
    assert error.code == "compose-not-mapping" and "mapping" in error.message
    assert error.line == 1
    assert refused("just text\n").code == "compose-not-mapping"
    assert refused("").code == "compose-empty"
    assert refused("# only a comment\n").code == "compose-empty"


def test_it_refuses_duplicate_keys_with_name_and_line():
    error = refused("services:\n  web:\n    image: a\n    ports: []\n    image: b\n")
    assert error.code == "yaml-duplicate-key"
    assert '"image"' in error.message and "services.web" in error.message
    assert error.line == 5 and "first at line 3" in error.message
    assert error.path == "services.web.image"
    error = refused("services: {}\nservices: {}\n")
    assert "at the top level" in error.message and error.line == 2


def test_it_lets_explicit_keys_override_merged_ones():
    document = load_compose("x: &x {a: 1}\ny:\n  <<: *x\n  a: 2\n")
    assert document["y"] == {"a": 2}


@pytest.mark.parametrize(
    "value",
    [
        "!!python/object/apply:os.system [id]",
        "!!python/name:os.system",
        "!custom thing",
        "!!binary aGVsbG8=",
        "!!set {a, b}",
        "!!timestamp 2024-01-01",
    ],
)
def test_it_refuses_non_standard_tags(value):
    error = refused(f"services:\n  web:\n    image: {value}\n")
    assert error.code == "yaml-tag"
    assert error.line == 3 and error.path == "services.web.image"


def test_it_accepts_core_tags():
    document = load_compose('a: !!str 80\nb: !!int "3"\nc: !!map {x: 1}\n')
    assert document == {"a": "80", "b": 3, "c": {"x": 1}}


def test_it_refuses_several_documents_and_complex_keys():
    assert refused("a: 1\n---\nb: 2\n").code == "compose-multiple-documents"
    assert refused("? [a, b]\n: 1\n").code == "yaml-complex-key"


def test_it_refuses_huge_integers_cleanly():
    assert refused("a: " + "9" * 5000 + "\n").code == "yaml-syntax"


def test_it_formats_paths():
    assert format_path(("services", "web", "ports", 0)) == "services.web.ports[0]"
    assert format_path(("labels", "com.example.x")) == 'labels["com.example.x"]'
    assert format_path(()) == ""
