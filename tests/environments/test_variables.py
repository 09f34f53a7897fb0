"""The one parser of `NAME=value` lines (apps.environments.validators): environment and
stack variables, and server labels."""

import pytest
from django.core.exceptions import ValidationError

from apps.environments.validators import (
    MAX_LINE_ERRORS,
    MAX_VALUE_LENGTH,
    MAX_VARIABLES,
    format_lines,
    parse_lines,
    parse_variables,
)


def messages_of(text: str, **options) -> list[str]:
    with pytest.raises(ValidationError) as error:
        (parse_lines if options else parse_variables)(text, **options)
    return error.value.messages


def test_it_parses_and_formats_variables():
    text = "# comment\nB=2\n\nA = x=y \n"
    assert parse_variables(text) == {"A": "x=y", "B": "2"}
    assert format_lines({"B": "2", "A": "x=y"}) == "A=x=y\nB=2"
    assert parse_variables(format_lines({"B": "2", "A": "x=y"})) == {"A": "x=y", "B": "2"}


def test_it_skips_comments_and_blank_lines_and_keeps_empty_values():
    text = "\n   \n# NAME=ignored\n  # indented comment\nEMPTY=\nHASH=a#b\n"
    assert parse_variables(text) == {"EMPTY": "", "HASH": "a#b"}
    assert parse_variables("") == {} and parse_variables("# only a comment") == {}


def test_it_reads_windows_and_old_mac_line_endings_and_a_byte_order_mark():
    assert parse_variables("\ufeffA=1\r\nB=2\rC=3") == {"A": "1", "B": "2", "C": "3"}
    # Numbers count the lines as typed, whatever ends them.
    assert messages_of("A=1\r\nB=2\rnothing") == ["Line 3: expected NAME=value."]


def test_it_reports_every_bad_line_with_its_number():
    assert messages_of("1BAD=x\nOK=1\nOK=2\nnothing\n=novalue\nBAD-NAME=3") == [
        "Line 1: “1BAD” is not a valid variable name (letters, digits and _, not starting with a "
        "digit).",
        "Line 3: OK is set twice.",
        "Line 4: expected NAME=value.",
        "Line 5: expected NAME=value.",
        "Line 6: “BAD-NAME” is not a valid variable name (letters, digits and _, not starting "
        "with a digit).",
    ]


def test_it_refuses_a_name_set_twice_even_with_the_same_value():
    assert messages_of("A=1\nA=1") == ["Line 2: A is set twice."]


def test_it_caps_the_list_of_bad_lines():
    messages = messages_of("\n".join(["nothing"] * (MAX_LINE_ERRORS + 5)))
    assert len(messages) == MAX_LINE_ERRORS + 1
    assert messages[-1] == "… and 5 more lines like these."


def test_it_holds_typed_variables_to_the_limits_of_json_ones():
    too_many = "\n".join(f"V{n}=x" for n in range(MAX_VARIABLES + 1))
    assert messages_of(too_many) == [f"At most {MAX_VARIABLES} variables."]
    long_value = f"A={'x' * (MAX_VALUE_LENGTH + 1)}"
    assert messages_of(long_value) == [
        f"The value of A is longer than {MAX_VALUE_LENGTH} characters."
    ]


def test_it_parses_labels_with_any_name():
    text = "region = eu-west\nio.example/tier=web\n# comment"
    assert parse_lines(text, any_name=True) == {
        "region": "eu-west",
        "io.example/tier": "web",
    }
    assert messages_of("no equals\ntier=a\ntier=b", any_name=True) == [
        "Line 1: expected key=value.",
        "Line 3: tier is set twice.",
    ]
