"""Tests for mapping domain errors to google.rpc.Status, and for that mapping on a real in-process server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from google.protobuf import any_pb2, struct_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from mcpmesh.tools.v1 import tool_service_pb2, tool_service_pb2_grpc

from services.runtime import errors
from services.runtime.config import VERSION, Config
from services.runtime.health_report import HealthReporter
from services.runtime.server import start
from services.runtime.service_tokens import service_credentials
from services.runtime.status import to_rpc_status
from services.tools.app import build

CASES = [
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND, "NOT_FOUND"),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS, "ALREADY_EXISTS"),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION, "FAILED_PRECONDITION"),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED"),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED"),
    (errors.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED, "RESOURCE_EXHAUSTED"),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE"),
    (errors.Unimplemented, grpc.StatusCode.UNIMPLEMENTED, "UNIMPLEMENTED"),
    (errors.DomainError, grpc.StatusCode.INTERNAL, "INTERNAL"),
]


def _details(status: grpc.Status):
    """The google.rpc.Status carried in the trailing metadata."""
    [raw] = [v for k, v in status.trailing_metadata if k == "grpc-status-details-bin"]
    return status_pb2.Status.FromString(raw)


def _unpack(details: list[any_pb2.Any], kind: type):
    found = []
    for detail in details:
        message = kind()
        if detail.Is(kind.DESCRIPTOR):
            detail.Unpack(message)
            found.append(message)
    return found


@pytest.mark.parametrize(("error_type", "code", "default_reason"), CASES)
def test_each_domain_error_maps_to_its_code(error_type: type[errors.DomainError], code: grpc.StatusCode, default_reason: str) -> None:
    status = to_rpc_status(error_type("went wrong"), "tools.mcpmesh")
    assert status.code == code
    detail = _details(status)
    assert detail.code == code.value[0]
    [info] = _unpack(list(detail.details), error_details_pb2.ErrorInfo)
    assert info.reason == default_reason
    assert info.domain == "tools.mcpmesh"


def test_status_message_equals_detail_message() -> None:
    status = to_rpc_status(errors.NotFound("tool 'x' is not registered"), "tools.mcpmesh")
    assert status.details == "tool 'x' is not registered"
    assert _details(status).message == status.details


def test_error_info_carries_reason_domain_and_metadata() -> None:
    error = errors.NotFound("gone", reason="TOOL_NOT_FOUND", metadata={"tool": "x", "other": "y"})
    [info] = _unpack(list(_details(to_rpc_status(error, "d.mcpmesh")).details), error_details_pb2.ErrorInfo)
    assert (info.reason, info.domain, dict(info.metadata)) == ("TOOL_NOT_FOUND", "d.mcpmesh", {"tool": "x", "other": "y"})


def test_bad_request_lists_every_violation() -> None:
    error = errors.InvalidArgument(
        "two bad fields",
        violations=[errors.FieldViolation("a.b", "is required"), errors.FieldViolation("c", "must be an integer")],
    )
    detail = _details(to_rpc_status(error, "d"))
    [bad] = _unpack(list(detail.details), error_details_pb2.BadRequest)
    assert [(v.field, v.description) for v in bad.field_violations] == [("a.b", "is required"), ("c", "must be an integer")]


def test_no_bad_request_without_violations() -> None:
    detail = _details(to_rpc_status(errors.InvalidArgument("bad"), "d"))
    assert _unpack(list(detail.details), error_details_pb2.BadRequest) == []
    assert len(detail.details) == 1  # only the ErrorInfo


def test_field_helper_names_the_field_in_message_and_violation() -> None:
    detail = _details(to_rpc_status(errors.InvalidArgument.field("x.y", "is required"), "d"))
    assert detail.message == "x.y: is required"
    [bad] = _unpack(list(detail.details), error_details_pb2.BadRequest)
    assert [(v.field, v.description) for v in bad.field_violations] == [("x.y", "is required")]


def test_resource_exhausted_carries_retry_info_and_a_retry_after_trailer() -> None:
    error = errors.ResourceExhausted("slow down", reason="RATE_LIMITED", metadata={"retry_after_seconds": "1.250"})
    status = to_rpc_status(error, "d")
    [retry] = _unpack(list(_details(status).details), error_details_pb2.RetryInfo)
    assert (retry.retry_delay.seconds, retry.retry_delay.nanos) == (1, 250_000_000)
    assert ("retry-after", "2") in status.trailing_metadata  # whole seconds, rounded up
    plain = to_rpc_status(errors.ResourceExhausted("full"), "d")
    assert _unpack(list(_details(plain).details), error_details_pb2.RetryInfo) == []


def test_huge_error_texts_are_capped_so_the_status_fits_in_trailers() -> None:
    error = errors.NotFound("workflow " + "x" * 70000 + " not found", metadata={"id": "y" * 70000})
    status = to_rpc_status(error, "d")
    assert len(status.details) <= 1024
    assert sum(len(v) for _, v in status.trailing_metadata) < 4096


# --- Error mapping on a real in-process server -------------------------------------------------


def _rich(error: grpc.aio.AioRpcError):
    status = rpc_status.from_call(error)
    assert status is not None, "no google.rpc.Status in the trailers"
    assert status.message == error.details()
    return status


def test_tools_server_end_to_end(tmp_path: Path) -> None:
    async def scenario() -> None:
        config = Config(service="tools", port=0, data_dir=tmp_path, workspace_roots=(tmp_path,))
        running = await build(config)
        try:
            assert running.port > 0
            async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}", interceptors=(await service_credentials(config)).interceptors()) as channel:
                tools = tool_service_pb2_grpc.ToolServiceStub(channel)

                # A wrong argument type: INVALID_ARGUMENT with a BadRequest naming the field.
                arguments = struct_pb2.Struct()
                arguments.update({"path": 5})
                with pytest.raises(grpc.aio.AioRpcError) as bad:
                    await tools.ExecuteTool(tool_service_pb2.ExecuteToolRequest(name="file_inventory", arguments=arguments), timeout=10)
                assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                status = _rich(bad.value)
                [violations] = _unpack(list(status.details), error_details_pb2.BadRequest)
                assert [v.field for v in violations.field_violations] == ["arguments.path"]
                [info] = _unpack(list(status.details), error_details_pb2.ErrorInfo)
                assert info.domain == "tools.mcpmesh"

                # An unknown tool: NOT_FOUND with ErrorInfo TOOL_NOT_FOUND and the tool in metadata.
                with pytest.raises(grpc.aio.AioRpcError) as missing:
                    await tools.GetTool(tool_service_pb2.GetToolRequest(name="no_such_tool"), timeout=10)
                assert missing.value.code() == grpc.StatusCode.NOT_FOUND
                [info] = _unpack(list(_rich(missing.value).details), error_details_pb2.ErrorInfo)
                assert info.reason == "TOOL_NOT_FOUND"
                assert dict(info.metadata) == {"tool": "no_such_tool"}

                # A good call still works through the interceptor.
                listed = await tools.ListTools(tool_service_pb2.ListToolsRequest(), timeout=10)
                assert [t.name for t in listed.tools][:1] == ["file_inventory"]

                health = health_pb2_grpc.HealthStub(channel)
                for service in ("", "mcpmesh.tools.v1.ToolService"):
                    reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
                    assert reply.status == health_pb2.HealthCheckResponse.SERVING
        finally:
            await running.stop(grace=1)

        # The server is gone: a fresh channel cannot reach it.
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}", interceptors=(await service_credentials(config)).interceptors()) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as gone:
                await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
            assert gone.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)

    asyncio.run(scenario())


def test_unexpected_exception_becomes_generic_internal(tmp_path: Path) -> None:
    secret_text = "database password is hunter2"

    async def crash(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        raise RuntimeError(secret_text)

    async def refuse(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        raise errors.PermissionDenied("no", reason="ROLE_TOO_LOW")

    async def stream_crash(request: bytes, context: grpc.aio.ServicerContext):
        yield b"first"
        raise RuntimeError(secret_text)

    def add(server) -> list[str]:
        # Methods of a real contract stand in: a server only serves methods whose contract declares a role.
        server.add_registered_method_handlers(
            "mcpmesh.workflows.v1.WorkflowService",
            {
                "GetWorkflow": grpc.unary_unary_rpc_method_handler(crash),
                "ListWorkflows": grpc.unary_unary_rpc_method_handler(refuse),
                "WatchWorkflow": grpc.unary_stream_rpc_method_handler(stream_crash),
            },
        )
        return []

    async def scenario() -> None:
        config = Config(service="fake", port=0, data_dir=tmp_path, workspace_roots=(tmp_path,))
        running = await start(config, HealthReporter(service="fake", version=VERSION, checks={}), add)
        auth = [("authorization", f"Bearer {(await service_credentials(config)).token()}")]
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                with pytest.raises(grpc.aio.AioRpcError) as crashed:
                    await channel.unary_unary("/mcpmesh.workflows.v1.WorkflowService/GetWorkflow")(b"", timeout=10, metadata=auth)
                assert crashed.value.code() == grpc.StatusCode.INTERNAL
                assert secret_text not in crashed.value.details()
                assert crashed.value.details() == "internal error; see the server log"
                status = _rich(crashed.value)
                assert status.code == code_pb2.INTERNAL
                [info] = _unpack(list(status.details), error_details_pb2.ErrorInfo)
                assert (info.reason, info.domain) == ("INTERNAL", "fake.mcpmesh")

                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await channel.unary_unary("/mcpmesh.workflows.v1.WorkflowService/ListWorkflows")(b"", timeout=10, metadata=auth)
                assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
                [info] = _unpack(list(_rich(refused.value).details), error_details_pb2.ErrorInfo)
                assert info.reason == "ROLE_TOO_LOW"

                call = channel.unary_stream("/mcpmesh.workflows.v1.WorkflowService/WatchWorkflow")(b"", timeout=10, metadata=auth)
                received = []
                with pytest.raises(grpc.aio.AioRpcError) as stream_error:
                    async for item in call:
                        received.append(item)
                assert received == [b"first"]
                assert stream_error.value.code() == grpc.StatusCode.INTERNAL
                assert secret_text not in stream_error.value.details()
        finally:
            await running.stop(grace=1)

    asyncio.run(scenario())


def test_unauthenticated_carries_a_bearer_challenge() -> None:
    status = to_rpc_status(errors.Unauthenticated("no", reason="TOKEN_MISSING"), "d")
    [challenge] = [v for k, v in status.trailing_metadata if k == "www-authenticate"]
    assert challenge.startswith('Bearer realm="mcpmesh"') and "TOKEN_MISSING" in challenge
    assert all(k != "www-authenticate" for k, _ in to_rpc_status(errors.PermissionDenied("no"), "d").trailing_metadata)
