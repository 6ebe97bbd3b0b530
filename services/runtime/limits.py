"""Bounds on request strings that are ids, names, paths or tokens, checked in one place as a call arrives.

Rules come from the request's descriptor (field names), so every RPC of every contract is covered, new ones
too. A request whose bytes are not a valid message (bad UTF-8 in a string) is refused naming the field, not
as an internal DecodeError. Free-form values inside google.protobuf.Struct are left to each service's
parameter schema."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

from services.runtime.errors import InvalidArgument


@dataclass(frozen=True)
class Rule:
    max_length: int
    allowed: re.Pattern[str]
    what: str  # said to the caller when a character is refused


_ID = Rule(128, re.compile(r"[A-Za-z0-9._:@=+-]*"), "letters, digits and . _ : @ = + -")
_KEY = Rule(256, re.compile(r"[A-Za-z0-9._:@=+/|-]*"), "letters, digits and . _ : @ = + / | -")
_NAME = Rule(128, re.compile(r"[A-Za-z0-9._:@*/-]*"), "letters, digits and . _ : @ * / -")
_TOKEN = Rule(1024, re.compile(r"[A-Za-z0-9._=+/~-]*"), "base64url characters")
_PATH = Rule(4096, re.compile(r"[^\x00-\x1f\x7f]*"), "no control characters")
_TEXT = Rule(16384, re.compile(r"[^\x00]*", re.DOTALL), "no NUL characters")
_NAMES = {"name", "tool", "server", "target_server", "type", "agent", "principal"}
_IDS = {"id", "request_id", "definition_hash"}
_TEXTS = {"display_name", "description", "error", "url", "command", "message", "title"}


def rule_for(field: FieldDescriptor) -> Rule:
    """The bound of a string field, by what its name says it holds."""
    name = field.name
    if name in _IDS or name.endswith(("_id", "_ids", "_hash")):
        return _ID
    if name.endswith("_key"):
        return _KEY
    if name == "token" or name.endswith("_token"):
        return _TOKEN
    if name == "path" or name.endswith(("_path", "_root")):
        return _PATH
    if name in _TEXTS:
        return _TEXT
    if name in _NAMES or name.endswith(("_name", "_names")) or name == "tools":
        return _NAME
    return _TEXT


def _check_value(path: str, value: str, rule: Rule) -> None:
    if len(value) > rule.max_length:
        raise InvalidArgument.field(path, f"must be at most {rule.max_length} characters (got {len(value)})", reason="FIELD_TOO_LONG")
    if rule.allowed.fullmatch(value) is None:
        raise InvalidArgument.field(path, f"has characters that are not allowed ({rule.what})", reason="FIELD_CHARACTERS")


Check = Callable[[Message, str], None]
_compiled: dict[str, Check] = {}


def _no_check(message: Message, prefix: str) -> None:
    return None


def checker(descriptor: Descriptor) -> Check:
    """A function that raises InvalidArgument for the first out-of-bounds string field of a message."""
    if descriptor.full_name.startswith("google.protobuf."):
        return _no_check
    if descriptor.full_name in _compiled:
        return _compiled[descriptor.full_name]
    steps: list[Check] = []

    def check(message: Message, prefix: str) -> None:
        for step in steps:
            step(message, prefix)

    _compiled[descriptor.full_name] = check  # before the fields: a message may contain itself
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_STRING:
            steps.append(_string_step(field, rule_for(field)))
        elif field.message_type is not None and not _free_form(field.message_type):
            steps.append(_message_step(field))
    return check


def _free_form(descriptor: Descriptor) -> bool:
    """Well-known types (Struct, Timestamp) and maps hold no ids or names of ours."""
    return descriptor.full_name.startswith("google.protobuf.") or descriptor.GetOptions().map_entry


def _string_step(field: FieldDescriptor, rule: Rule) -> Callable[[Message, str], None]:
    name = field.name

    def step(message: Message, prefix: str) -> None:
        value: Any = getattr(message, name)
        if field.is_repeated:
            for index, item in enumerate(value):
                _check_value(f"{prefix}{name}[{index}]", item, rule)
        elif value:
            _check_value(prefix + name, value, rule)

    return step


def _message_step(field: FieldDescriptor) -> Callable[[Message, str], None]:
    name = field.name
    entry = field.message_type
    assert entry is not None

    def step(message: Message, prefix: str) -> None:
        inner = checker(entry)
        if field.is_repeated:
            for index, item in enumerate(getattr(message, name)):
                inner(item, f"{prefix}{name}[{index}].")
        elif message.HasField(name):
            inner(getattr(message, name), f"{prefix}{name}.")

    return step


def check_request(message: Message) -> None:
    descriptor: Any = message.DESCRIPTOR  # the upb and pure-Python descriptor classes are one type at run time
    checker(descriptor)(message, "")


# --------------------------------------------------------------- undecodable requests ----


class Undecodable:
    """Stands in for a request whose bytes did not parse; the handler wrapper refuses it with the field named."""

    def __init__(self, data: bytes, descriptor: Descriptor) -> None:
        self.data = data
        self.descriptor = descriptor

    def error(self) -> InvalidArgument:
        field = bad_utf8_field(self.data, self.descriptor)
        if field:
            return InvalidArgument.field(field, "is not valid UTF-8", reason="INVALID_UTF8")
        return InvalidArgument("the request is not a valid protobuf message", reason="MALFORMED_REQUEST")


def tolerant(deserializer: Callable[[bytes], Any] | None, descriptor: Descriptor | None) -> Callable[[bytes], Any] | None:
    """Wraps a request deserializer so a parse failure becomes an Undecodable instead of an internal error."""
    if deserializer is None or descriptor is None:
        return deserializer

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError:
            return Undecodable(data, descriptor)

    return parse


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def bad_utf8_field(data: bytes, descriptor: Descriptor, prefix: str = "", depth: int = 0) -> str:
    """The path of the first string field holding bytes that are not UTF-8, or "" (walks the wire format)."""
    if depth > 32:
        return ""
    pos = 0
    try:
        while pos < len(data):
            key, pos = _varint(data, pos)
            number, wire = key >> 3, key & 7
            if wire == 0:
                _, pos = _varint(data, pos)
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            elif wire == 2:
                length, pos = _varint(data, pos)
                chunk, pos = data[pos : pos + length], pos + length
                field = descriptor.fields_by_number.get(number)
                if field is None:
                    continue
                if field.type == FieldDescriptor.TYPE_STRING:
                    try:
                        chunk.decode("utf-8")
                    except UnicodeDecodeError:
                        return prefix + field.name
                elif field.message_type is not None:
                    if field.message_type.full_name.startswith("google.protobuf."):
                        if bad_utf8_field(chunk, field.message_type, "", depth + 1):
                            return prefix + field.name
                        continue
                    found = bad_utf8_field(chunk, field.message_type, f"{prefix}{field.name}.", depth + 1)
                    if found:
                        return found
            else:
                return ""
    except ValueError:
        return ""
    return ""
