"""A span and metrics for every gRPC call a service serves, and W3C trace context on every call it makes through the mesh."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from services.runtime import call_metadata, metrics, tracing

TRACE_HEADERS = ("traceparent", "tracestate")
# Health checks run every second from Envoy and the gateway: counted, never traced.
UNTRACED_PREFIXES = ("/grpc.health.", "/mcpmesh.health.")
# Codes that are the caller's doing: recorded on the span, but the span is not marked as failed.
CALLER_CODES = {"OK", "CANCELLED", "INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS", "FAILED_PRECONDITION",
                "PERMISSION_DENIED", "UNAUTHENTICATED", "OUT_OF_RANGE", "RESOURCE_EXHAUSTED"}


def _rpc_attributes(method: str) -> dict[str, str]:
    service, _, name = method.lstrip("/").partition("/")
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}


def _code(context: grpc.aio.ServicerContext, error: BaseException | None) -> str:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if error is None:
        return "OK"
    if isinstance(error, asyncio.CancelledError):
        return "CANCELLED"
    return "UNKNOWN"


def _start_server_span(method: str, context: grpc.aio.ServicerContext) -> tuple[trace.Span | None, otel_context.Context] | None:
    if not tracing.enabled() or method.startswith(UNTRACED_PREFIXES):
        return None
    traceparent = tracestate = ""
    for key, value in call_metadata.of(context):
        if key == "traceparent" and isinstance(value, str):
            traceparent = value
        elif key == "tracestate" and isinstance(value, str):
            tracestate = value
    parent, sampled = tracing.parent_of(traceparent, tracestate)
    if sampled is False:
        # Not sampled upstream: no span, but the caller's context stays current so calls onward say so too.
        return None, parent
    span = tracing.tracer().start_span(method.lstrip("/"), context=parent, kind=SpanKind.SERVER, attributes=_rpc_attributes(method))
    return span, trace.set_span_in_context(span)


def _end_span(span: trace.Span, code: str) -> None:
    span.set_attribute("rpc.grpc.status_code", code)
    if code not in CALLER_CODES:
        span.set_status(Status(StatusCode.ERROR, code))
    span.end()


def _single_answer(service: str, method: str, behaviour: Callable[..., Any]) -> Callable[..., Any]:
    """A method that answers once (unary-unary, stream-unary): `request` is the message or the request stream."""

    async def served(request: Any, context: grpc.aio.ServicerContext) -> Any:
        started = time.perf_counter()
        traced = _start_server_span(method, context)
        token = otel_context.attach(traced[1]) if traced else None
        error: BaseException | None = None
        try:
            return await behaviour(request, context)
        except BaseException as exc:
            error = exc
            raise
        finally:
            code = _code(context, error)
            if traced:
                otel_context.detach(token)  # type: ignore[arg-type]
                if traced[0] is not None:
                    _end_span(traced[0], code)
            metrics.record(service, method, code, time.perf_counter() - started)

    return served


def _streamed_answer(service: str, method: str, behaviour: Callable[..., Any]) -> Callable[..., Any]:
    """A method that answers with a stream (unary-stream, stream-stream)."""

    async def served(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        started = time.perf_counter()
        traced = _start_server_span(method, context)
        error: BaseException | None = None
        messages = behaviour(request, context)
        try:
            while True:
                # The span is current only while the handler runs, not while the caller reads.
                token = otel_context.attach(traced[1]) if traced else None
                try:
                    item = await messages.__anext__()
                except StopAsyncIteration:
                    break
                finally:
                    if token is not None:
                        otel_context.detach(token)
                yield item
        except BaseException as exc:
            error = exc
            raise
        finally:
            code = _code(context, error)
            if traced and traced[0] is not None:
                _end_span(traced[0], code)
            metrics.record(service, method, code, time.perf_counter() - started)

    return served


def instrument(service: str, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """Wraps a served method of any kind: its span (continuing the caller's trace) is current while it runs; its code
    and time are counted for Prometheus and EMF."""
    codecs = {"request_deserializer": handler.request_deserializer, "response_serializer": handler.response_serializer}
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(_single_answer(service, method, handler.unary_unary), **codecs)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(_streamed_answer(service, method, handler.unary_stream), **codecs)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(_single_answer(service, method, handler.stream_unary), **codecs)
    if handler.stream_stream is not None:
        return grpc.stream_stream_rpc_method_handler(_streamed_answer(service, method, handler.stream_stream), **codecs)
    return handler


def _method_name(method: str | bytes) -> str:
    return method.decode() if isinstance(method, bytes) else method


async def _finish_client_span(span: trace.Span, call: Any) -> None:
    try:
        code = await call.code()
        _end_span(span, code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN")
    except Exception:  # the span must end whatever happened to the call
        _end_span(span, "UNKNOWN")


class _ClientTracing:
    """A client span per mesh call and its `traceparent` in the metadata (replacing one relayed from the caller).

    grpc.aio files each interceptor under the first call kind it subclasses, so one class per kind (below): an
    interceptor that subclassed both unary kinds would only ever see unary-unary calls."""

    def _traced(self, details: grpc.aio.ClientCallDetails) -> tuple[grpc.aio.ClientCallDetails, trace.Span | None]:
        method = _method_name(details.method)
        if method.startswith(UNTRACED_PREFIXES):
            return details, None
        carrier: dict[str, str] = {}
        span: trace.Span | None = None
        if trace.get_current_span().is_recording():
            span = tracing.tracer().start_span(method.lstrip("/"), kind=SpanKind.CLIENT, attributes=_rpc_attributes(method))
            tracing.PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
        else:
            # Untraced here: pass the caller's decision on as it is (or nothing), no span of our own.
            tracing.PROPAGATOR.inject(carrier)
            if not carrier and not details.metadata:
                return details, None
        kept = [(k, v) for k, v in (details.metadata or ()) if k not in TRACE_HEADERS]
        metadata = grpc.aio.Metadata(*kept, *carrier.items())
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        ), span

    @staticmethod
    def _watch(call: Any, span: trace.Span | None) -> Any:
        """Ends the span with the call's status once the call is done (for a stream: its last message or its error)."""
        if span is not None:
            call.add_done_callback(lambda done: asyncio.ensure_future(_finish_client_span(span, done)))
        return call


class UnaryUnaryTracing(_ClientTracing, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        details, span = self._traced(details)
        return self._watch(await continuation(details, request), span)


class UnaryStreamTracing(_ClientTracing, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        details, span = self._traced(details)
        return self._watch(await continuation(details, request), span)


class StreamUnaryTracing(_ClientTracing, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation: Callable[..., Any], details: Any, requests: Any) -> Any:
        details, span = self._traced(details)
        return self._watch(await continuation(details, requests), span)


class StreamStreamTracing(_ClientTracing, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation: Callable[..., Any], details: Any, requests: Any) -> Any:
        details, span = self._traced(details)
        return self._watch(await continuation(details, requests), span)


def client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """For mesh channels: one per call kind; none when tracing is off, so an untraced process pays nothing per call."""
    if not tracing.enabled():
        return []
    return [UnaryUnaryTracing(), UnaryStreamTracing(), StreamUnaryTracing(), StreamStreamTracing()]
