"""Checks a JSON object against a JSON Schema (Draft 2020-12, the `jsonschema` package): tool arguments, agent
inputs and workflow parameters alike. Each schema is compiled once; every error names its field by JSON path."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable
from threading import Lock
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError
from referencing.exceptions import Unresolvable

from services.runtime.errors import FieldViolation, InvalidArgument

_COMPILED_LIMIT = 512
_compiled: OrderedDict[str, Draft202012Validator] = OrderedDict()
_lock = Lock()
_MESSAGE_LIMIT = 200


class SchemaInvalid(ValueError):
    """A schema that is not a valid Draft 2020-12 schema (an external MCP server may publish one)."""


def compile_schema(schema: dict[str, Any]) -> Draft202012Validator:
    """The validator of a schema, built once per distinct schema (by its canonical JSON)."""
    key = json.dumps(schema, sort_keys=True, separators=(",", ":"))
    with _lock:
        found = _compiled.get(key)
        if found is not None:
            _compiled.move_to_end(key)
            return found
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        raise SchemaInvalid(f"not a valid JSON Schema: {error.message[:_MESSAGE_LIMIT]}") from None
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    with _lock:
        _compiled[key] = validator
        while len(_compiled) > _COMPILED_LIMIT:
            _compiled.popitem(last=False)
    return validator


def json_path(prefix: str, parts: Iterable[str | int]) -> str:
    """`arguments.items[2].name` from a prefix and jsonschema's path parts."""
    text = prefix
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _violations(error: ValidationError, prefix: str) -> list[FieldViolation]:
    at = json_path(prefix, error.absolute_path)
    instance = error.instance
    if error.validator == "required" and isinstance(instance, dict) and isinstance(error.validator_value, list):
        missing = [name for name in error.validator_value if name not in instance]
        return [FieldViolation(json_path(at, [name]), "is required") for name in missing]
    if error.validator in ("additionalProperties", "unevaluatedProperties") and isinstance(instance, dict):
        known = set(error.schema.get("properties", {})) if isinstance(error.schema, dict) else set()
        extra = [name for name in instance if name not in known] or list(instance)
        return [FieldViolation(json_path(at, [name]), "is not a known field") for name in extra[:1]]
    if error.validator == "type":
        expected = error.validator_value
        kinds = " or ".join(expected) if isinstance(expected, list) else expected
        return [FieldViolation(at or prefix, f"must be of type {kinds}")]
    return [FieldViolation(at or prefix, error.message[:_MESSAGE_LIMIT])]


def check_arguments(schema: dict[str, Any], arguments: dict[str, Any], prefix: str) -> None:
    """Raises InvalidArgument naming every bad field (`prefix.field`, `prefix.list[0].field`) of `arguments`."""
    try:
        validator = compile_schema(schema)
    except SchemaInvalid as error:
        raise InvalidArgument.field(prefix, f"cannot be checked: the declared schema is {error}") from None
    try:
        errors = sorted(validator.iter_errors(arguments), key=lambda e: [str(p) for p in e.absolute_path])
    except Unresolvable as error:
        raise InvalidArgument.field(prefix, f"cannot be checked: the schema's $ref {error} does not resolve") from None
    if not errors:
        return
    violations = [violation for error in errors for violation in _violations(error, prefix)]
    first = violations[0]
    raise InvalidArgument(f"{first.field}: {first.description}", violations=violations)
