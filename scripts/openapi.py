"""The edge's OpenAPI (Swagger 2.0) document, from the same google.api.http annotations the transcoder serves.

protoc-gen-swagger (Debian's golang-grpc-gateway) writes one document per package; this merges them and adds
what the plugin cannot know: bearer auth, the google.rpc.Status error answers, which operations stream NDJSON,
and each RPC's required role (the mcpmesh.auth.v1.required_role option).
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2

PLUGIN = "protoc-gen-swagger"
ROLE_OPTION = 51001  # (mcpmesh.auth.v1.required_role), see proto/mcpmesh/auth/v1/annotations.proto
ROLES = {1: "viewer", 2: "operator", 3: "admin", 4: "public"}  # mcpmesh.auth.v1.Role numbers
ERRORS = {
    "400": "Invalid argument: the BadRequest detail names each bad field.",
    "401": "Missing or unknown credentials.",
    "403": "The caller's role may not call this.",
    "404": "No such resource.",
    "429": "Rate limited; Retry-After says when to retry.",
    "default": "Any other error, as a google.rpc.Status.",
}
STATUS_SCHEMA = {
    "type": "object",
    "description": "google.rpc.Status as JSON: the gRPC code, a message, and details such as ErrorInfo and BadRequest.",
    "properties": {
        "code": {"type": "integer", "format": "int32"},
        "message": {"type": "string"},
        "details": {"type": "array", "items": {"type": "object", "additionalProperties": True}},
    },
}


def plugin() -> str:
    found = shutil.which(PLUGIN)
    if not found:
        raise SystemExit(f"{PLUGIN} not found: apt-get install golang-grpc-gateway (.ci/run installs it)")
    return found


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if not byte & 0x80:
            return value, at
        shift += 7


def required_role(options: descriptor_pb2.MethodOptions) -> str:
    """The role option read from the raw options (no generated code needed, so a fresh proto change is seen)."""
    data, at = options.SerializeToString(), 0
    while at < len(data):
        key, at = _varint(data, at)
        if key >> 3 == ROLE_OPTION and key & 7 == 0:
            value, at = _varint(data, at)
            return ROLES.get(value, "")
        kind = key & 7
        if kind == 0:
            _, at = _varint(data, at)
        elif kind == 2:
            size, at = _varint(data, at)
            at += size
        else:
            at += {1: 8, 5: 4}.get(kind, 0)
    return ""


def _methods(descriptor: Path) -> dict[str, tuple[bool, str]]:
    """operationId (the method name) -> (server streaming, required role) for every mcpmesh service method."""
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor.read_bytes())
    found: dict[str, tuple[bool, str]] = {}
    for file in files.file:
        if file.package.startswith("mcpmesh."):
            for service in file.service:
                for method in service.method:
                    found[method.name] = (method.server_streaming, required_role(method.options))
    return found


def _merge(documents: list[dict[str, Any]]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    definitions: dict[str, Any] = {}
    for document in documents:
        for path, operations in document.get("paths", {}).items():
            # "{name=**}" (a value with slashes) has no OpenAPI form: the parameter is plain "{name}" there.
            paths.setdefault(re.sub(r"\{([a-z_.]+)=[^}]*\}", r"{\1}", path), {}).update(operations)
        for name, schema in document.get("definitions", {}).items():
            if name in definitions and definitions[name] != schema:
                raise SystemExit(f"OpenAPI: two different messages are both named {name}; rename one in its .proto")
            definitions[name] = schema
    return {"paths": dict(sorted(paths.items())), "definitions": dict(sorted(definitions.items()))}


def build(protoc: Callable[..., None], sources: list[str], descriptor: Path) -> dict[str, Any]:
    """Runs the plugin once per package (it refuses to merge packages) and merges the results."""
    packages: dict[str, list[str]] = {}
    for source in sources:
        packages.setdefault(str(Path(source).parent), []).append(source)
    documents = []
    with tempfile.TemporaryDirectory() as tmp:
        for package, files in sorted(packages.items()):
            out = Path(tmp) / package.replace("/", "_")
            out.mkdir()
            protoc(f"--plugin=protoc-gen-swagger={plugin()}",
                   f"--swagger_out=allow_merge=true,merge_file_name=api,json_names_for_fields=true:{out}", *files)
            documents += [json.loads(p.read_text()) for p in sorted(out.rglob("*.json"))]
    merged = _merge(documents)
    methods = _methods(descriptor)
    merged["definitions"]["rpcStatus"] = STATUS_SCHEMA
    for operations in merged["paths"].values():
        for operation in operations.values():
            streaming, role = methods.get(operation["operationId"], (False, ""))
            if streaming:
                # Envoy transcodes server streams as newline-delimited JSON, one message per line.
                operation["x-mcpmesh-stream"] = "ndjson"
            if role == "public":
                operation["x-mcpmesh-role"] = role
                operation["description"] = "Public: no credentials needed."
                operation["security"] = []
            elif role:
                operation["x-mcpmesh-role"] = role
                operation["description"] = f"Needs the {role} role (or a higher one)."
            for code, text in ERRORS.items():
                operation["responses"].setdefault(code, {"description": text, "schema": {"$ref": "#/definitions/rpcStatus"}})
    return {
        "swagger": "2.0",
        "info": {
            "title": "mcpmesh",
            "version": "v1",
            "description": "REST edge of mcpmesh, transcoded to the gRPC contracts in proto/. "
                           "Authenticate with `Authorization: Bearer <API key or token>`.",
        },
        "schemes": ["https", "http"],
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "securityDefinitions": {
            "bearer": {"type": "apiKey", "in": "header", "name": "Authorization",
                       "description": "`Bearer <API key>` or `Bearer <token>`"},
        },
        "security": [{"bearer": []}],
        **merged,
    }


def write(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=1, sort_keys=False) + "\n")
