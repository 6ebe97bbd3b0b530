"""Bounds on id, name, path and token fields, and undecodable requests, checked in the runtime's handler wrapping."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from mcpmesh.gateway.v1 import gateway_pb2, gateway_service_pb2
from mcpmesh.tools.v1 import tool_pb2, tool_service_pb2
from mcpmesh.workflows.v1 import workflow_service_pb2

from services.runtime.config import VERSION, Config
from services.runtime.errors import InvalidArgument
from services.runtime.health_report import HealthReporter
from services.runtime.limits import bad_utf8_field, check_request
from services.runtime.roles import all_services
from services.runtime.server import start
from services.runtime.service_tokens import service_credentials


def _violation(request) -> tuple[str, str]:
    with pytest.raises(InvalidArgument) as error:
        check_request(request)
    [violation] = error.value.violations
    return violation.field, error.value.reason


@pytest.mark.parametrize(
    ("request_message", "field", "reason"),
    [
        (workflow_service_pb2.GetWorkflowRequest(id="a" * 65536), "id", "FIELD_TOO_LONG"),
        (workflow_service_pb2.GetWorkflowRequest(id="abc\x00"), "id", "FIELD_CHARACTERS"),
        (workflow_service_pb2.GetWorkflowRequest(id="../../etc"), "id", "FIELD_CHARACTERS"),
        (workflow_service_pb2.ListWorkflowsRequest(page_token="\x00\u00ff"), "page_token", "FIELD_CHARACTERS"),
        (tool_service_pb2.ExecuteToolRequest(name="t" * 129), "name", "FIELD_TOO_LONG"),
        (tool_service_pb2.ExecuteToolRequest(name="ok", idempotency_key="k\n"), "idempotency_key", "FIELD_CHARACTERS"),
        (tool_service_pb2.RegisterToolRequest(tool=tool_pb2.Tool(name="bad name")), "tool.name", "FIELD_CHARACTERS"),
        (gateway_service_pb2.CreateApiKeyRequest(api_key=gateway_pb2.ApiKey(display_name="x" * 20000)),
         "api_key.display_name", "FIELD_TOO_LONG"),
        (gateway_service_pb2.RevokeApiKeyRequest(id="k" * 300), "id", "FIELD_TOO_LONG"),
    ],
)
def test_out_of_bounds_fields_are_named(request_message, field: str, reason: str) -> None:
    assert _violation(request_message) == (field, reason)


def test_ordinary_values_pass() -> None:
    check_request(workflow_service_pb2.GetWorkflowRequest(id="wf_0123abcd-ef"))
    check_request(tool_service_pb2.ExecuteToolRequest(name="file_inventory", idempotency_key="thread:1:task/2"))
    check_request(gateway_service_pb2.CreateApiKeyRequest(api_key=gateway_pb2.ApiKey(display_name="CI key (nightly) ✓")))


def test_every_request_type_of_every_contract_compiles() -> None:
    for service in all_services():
        for method in service.methods:
            check_request(method.input_type._concrete_class())


def test_bad_utf8_field_walks_nested_messages() -> None:
    inner = b"\x0a\x03\xff\xfe\xfd"  # Tool.name = invalid bytes
    assert bad_utf8_field(b"\x0a" + bytes([len(inner)]) + inner, tool_service_pb2.RegisterToolRequest.DESCRIPTOR) == "tool.name"
    assert bad_utf8_field(b"\x0a\x02ok", workflow_service_pb2.GetWorkflowRequest.DESCRIPTOR) == ""
    assert bad_utf8_field(b"\x0a\xff", workflow_service_pb2.GetWorkflowRequest.DESCRIPTOR) == ""  # truncated


def test_a_server_answers_invalid_argument_with_the_field(tmp_path: Path) -> None:
    """Before: bad UTF-8 answered UNKNOWN naming DecodeError; a 64 KiB id reached the handler."""
    reached = []

    async def get(request, context):
        reached.append(request.id)
        return workflow_service_pb2.GetWorkflowResponse()

    def add(server) -> list[str]:
        server.add_registered_method_handlers("mcpmesh.workflows.v1.WorkflowService", {"GetWorkflow": grpc.unary_unary_rpc_method_handler(
            get, request_deserializer=workflow_service_pb2.GetWorkflowRequest.FromString,
            response_serializer=workflow_service_pb2.GetWorkflowResponse.SerializeToString)})
        return []

    async def call(channel, payload: bytes) -> tuple[grpc.StatusCode, str, list[str]]:
        try:
            await channel.unary_unary("/mcpmesh.workflows.v1.WorkflowService/GetWorkflow")(payload, timeout=10)
        except grpc.aio.AioRpcError as error:
            status = rpc_status.from_call(error)  # type: ignore[arg-type]
            fields = []
            for detail in status.details if status else ():
                bad = error_details_pb2.BadRequest()
                if detail.Unpack(bad):
                    fields = [v.field for v in bad.field_violations]
            return error.code(), error.details() or "", fields
        return grpc.StatusCode.OK, "", []

    async def scenario() -> None:
        config = Config(service="limits", port=0, data_dir=tmp_path, workspace_roots=(tmp_path,))
        running = await start(config, HealthReporter(service="limits", version=VERSION, checks={}), add)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}", interceptors=(await service_credentials(config)).interceptors()) as channel:
                code, details, fields = await call(channel, b"\x0a\x02\xff\xfe")
                assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["id"])
                assert "DecodeError" not in details
                code, details, fields = await call(channel, workflow_service_pb2.GetWorkflowRequest(id="x" * 65536).SerializeToString())
                assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["id"])
                assert len(details) < 200
                code, _, _ = await call(channel, b"\x0a\x05\x80\x80\x80\x80")  # not a message at all
                assert code == grpc.StatusCode.INVALID_ARGUMENT
                assert await call(channel, workflow_service_pb2.GetWorkflowRequest(id="wf1").SerializeToString()) == (grpc.StatusCode.OK, "", [])
                assert reached == ["wf1"]
        finally:
            await running.stop(grace=1)

    asyncio.run(scenario())
