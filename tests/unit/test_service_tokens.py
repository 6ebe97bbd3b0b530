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


class _Context:
    def __init__(self, metadata: list[tuple[str, str]]) -> None:
        self._metadata = metadata

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return self._metadata


async def test_the_service_guard_limits_each_caller_and_refuses_unknown_json_fields(tmp_path: Path) -> None:
    import base64
    import json

    from services.runtime.errors import InvalidArgument, ResourceExhausted
    from services.runtime.json_bodies import BODY_HEADER, JsonBodyChecker
    from services.runtime.rate_limits import RateLimiter
    from services.runtime.service_tokens import TokenGuard

    config = Config(service="svc", port=0, data_dir=tmp_path, workspace_roots=(tmp_path,))
    keys = await Keys.open(config)
    bodies = JsonBodyChecker([workflow_service_pb2.DESCRIPTOR.services_by_name["WorkflowService"]])
    guard = TokenGuard(keys, RateLimiter(0.0, 2), bodies)
    user, _ = issue(keys.ring, Identity("key:u", "operator"), 60)
    service, _ = issue(keys.ring, Identity("service:workflows", "operator"), 60)
    method = f"/{SERVICE}/GetWorkflow"
    for _ in range(2):
        await guard(method, "viewer", _Context([("authorization", f"Bearer {user}")]))
    with pytest.raises(ResourceExhausted) as refused:
        await guard(method, "viewer", _Context([("authorization", f"Bearer {user}")]))
    assert float(refused.value.metadata["retry_after_seconds"]) > 0
    for _ in range(5):  # calls between services are not counted
        await guard(method, "viewer", _Context([("authorization", f"Bearer {service}")]))
    # Nor are those a service makes for the key (a workflow's steps): the key paid when it asked for the work.
    delegated = (await service_credentials(Config(service="workflows", port=0, data_dir=tmp_path,
                                                  workspace_roots=(tmp_path,)))).token_for(Identity("key:u", "operator"))
    for _ in range(5):
        await guard(method, "viewer", _Context([("authorization", f"Bearer {delegated}")]))
    body = base64.b64encode(json.dumps({"type": "t", "colour": "red"}).encode()).decode()
    with pytest.raises(InvalidArgument) as unknown:
        await guard(f"/{SERVICE}/CreateWorkflow", "operator",
                    _Context([("authorization", f"Bearer {service}"), (BODY_HEADER, body)]))
    assert unknown.value.violations[0].field == "workflow.colour"
    await guard.close()


async def test_a_token_for_a_workflows_creator_carries_its_permissions_and_names_the_service(tmp_path: Path) -> None:
    config = Config(service="workflows", port=0, data_dir=tmp_path, workspace_roots=(tmp_path,))
    credentials = await service_credentials(config)
    keys = await Keys.open(config)
    creator = Identity("key:k1", "operator", ("time_*",))
    token = credentials.token_for(creator)
    assert await keys.verify(token) == Identity("key:k1", "operator", ("time_*",), actor="service:workflows")
    assert credentials.token_for(creator) == token  # reused, like the service's own
    assert await keys.verify(credentials.token_for(Identity("key:k2", "admin"))) == \
        Identity("key:k2", "admin", (), actor="service:workflows")
    # No creator (a workflow made before creators were kept, or by an anonymous in-process call): the service's own.
    assert credentials.token_for(identity.ANONYMOUS) == credentials.token()
    assert await keys.verify(credentials.token()) == Identity("service:workflows", "operator")
