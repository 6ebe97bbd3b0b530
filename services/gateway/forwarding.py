"""Serves the workflows, tools and agents contracts at the gateway by forwarding raw messages through the mesh."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import ServiceDescriptor
from mcpmesh.agents.v1 import agent_service_pb2  # noqa: F401 - importing registers each contract in the default pool
from mcpmesh.tools.v1 import tool_service_pb2  # noqa: F401
from mcpmesh.workflows.v1 import workflow_service_pb2  # noqa: F401

from services.gateway.token_issuer import TokenIssuer
from services.runtime import topology
from services.runtime.identity import caller
from services.runtime.mesh import Mesh

# The services the gateway calls, as the topology lists them, by their gRPC contract.
FORWARDED: dict[str, ServiceDescriptor] = {
    name: descriptor_pool.Default().FindServiceByName(topology.service(name).grpc_service)
    for name in topology.service("gateway").calls
}
# mcp-*: the MCP transport headers of POST /mcp (ToolService.CallMcp), which the SDK checks against the body.
PASSED_HEADERS = (
    "traceparent", "tracestate", "x-request-id", "x-client-type", "x-client-version",
    "mcp-protocol-version", "mcp-method", "mcp-name",
)
# retry-after: the service's rate limit becomes the edge's 429 with Retry-After, as it did at the gateway.
RELAYED_TRAILERS = ("grpc-status-details-bin", "retry-after", "www-authenticate")


def _outgoing_metadata(context: grpc.aio.ServicerContext, tokens: TokenIssuer) -> list[tuple[str, str | bytes]]:
    """Trace and client headers, and a token for the caller the guard verified: the service checks it itself."""
    metadata: list[tuple[str, str | bytes]] = [(k, v) for k, v in context.invocation_metadata() or () if k in PASSED_HEADERS]
    who = caller(context)
    if not who.anonymous:
        metadata.append(("authorization", f"Bearer {tokens.token_for(who)}"))
    return metadata


def _timeout(service: str, context: grpc.aio.ServicerContext) -> float:
    remaining = context.time_remaining()
    deadline = Mesh.deadline(service)
    return deadline if remaining is None else min(deadline, remaining)


async def _relay_error(context: grpc.aio.ServicerContext, error: grpc.aio.AioRpcError) -> None:
    trailers = tuple((k, v) for k, v in error.trailing_metadata() or () if k in RELAYED_TRAILERS)
    await context.abort(error.code(), error.details() or "", trailers)


def _unary(mesh: Mesh, tokens: TokenIssuer, service: str, path: str) -> Callable[..., Any]:
    call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = mesh.channel(service).unary_unary(path)

    async def forward(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        try:
            return await call(request, timeout=_timeout(service, context), metadata=_outgoing_metadata(context, tokens))
        except grpc.aio.AioRpcError as error:
            await _relay_error(context, error)
            raise  # unreachable: abort raises

    return forward


def _server_stream(mesh: Mesh, tokens: TokenIssuer, service: str, path: str) -> Callable[..., Any]:
    call: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = mesh.channel(service).unary_stream(path)

    async def forward(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        # Streams have no deadline: they last as long as the caller watches.
        stream = call(request, metadata=_outgoing_metadata(context, tokens))
        try:
            async for message in stream:
                yield message
        except grpc.aio.AioRpcError as error:
            await _relay_error(context, error)
        finally:
            stream.cancel()

    return forward


def forwarding_handlers(mesh: Mesh, tokens: TokenIssuer) -> dict[str, dict[str, grpc.RpcMethodHandler]]:
    """Handlers per forwarded service name; bytes in, bytes out, no re-serialisation."""
    handlers: dict[str, dict[str, grpc.RpcMethodHandler]] = {}
    for service, descriptor in FORWARDED.items():
        methods: dict[str, grpc.RpcMethodHandler] = {}
        for method in descriptor.methods:
            path = f"/{descriptor.full_name}/{method.name}"
            if method.server_streaming:
                methods[method.name] = grpc.unary_stream_rpc_method_handler(_server_stream(mesh, tokens, service, path))
            else:
                methods[method.name] = grpc.unary_unary_rpc_method_handler(_unary(mesh, tokens, service, path))
        handlers[descriptor.full_name] = methods
    return handlers


def forwarded_service_names() -> list[str]:
    return [d.full_name for d in FORWARDED.values()]
