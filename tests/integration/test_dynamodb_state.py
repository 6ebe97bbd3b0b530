"""The gateway and the tools service start on a dynamodb:// state URL (DynamoDB Local), as deployed: each creates its
tables at start-up and answers RPCs that read and write them."""

from __future__ import annotations

import uuid
from pathlib import Path

import boto3
import grpc
import pytest
from google.protobuf import struct_pb2
from mcpmesh.gateway.v1 import gateway_pb2, gateway_service_pb2, gateway_service_pb2_grpc
from mcpmesh.tools.v1 import tool_pb2, tool_service_pb2, tool_service_pb2_grpc

from services.gateway import api_keys_dynamodb
from services.gateway.app import ADMIN_KEY_FILE
from services.gateway.app import build as build_gateway
from services.launcher.ports import free_port
from services.runtime.config import Config
from services.runtime.identity import Identity
from services.runtime.service_tokens import Keys
from services.runtime.tokens import issue
from services.tools import permissions_dynamodb, registry_store_dynamodb
from services.tools.app import build as build_tools


def _state_url(endpoint: str) -> tuple[str, str]:
    prefix = "s" + uuid.uuid4().hex[:12]
    return prefix, f"dynamodb://{prefix}?endpoint={endpoint}&region=us-east-1"


def _tables(prefix: str) -> set[str]:
    names = boto3.client("dynamodb").get_paginator("list_tables").paginate()
    return {name for page in names for name in page["TableNames"] if name.startswith(f"{prefix}-")}


async def test_gateway_starts_on_dynamodb_and_serves_api_keys(dynamodb_endpoint: str, tmp_path: Path) -> None:
    prefix, url = _state_url(dynamodb_endpoint)
    config = Config(service="gateway", port=0, ws_port=free_port(), data_dir=tmp_path, workspace_roots=(tmp_path,),
                    state_url=url, tracing="off")
    running = await build_gateway(config)
    try:
        assert {d["TableName"] for d in api_keys_dynamodb.table_definitions(prefix)} <= _tables(prefix)  # and the instance report registry's
        admin = (tmp_path / ADMIN_KEY_FILE).read_text().strip()  # the bootstrap admin key, stored in DynamoDB
        metadata = [("authorization", f"Bearer {admin}")]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            gateway = gateway_service_pb2_grpc.GatewayServiceStub(channel)
            made = await gateway.CreateApiKey(gateway_service_pb2.CreateApiKeyRequest(
                api_key=gateway_pb2.ApiKey(display_name="ci", role=gateway_pb2.ROLE_VIEWER)),
                metadata=metadata, timeout=10)
            listed = await gateway.ListApiKeys(gateway_service_pb2.ListApiKeysRequest(), metadata=metadata, timeout=10)
            assert [k.display_name for k in listed.api_keys] == ["ci", "bootstrap-admin"]
            assert made.api_key.id in {k.id for k in listed.api_keys}
    finally:
        await running.stop(grace=1)


async def test_tools_starts_on_dynamodb_and_keeps_grants_and_idempotency(dynamodb_endpoint: str, tmp_path: Path) -> None:
    prefix, url = _state_url(dynamodb_endpoint)
    config = Config(service="tools", port=0, data_dir=tmp_path, workspace_roots=(tmp_path,), state_url=url, tracing="off")
    (tmp_path / "a.txt").write_text("a\n")
    running = await build_tools(config)
    try:
        expected = [*permissions_dynamodb.table_definitions(prefix), *registry_store_dynamodb.table_definitions(prefix)]
        assert {d["TableName"] for d in expected} <= _tables(prefix)  # and the instance report registry's
        ring = (await Keys.open(config)).ring
        admin, _ = issue(ring, Identity("key:admin1", "admin"), 60)
        operator, _ = issue(ring, Identity("key:op1", "operator"), 60)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            tools = tool_service_pb2_grpc.ToolServiceStub(channel)
            as_admin = [("authorization", f"Bearer {admin}")]
            as_operator = [("authorization", f"Bearer {operator}")]
            await tools.GrantToolPermission(tool_service_pb2.GrantToolPermissionRequest(
                permission=tool_pb2.ToolPermission(tool="file_inventory", principal="role:operator")),
                metadata=as_admin, timeout=10)
            listed = await tools.ListToolPermissions(tool_service_pb2.ListToolPermissionsRequest(),
                                                     metadata=as_admin, timeout=10)
            assert [(p.tool, p.principal) for p in listed.permissions] == [("file_inventory", "role:operator")]

            # The grant narrows operators to file_inventory; a run with an idempotency key is recorded once.
            arguments = struct_pb2.Struct()
            arguments.update({"path": str(tmp_path)})
            request = tool_service_pb2.ExecuteToolRequest(name="file_inventory", arguments=arguments, idempotency_key="k1")
            first = await tools.ExecuteTool(request, metadata=as_operator, timeout=30)
            again = await tools.ExecuteTool(request, metadata=as_operator, timeout=30)
            assert not first.is_error and again.cached and again.result == first.result
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await tools.ExecuteTool(tool_service_pb2.ExecuteToolRequest(name="file_stats", arguments=arguments),
                                        metadata=as_operator, timeout=30)
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        kept = boto3.client("dynamodb").get_item(TableName=f"{prefix}-tool-idempotency", ConsistentRead=True,
                                                 Key={"caller": {"S": "key:op1"}, "idempotency_key": {"S": "k1"}})
        assert "Item" in kept
    finally:
        await running.stop(grace=1)
