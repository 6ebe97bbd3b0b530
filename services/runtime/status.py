"""Turns domain errors into google.rpc.Status with ErrorInfo and BadRequest, and logs every call."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from services.runtime import call_metadata, errors, limits

log = logging.getLogger("mcpmesh.rpc")
# guard(method, role the contract declares or None when public, context): raises a DomainError to refuse.
Guard = Callable[[str, str | None, grpc.aio.ServicerContext], Awaitable[None]]


MAX_MESSAGE = 1024  # error texts are capped: a status must always fit in the trailers (HTTP/2 header limits)


def _cap(text: str, limit: int = MAX_MESSAGE) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _admit(request: object) -> None:
    """Refuses a request that did not parse or whose id, name, path or token fields are out of bounds."""
    if isinstance(request, limits.Undecodable):
        raise request.error()
    if isinstance(request, Message):
        limits.check_request(request)


def _retry_after(error: errors.DomainError) -> float | None:
    """Seconds to wait before retrying, when the error says (metadata `retry_after_seconds`)."""
    try:
        return max(0.0, float(error.metadata["retry_after_seconds"]))
    except (KeyError, ValueError):
        return None


def to_rpc_status(error: errors.DomainError, domain: str) -> grpc.Status:
    """The status message equals the details message, as AIP-193 asks."""
    code = code_pb2.Code.Value(error.code) if error.code in code_pb2.Code.keys() else code_pb2.INTERNAL  # noqa: SIM118 (protobuf enum wrappers are not containers)
    detail = status_pb2.Status(code=code, message=_cap(error.message))
    info = any_pb2.Any()
    metadata = {_cap(k, 64): _cap(v, 256) for k, v in list(error.metadata.items())[:16]}
    info.Pack(error_details_pb2.ErrorInfo(reason=error.reason, domain=domain, metadata=metadata))
    detail.details.append(info)
    if error.violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=_cap(v.field, 256), description=_cap(v.description, 512))
                for v in error.violations[:16]
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(bad_request)
        detail.details.append(packed)
    retry_after = _retry_after(error)
    if retry_after is None:
        status = rpc_status.to_status(detail)
        if error.code == "UNAUTHENTICATED":  # the edge's 401 says how to authenticate (RFC 6750)
            challenge = ("www-authenticate", f'Bearer realm="mcpmesh", error="invalid_token", error_description="{error.reason}"')
            return status._replace(trailing_metadata=(*status.trailing_metadata, challenge))  # type: ignore[attr-defined]
        return status
    delay = any_pb2.Any()
    delay.Pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(
        seconds=int(retry_after), nanos=int((retry_after % 1) * 1e9))))
    detail.details.append(delay)
    status = rpc_status.to_status(detail)
    # Envoy passes trailers-only metadata on as HTTP headers: the edge's 429 carries Retry-After (whole seconds).
    retry_header = ("retry-after", str(max(1, math.ceil(retry_after))))
    return status._replace(trailing_metadata=(*status.trailing_metadata, retry_header))  # type: ignore[attr-defined]


def _trace_id(context: grpc.aio.ServicerContext) -> str:
    for key, value in call_metadata.of(context):
        if key == "traceparent" and isinstance(value, str) and value.count("-") == 3:
            return value.split("-")[1]
        if key == "x-request-id" and isinstance(value, str):
            return value
    return ""


class ErrorMapping:
    """Wraps each method handler once, at registration: maps DomainError to a rich status, hides unexpected
    exceptions as INTERNAL, logs each call, and runs an optional guard first. Wrapping at registration (not
    with a server interceptor) keeps gRPC's fast lookup of registered methods on the hot path."""

    def __init__(self, domain: str, guard: Guard | None = None) -> None:
        self._domain = domain
        self._guard = guard  # runs before each call, inside the task serving it (authentication, rate limits)

    def wrap(
        self, method: str, handler: grpc.RpcMethodHandler, role: str | None = None, request: Descriptor | None = None
    ) -> grpc.RpcMethodHandler:
        """`role` is the one the method's contract declares (None: public by design); the guard receives it.
        `request` is the request type: its id, name, path and token fields are bounded (limits.py) and bytes
        that do not parse are refused naming the field."""
        deserializer = limits.tolerant(handler.request_deserializer, request)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(method, role, handler.unary_unary),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(method, role, handler.unary_stream),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        raise ValueError(f"{method}: only unary and server-streaming methods are supported")

    async def _fail(self, context: grpc.aio.ServicerContext, method: str, exc: Exception) -> None:
        """Ends the call with the status for `exc`; a handler's own abort passes through unchanged."""
        if isinstance(exc, grpc.aio.AbortError):
            raise exc
        if isinstance(exc, errors.DomainError):
            status = to_rpc_status(exc, self._domain)
        else:
            log.exception("unexpected error", extra={"method": method, "trace_id": _trace_id(context)})
            status = to_rpc_status(errors.DomainError("internal error; see the server log"), self._domain)
        await context.abort(status.code, status.details, status.trailing_metadata)

    def _log(self, context: grpc.aio.ServicerContext, method: str, started: float, code: str) -> None:
        if not log.isEnabledFor(logging.INFO):
            return  # on the hot path: skip building the record when nobody reads it
        log.info(
            "rpc",
            extra={
                "method": method,
                "code": code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "trace_id": _trace_id(context),
            },
        )

    def _wrap_unary(self, method: str, role: str | None, behavior: Callable[..., Any]) -> Callable[..., Any]:
        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            code = "OK"
            try:
                if self._guard is not None:
                    await self._guard(method, role, context)
                _admit(request)
                return await behavior(request, context)
            except Exception as exc:
                code = type(exc).__name__
                await self._fail(context, method, exc)
            finally:
                self._log(context, method, started, code)

        return unary

    def _wrap_stream(self, method: str, role: str | None, behavior: Callable[..., Any]) -> Callable[..., Any]:
        async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            started = time.perf_counter()
            code = "OK"
            try:
                if self._guard is not None:
                    await self._guard(method, role, context)
                _admit(request)
                async for item in behavior(request, context):
                    yield item
            except Exception as exc:
                code = type(exc).__name__
                await self._fail(context, method, exc)
            finally:
                self._log(context, method, started, code)

        return stream
