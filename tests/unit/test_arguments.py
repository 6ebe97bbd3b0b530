"""Tests for checking tool, agent and workflow arguments against their flat JSON Schema."""

from __future__ import annotations

from typing import Any

import pytest

from services.runtime.arguments import SchemaInvalid, check_arguments, compile_schema
from services.runtime.errors import InvalidArgument

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "path": {"type": "string"},
        "max_files": {"type": "integer"},
        "ratio": {"type": "number"},
        "deep": {"type": "boolean"},
        "options": {"type": "object"},
        "names": {"type": "array"},
        "anything": {},
    },
    "required": ["path"],
    "additionalProperties": False,
}


def _violation(error: pytest.ExceptionInfo[InvalidArgument]) -> tuple[str, str]:
    [violation] = error.value.violations
    return violation.field, violation.description


def test_valid_arguments_pass() -> None:
    check_arguments(
        SCHEMA,
        {"path": "/x", "max_files": 3, "ratio": 0.5, "deep": True, "options": {}, "names": ["a"], "anything": None},
        "arguments",
    )


def test_missing_required_field_is_named() -> None:
    with pytest.raises(InvalidArgument) as error:
        check_arguments(SCHEMA, {"max_files": 1}, "arguments")
    assert _violation(error) == ("arguments.path", "is required")
    assert error.value.message == "arguments.path: is required"
    assert error.value.reason == "INVALID_ARGUMENT"


def test_unknown_field_refused_when_closed() -> None:
    with pytest.raises(InvalidArgument) as error:
        check_arguments(SCHEMA, {"path": "/x", "colour": "red"}, "workflow.parameters")
    assert _violation(error) == ("workflow.parameters.colour", "is not a known field")


def test_unknown_field_allowed_when_open() -> None:
    schema = {**SCHEMA, "additionalProperties": True}
    check_arguments(schema, {"path": "/x", "colour": "red"}, "arguments")
    open_by_default = {k: v for k, v in SCHEMA.items() if k != "additionalProperties"}
    check_arguments(open_by_default, {"path": "/x", "colour": 5}, "arguments")


@pytest.mark.parametrize("value", [3, 3.0, -2.0, 0])
def test_integer_accepts_integer_valued_numbers(value: float) -> None:
    check_arguments(SCHEMA, {"path": "/x", "max_files": value}, "arguments")


@pytest.mark.parametrize("value", [3.5, True, False, "3", None, [1]])
def test_integer_refuses_other_values(value: Any) -> None:
    with pytest.raises(InvalidArgument) as error:
        check_arguments(SCHEMA, {"path": "/x", "max_files": value}, "arguments")
    assert _violation(error) == ("arguments.max_files", "must be of type integer")


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("path", 5, "string"),
        ("ratio", True, "number"),
        ("ratio", "1", "number"),
        ("deep", 1, "boolean"),
        ("deep", "true", "boolean"),
        ("options", [], "object"),
        ("names", {}, "array"),
    ],
)
def test_wrong_types_are_named(field: str, value: Any, expected: str) -> None:
    arguments = {"path": "/x", field: value}
    with pytest.raises(InvalidArgument) as error:
        check_arguments(SCHEMA, arguments, "arguments")
    assert _violation(error) == (f"arguments.{field}", f"must be of type {expected}")


def test_number_accepts_integers_and_floats() -> None:
    check_arguments(SCHEMA, {"path": "/x", "ratio": 2}, "arguments")
    check_arguments(SCHEMA, {"path": "/x", "ratio": 2.25}, "arguments")


def test_empty_schema_accepts_anything() -> None:
    check_arguments({}, {"a": 1, "b": [2]}, "arguments")


NESTED: dict[str, Any] = {
    "$defs": {
        "person": {
            "type": "object",
            "properties": {"name": {"type": "string", "minLength": 1}, "email": {"type": "string", "format": "email"}},
            "required": ["name"],
            "additionalProperties": False,
        }
    },
    "type": "object",
    "properties": {
        "owner": {"$ref": "#/$defs/person"},
        "members": {"type": "array", "items": {"$ref": "#/$defs/person"}, "maxItems": 3},
        "mode": {"enum": ["fast", "thorough"]},
        "limit": {"oneOf": [{"type": "integer", "minimum": 1}, {"const": "all"}]},
        "since": {"type": "string", "format": "date"},
    },
    "additionalProperties": False,
}


def test_full_schemas_pass_valid_documents() -> None:
    check_arguments(
        NESTED,
        {
            "owner": {"name": "ada", "email": "ada@example.org"},
            "members": [{"name": "bob"}],
            "mode": "fast",
            "limit": "all",
            "since": "2026-01-31",
        },
        "arguments",
    )


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"owner": {"email": "a@b.c"}}, "arguments.owner.name"),
        ({"owner": {"name": "a", "age": 3}}, "arguments.owner.age"),
        ({"members": [{"name": "a"}, {"name": ""}]}, "arguments.members[1].name"),
        ({"members": [{"name": "a"}, {"name": 5}]}, "arguments.members[1].name"),
        ({"members": [{"name": "a"}] * 4}, "arguments.members"),
        ({"mode": "slow"}, "arguments.mode"),
        ({"limit": 0}, "arguments.limit"),
        ({"limit": "some"}, "arguments.limit"),
        ({"since": "yesterday"}, "arguments.since"),
        ({"owner": {"name": "a", "email": "not an address"}}, "arguments.owner.email"),
    ],
)
def test_nested_errors_name_the_field_by_json_path(arguments: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        check_arguments(NESTED, arguments, "arguments")
    assert error.value.violations[0].field == field
    assert error.value.message.startswith(field + ":")


def test_every_bad_field_is_reported() -> None:
    with pytest.raises(InvalidArgument) as error:
        check_arguments(NESTED, {"mode": "slow", "since": 5}, "arguments")
    assert {v.field for v in error.value.violations} == {"arguments.mode", "arguments.since"}


def test_schema_is_compiled_once() -> None:
    assert compile_schema(NESTED) is compile_schema(dict(NESTED))


def test_an_invalid_schema_is_a_clear_error() -> None:
    with pytest.raises(SchemaInvalid):
        compile_schema({"type": "no-such-type"})
    with pytest.raises(InvalidArgument) as error:
        check_arguments({"type": 5}, {}, "arguments")
    assert error.value.violations[0].field == "arguments"


def test_a_remote_ref_is_never_fetched() -> None:
    with pytest.raises(InvalidArgument, match="does not resolve"):
        check_arguments({"$ref": "http://127.0.0.1:9/schema.json"}, {}, "arguments")
