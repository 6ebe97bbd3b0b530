"""Wiring of the gateway: config in, running server (gRPC and WebSocket) out."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
from mcpmesh.ext_authz.v3 import external_auth_pb2_grpc
from mcpmesh.gateway.v1 import gateway_service_pb2, gateway_service_pb2_grpc

from services.gateway import api_keys_dynamodb
from services.gateway.api_keys import ApiKeys, ApiKeyStore
from services.gateway.api_keys_sqlite import SCHEMA, SqliteApiKeyStore
from services.gateway.auth import Authenticator
from services.gateway.events import EventFeed
from services.gateway.ext_authz import EdgeAuthorization
from services.gateway.servicer import GatewayServicer
from services.gateway.system_health import SystemHealth
from services.gateway.token_issuer import TokenIssuer
from services.gateway.websocket import WebSocketEdge
from services.runtime import call_metadata, topology
from services.runtime.config import VERSION, Config
from services.runtime.dynamodb import dynamodb_client
from services.runtime.health_report import HealthReporter, database_check, disk_check, memory_check
from services.runtime.instance_reports import open_instance_reports
from services.runtime.json_bodies import BODY_HEADER, JsonBodyChecker
from services.runtime.mesh import Mesh
from services.runtime.rate_limits import RateLimiter
from services.runtime.roles import all_services, method_roles
from services.runtime.server import Running, start
from services.runtime.service_tokens import service_credentials
from services.runtime.signing_keys import key_source
from services.runtime.state import SqliteDatabase, StateUrl

SERVICE_NAME = gateway_service_pb2.DESCRIPTOR.services_by_name["GatewayService"].full_name
ADMIN_KEY_FILE = "admin.key"


async def open_key_store(url: StateUrl) -> tuple[ApiKeyStore, Callable[[], None]]:
    """The API key store for the configured state URL, set up, and what closes it; an unknown scheme stops the start-up."""
    if url.scheme == "sqlite" and url.path is not None:
        database = SqliteDatabase(url.path, SCHEMA)
        return await SqliteApiKeyStore.open(database), database.close
    if url.scheme == "dynamodb":
        client = dynamodb_client(url)
        await asyncio.to_thread(api_keys_dynamodb.create_tables, client, url.table_prefix)  # creates what is missing
        store = api_keys_dynamodb.DynamoDBApiKeyStore(client, url.table_prefix)
        return store, store.close
    raise SystemExit(f"gateway: no API key store for state URL scheme {url.scheme!r} (have: sqlite, dynamodb)")


async def build(config: Config) -> Running:
    store, close_store = await open_key_store(StateUrl.of_service(config.state_url, config.data_dir, "gateway"))
    keys = ApiKeys(store)
    try:
        await keys.ensure_bootstrap_admin(config.data_dir / ADMIN_KEY_FILE, config.bootstrap_admin_key)
    except ValueError as error:  # MCPMESH_BOOTSTRAP_ADMIN_KEY names a key id the store holds with another secret
        raise SystemExit(f"gateway: {error}") from None
    tokens = await TokenIssuer.open(key_source(config.signing_key_url, config.data_dir), config.token_ttl_seconds)
    auth = Authenticator(keys, RateLimiter.from_config(config), tokens=tokens)
    # Calls the gateway makes for itself (instance reports, the event feed) carry its own service token.
    mesh = Mesh(config.mesh_address, ["agents", "tools", "workflows", "instance"], credentials=(await service_credentials(config)).interceptors())

    reporter = HealthReporter(
        service="gateway",
        version=VERSION,
        checks={"database": database_check(store.ping, "api keys"), "external_services": mesh.check, "memory": memory_check(),
                "disk": disk_check(config.data_dir)},
    )
    # Each instance's own report, as every instance publishes it (in containers too), with Envoy's view of each.
    health = SystemHealth(mesh, config.envoy_admin_url, await open_instance_reports(config.state_url, config.data_dir))
    feed = EventFeed(mesh, health)

    def add(server: Any) -> list[str]:
        gateway_service_pb2_grpc.add_GatewayServiceServicer_to_server(GatewayServicer(keys, health, feed, auth.forget, tokens), server)
        # Envoy's ext_authz: edge calls with a raw API key go on to the services with a token instead.
        external_auth_pb2_grpc.add_AuthorizationServicer_to_server(EdgeAuthorization(auth, tokens, method_roles(all_services())), server)
        return [SERVICE_NAME]

    bodies = JsonBodyChecker([gateway_service_pb2.DESCRIPTOR.services_by_name["GatewayService"]])

    async def guard(method: str, role: str | None, context: grpc.aio.ServicerContext) -> None:
        headers = {key: value for key, value in call_metadata.of(context) if isinstance(value, str)}
        await auth.guard(method, role, headers)
        bodies.check(method, headers.get(BODY_HEADER))

    # The edge sends grpcurl's reflection here: it describes the other services' contracts too.
    described = [topology.service(name).grpc_service for name in topology.service("gateway").calls]
    running = await start(config, reporter, add, extra_reflection=described, guard=guard)
    websocket = await WebSocketEdge(auth, feed).start(config.host, config.ws_port)

    async def close() -> None:
        websocket.close()
        await websocket.wait_closed()
        await feed.close()
        await auth.close()
        await health.close()
        await mesh.close()
        close_store()

    running.on_stop.append(close)
    return running

