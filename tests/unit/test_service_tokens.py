"""Each service verifies its caller's token itself: direct calls without one, forged headers and foreign keys are refused."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from mcpmesh.workflows.v1 import workflow_service_pb2

from services.runtime import identity
from services.runtime.config import VERSION, Config
from services.runtime.health_report import HealthReporter
from services.runtime.identity import Identity
from services.runtime.server import start
from services.runtime.service_tokens import Keys, service_credentials
from services.runtime.signing_keys import KeyRing, SigningKey
from services.runtime.tokens import issue

SERVICE = "mcpmesh.workflows.v1.WorkflowService"


async def test_calls_need_a_token_signed_by_the_gateways_keys(tmp_path: Path) -> None:
    seen: list[Identity] = []

    async def get(request, context):
        seen.append(identity.caller(context))
        return workflow_service_pb2.GetWorkflowResponse()

    async def cancel(request, context):
        return workflow_service_pb2.CancelWorkflowResponse()

    def add(server) -> list[str]:
        server.add_registered_method_handlers(SERVICE, {
            "GetWorkflow": grpc.unary_unary_rpc_method_handler(
                get, request_deserializer=workflow_service_pb2.GetWorkflowRequest.FromString,
                response_serializer=workflow_service_pb2.GetWorkflowResponse.SerializeToString),
            "CancelWorkflow": grpc.unary_unary_rpc_method_handler(
                cancel, request_deserializer=workflow_service_pb2.CancelWorkflowRequest.FromString,
                response_serializer=workflow_service_pb2.CancelWorkflowResponse.SerializeToString),
        })
        return []

    config = Config(service="svc", port=0, data_dir=tmp_path, workspace_roots=(tmp_path,))
    running = await start(config, HealthReporter(service="svc", version=VERSION, checks={}), add)
    ring = (await Keys.open(config)).ring
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            get_call = channel.unary_unary(f"/{SERVICE}/GetWorkflow")
            cancel_call = channel.unary_unary(f"/{SERVICE}/CancelWorkflow")
            request = workflow_service_pb2.GetWorkflowRequest(id="wf1").SerializeToString()

            async def code(call, metadata) -> grpc.StatusCode:
                try:
                    await call(request if call is get_call else workflow_service_pb2.CancelWorkflowRequest(id="wf1").SerializeToString(),
                               metadata=metadata, timeout=10)
                except grpc.aio.AioRpcError as error:
                    return error.code()
                return grpc.StatusCode.OK

            forged_headers = [("x-mcpmesh-principal", "key:root"), ("x-mcpmesh-role", "admin")]
            assert await code(get_call, forged_headers) == grpc.StatusCode.UNAUTHENTICATED
            foreign, _ = issue(KeyRing(SigningKey.generate()), Identity("key:root", "admin"), 60)
            assert await code(get_call, [("authorization", f"Bearer {foreign}")]) == grpc.StatusCode.UNAUTHENTICATED
            viewer, _ = issue(ring, Identity("key:v", "viewer"), 60)
            assert await code(get_call, [("authorization", f"Bearer {viewer}")]) == grpc.StatusCode.OK
            assert await code(cancel_call, [("authorization", f"Bearer {viewer}")]) == grpc.StatusCode.PERMISSION_DENIED
            assert seen == [Identity("key:v", "viewer")]

        # Another service's calls carry its own identity, added by the mesh channel's interceptor.
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}", interceptors=(await service_credentials(config)).interceptors()) as channel:
            await channel.unary_unary(f"/{SERVICE}/GetWorkflow")(workflow_service_pb2.GetWorkflowRequest(id="wf1").SerializeToString(), timeout=10)
            assert seen[-1] == Identity("service:svc", "operator")
    finally:
        await running.stop(grace=1)


def test_the_standard_health_check_stays_open() -> None:
    from services.runtime.roles import role_of

    assert role_of("grpc.health.v1.Health", "Check") is None
    with pytest.raises(KeyError):
        role_of(SERVICE, "NoSuchMethod")
