"""Strict parsing of REST bodies: Envoy's transcoder drops unknown JSON fields, so the gateway re-reads them.

Envoy's Lua filter passes a small JSON body as the base64 header `x-mcpmesh-json-body`; the gateway parses it
against the method's request type as declared by its google.api.http rule, refusing unknown fields.
"""

from __future__ import annotations

import base64
import binascii
import re

from google.api import annotations_pb2
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

from services.runtime.errors import InvalidArgument

BODY_HEADER = "x-mcpmesh-json-body"


def _body_type(method: MethodDescriptor) -> tuple[type[Message], str] | None:
    rule = method.GetOptions().Extensions[annotations_pb2.http]
    if not rule.body:
        return None
    if rule.body == "*":
        return message_factory.GetMessageClass(method.input_type), ""
    field = method.input_type.fields_by_name[rule.body]
    if field.message_type is None:  # a scalar body has no fields to refuse
        return None
    if field.message_type.full_name == "google.api.HttpBody":  # a raw body (MCP's JSON-RPC), not a message's JSON
        return None
    return message_factory.GetMessageClass(field.message_type), rule.body


class JsonBodyChecker:
    def __init__(self, services: list[ServiceDescriptor]) -> None:
        self._types: dict[str, tuple[type[Message], str]] = {}
        self.add(services)

    def add(self, services: list[ServiceDescriptor]) -> None:
        """Checks the JSON bodies of these services' methods too."""
        for service in services:
            for method in service.methods:
                body = _body_type(method)
                if body is not None:
                    self._types[f"/{service.full_name}/{method.name}"] = body

    def check(self, method: str, encoded: str | None) -> None:
        """`encoded` is the x-mcpmesh-json-body header, if Envoy set one."""
        body_type = self._types.get(method)
        if encoded is None or body_type is None:
            return
        message_class, field = body_type
        try:
            text = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidArgument.field(field or "body", "is not UTF-8 JSON") from None
        try:
            json_format.Parse(text, message_class(), ignore_unknown_fields=False)
        except json_format.ParseError as error:
            unknown = re.search(r'no field named "([^"]+)"', str(error))
            path = ".".join(p for p in (field, unknown.group(1) if unknown else "") if p) or "body"
            raise InvalidArgument.field(path, str(error), reason="UNKNOWN_FIELD" if unknown else None) from None
