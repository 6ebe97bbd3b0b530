"""Wiring of the tools service: config in, running server out."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from mcpmesh.tools.v1 import tool_service_pb2, tool_service_pb2_grpc

from services.runtime.config import VERSION, Config
from services.runtime.dynamodb import dynamodb_client
from services.runtime.health_report import HealthReporter, database_check, disk_check, memory_check
from services.runtime.server import Running, start
from services.runtime.state import SqliteDatabase, StateUrl
from services.tools import permissions_dynamodb, registry_store_dynamodb
from services.tools.builtin import builtin_tools
from services.tools.mcp_client import SdkConnection
from services.tools.mcp_endpoint import McpEndpoint
from services.tools.mcp_servers import McpServers, McpServerSpec, ServerRules
from services.tools.permissions import PermissionStore, ToolPolicy
from services.tools.permissions_sqlite import SCHEMA as PERMISSIONS_SCHEMA
from services.tools.permissions_sqlite import SqlitePermissionStore
from services.tools.registry import ExecutionSettings, ToolRegistry
from services.tools.registry_store import RegistryStore
from services.tools.registry_store_sqlite import SCHEMA as REGISTRY_SCHEMA
from services.tools.registry_store_sqlite import SqliteRegistryStore
from services.tools.result_cache import MemoryResultCache, ResultCache
from services.tools.result_cache_redis import RedisResultCache
from services.tools.servicer import ToolServicer

SERVICE_NAME = tool_service_pb2.DESCRIPTOR.services_by_name["ToolService"].full_name


async def open_stores(url: StateUrl) -> tuple[PermissionStore, RegistryStore, Callable[[], None]]:
    """The adapters the state URL names, set up, and what closes them; an unknown scheme stops the start-up with a
    clear message."""
    if url.scheme == "sqlite" and url.path is not None:
        database = SqliteDatabase(url.path, PERMISSIONS_SCHEMA + REGISTRY_SCHEMA)
        return SqlitePermissionStore(database), SqliteRegistryStore(database), database.close
    if url.scheme == "dynamodb":
        client, prefix = dynamodb_client(url), url.table_prefix
        for adapter in (permissions_dynamodb, registry_store_dynamodb):  # each creates its tables that are missing
            await asyncio.to_thread(adapter.create_tables, client, prefix)
        permissions = permissions_dynamodb.DynamoDBPermissionStore(client, prefix)
        registrations = registry_store_dynamodb.DynamoDBRegistryStore(client, prefix)

        def close() -> None:
            permissions.close()
            registrations.close()

        return permissions, registrations, close
    raise SystemExit(
        f"tools: no tool permission or registry store for state URL scheme {url.scheme!r} (have: sqlite, dynamodb)")


def open_cache(url: str) -> ResultCache:
    """In-process by default; Redis when MCPMESH_TOOL_CACHE_URL is redis://..."""
    if url.startswith(("redis://", "rediss://")):
        return RedisResultCache(url)
    return MemoryResultCache()


async def build(config: Config) -> Running:
    permissions, registrations, close_stores = await open_stores(StateUrl.of_service(config.state_url, config.data_dir, "tools"))
    cache = open_cache(config.tool_cache_url)

    def connect(spec: McpServerSpec) -> SdkConnection:
        return SdkConnection(spec.name, spec.transport, spec.command, spec.url, config.tool_timeout_seconds)

    servers = McpServers(registrations, connect, ServerRules(config.mcp_stdio_commands, config.mcp_allowed_networks))
    await servers.sync(force=True)  # restore every registered server, on every instance
    settings = ExecutionSettings(
        config.tool_timeout_seconds, config.tool_concurrency, config.tool_queue, config.tool_cache_seconds
    )
    registry = ToolRegistry(
        builtin_tools(config.workspace_roots, config.max_files), registrations, ToolPolicy(permissions), [servers],
        cache=cache, settings=settings,
    )

    checks = {
        "database": database_check(permissions.ping, "tools state store"),
        "memory": memory_check(),
        "disk": disk_check(config.data_dir),
    }
    if config.tool_cache_url.startswith(("redis://", "rediss://")):
        checks["cache"] = database_check(cache.ping, "tool result cache (Redis)")
    reporter = HealthReporter(
        service="tools",
        version=VERSION,
        checks=checks,
        metrics=lambda: {"ToolExecutionQueue": float(registry.queue_depth)},
    )

    endpoint = McpEndpoint(registry)
    await endpoint.start()

    def add(server: Any) -> list[str]:
        servicer = ToolServicer(registry, permissions, servers, endpoint)
        tool_service_pb2_grpc.add_ToolServiceServicer_to_server(servicer, server)
        return [SERVICE_NAME]

    running = await start(config, reporter, add)

    running.on_stop.append(endpoint.close)
    running.on_stop.append(servers.close)
    running.on_stop.append(cache.close)
    running.on_stop.append(close_stores)
    return running
