"""Checks a JSON object against the flat JSON Schema subset that tools, agents and workflows declare."""

from __future__ import annotations

from typing import Any

from services.runtime.errors import InvalidArgument

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def _type_matches(expected: str, value: Any) -> bool:
    if expected == "integer" and isinstance(value, float):
        return value.is_integer()  # JSON (and Struct) carry every number as a double
    if isinstance(value, bool) and expected != "boolean":
        return False
    kinds = _JSON_TYPES.get(expected)
    return kinds is None or isinstance(value, kinds)


def check_arguments(schema: dict[str, Any], arguments: dict[str, Any], prefix: str) -> None:
    """Required fields, unknown fields (when additionalProperties is false) and top-level types."""
    properties: dict[str, Any] = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in arguments:
            raise InvalidArgument.field(f"{prefix}.{name}", "is required")
    closed = schema.get("additionalProperties", True) is False
    for name, value in arguments.items():
        if name not in properties:
            if closed:
                raise InvalidArgument.field(f"{prefix}.{name}", "is not a known field")
            continue
        expected = properties[name].get("type", "")
        if not _type_matches(expected, value):
            raise InvalidArgument.field(f"{prefix}.{name}", f"must be of type {expected}")
