"""Mesh calls of every kind carry W3C trace context and make client spans, and served methods of every kind make
server spans that continue them: a real grpc.aio server on port 0 and a channel with the mesh's interceptors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.runtime import rpc_telemetry, tracing

SERVICE = "mcpmesh.test.v1.EchoService"


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """Tracing on for this test only (every trace recorded), as the workflows process has it."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "_provider", provider)
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("test"))
    monkeypatch.setattr(tracing, "_service", "workflows")
    yield exporter
    provider.shutdown()


class Echo:
    """Answers each kind of call with what it received, and keeps the traceparent each call arrived with."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def _note(self, kind: str, context: grpc.aio.ServicerContext) -> None:
        self.seen[kind] = str(dict(context.invocation_metadata() or ()).get("traceparent", ""))

    async def unary_unary(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        self._note("UnaryUnary", context)
        return request

    async def unary_stream(self, request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        self._note("UnaryStream", context)
        for part in (b"one", b"two", request):
            yield part

    async def stream_unary(self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> bytes:
        self._note("StreamUnary", context)
        return b"".join([part async for part in requests])

    async def stream_stream(self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        self._note("StreamStream", context)
        async for part in requests:
            yield part

    def handler(self) -> grpc.GenericRpcHandler:
        plain: dict[str, grpc.RpcMethodHandler] = {
            "UnaryUnary": grpc.unary_unary_rpc_method_handler(self.unary_unary),
            "UnaryStream": grpc.unary_stream_rpc_method_handler(self.unary_stream),
            "StreamUnary": grpc.stream_unary_rpc_method_handler(self.stream_unary),
            "StreamStream": grpc.stream_stream_rpc_method_handler(self.stream_stream),
        }
        served = {name: rpc_telemetry.instrument("test", f"/{SERVICE}/{name}", h) for name, h in plain.items()}
        return grpc.method_handlers_generic_handler(SERVICE, served)


def _same(data: bytes) -> bytes:
    return data


CODECS: dict[str, Any] = {"request_serializer": _same, "response_deserializer": _same}


async def _requests() -> AsyncIterator[bytes]:
    for part in (b"a", b"b"):
        yield part


async def _call_each_kind(echo: Echo) -> dict[str, Any]:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((echo.handler(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    answers: dict[str, Any] = {}
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", interceptors=rpc_telemetry.client_interceptors()) as channel:
            with tracing.span("workflow step"):
                answers["UnaryUnary"] = await channel.unary_unary(f"/{SERVICE}/UnaryUnary", **CODECS)(b"x", timeout=5)
                stream = channel.unary_stream(f"/{SERVICE}/UnaryStream", **CODECS)(b"x", timeout=5)
                answers["UnaryStream"] = [part async for part in stream]
                answers["StreamUnary"] = await channel.stream_unary(f"/{SERVICE}/StreamUnary", **CODECS)(_requests(), timeout=5)
                both = channel.stream_stream(f"/{SERVICE}/StreamStream", **CODECS)(_requests(), timeout=5)
                answers["StreamStream"] = [part async for part in both]
            # Client spans end from the calls' done callbacks: give the loop a moment, with a deadline.
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and len(echo.seen) < 4:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
    finally:
        await server.stop(None)
    return answers


def _traceparent(span: ReadableSpan) -> str:
    context = span.context
    assert context is not None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def test_every_kind_of_mesh_call_carries_its_client_span_and_the_server_continues_it(spans: InMemorySpanExporter) -> None:
    echo = Echo()
    answers = asyncio.run(_call_each_kind(echo))
    assert answers == {"UnaryUnary": b"x", "UnaryStream": [b"one", b"two", b"x"], "StreamUnary": b"ab", "StreamStream": [b"a", b"b"]}
    finished = spans.get_finished_spans()
    (step,) = [s for s in finished if s.name == "workflow step"]
    for kind in ("UnaryUnary", "UnaryStream", "StreamUnary", "StreamStream"):
        name = f"{SERVICE}/{kind}"
        (client,) = [s for s in finished if s.name == name and s.kind is SpanKind.CLIENT]
        (server,) = [s for s in finished if s.name == name and s.kind is SpanKind.SERVER]
        # One trace: the step, then the client span, whose traceparent the server received and continued.
        assert client.parent is not None and client.parent.span_id == step.context.span_id, kind
        assert echo.seen[kind] == _traceparent(client), kind
        assert server.parent is not None and server.parent.span_id == client.context.span_id, kind
        assert server.context.trace_id == step.context.trace_id, kind
        assert (client.attributes or {})["rpc.grpc.status_code"] == "OK", kind
        assert (server.attributes or {})["rpc.grpc.status_code"] == "OK", kind


def test_a_stream_refused_by_the_server_ends_its_client_span_with_the_code(spans: InMemorySpanExporter) -> None:
    async def refuse(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        await context.abort(grpc.StatusCode.NOT_FOUND, "no such workflow")
        yield b""  # pragma: no cover (never reached: abort raises)

    async def call() -> grpc.StatusCode:
        server = grpc.aio.server()
        handler = rpc_telemetry.instrument("test", f"/{SERVICE}/Watch", grpc.unary_stream_rpc_method_handler(refuse))
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Watch": handler}),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", interceptors=rpc_telemetry.client_interceptors()) as channel:
                with tracing.span("watch"), pytest.raises(grpc.aio.AioRpcError) as refused:
                    async for _ in channel.unary_stream(f"/{SERVICE}/Watch", **CODECS)(b"x", timeout=5):
                        pass
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline and not any(s.kind is SpanKind.CLIENT for s in spans.get_finished_spans()):
                    await asyncio.sleep(0.01)
            return refused.value.code()
        finally:
            await server.stop(None)

    assert asyncio.run(call()) is grpc.StatusCode.NOT_FOUND
    (client,) = [s for s in spans.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert (client.attributes or {})["rpc.grpc.status_code"] == "NOT_FOUND"
    assert client.name == f"{SERVICE}/Watch"


def test_a_traced_process_has_one_interceptor_per_call_kind_and_an_untraced_one_none(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    kinds = [type(i) for i in rpc_telemetry.client_interceptors()]
    assert kinds == [rpc_telemetry.UnaryUnaryTracing, rpc_telemetry.UnaryStreamTracing,
                     rpc_telemetry.StreamUnaryTracing, rpc_telemetry.StreamStreamTracing]
    monkeypatch.setattr(tracing, "_provider", None)
    assert rpc_telemetry.client_interceptors() == []
    assert trace.get_current_span().is_recording() is False


@pytest.mark.parametrize(("traceparent", "tracestate"), [
    ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", ""),
    ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", "vendor=a,other=b"),
    ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03", ""),
    ("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future", ""),  # a later version: the propagator's rules
    ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", ""),  # all-zero ids are invalid
    ("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", ""),  # upper case is not allowed
    ("not a traceparent", ""),
    ("", ""),
])
def test_the_served_calls_parent_is_what_the_w3c_propagator_reads(traceparent: str, tracestate: str) -> None:
    carrier = {"traceparent": traceparent, "tracestate": tracestate} if traceparent else {}
    parent, sampled = tracing.parent_of(traceparent, tracestate)
    fast = trace.get_current_span(parent)
    reference = trace.get_current_span(tracing.PROPAGATOR.extract(carrier)).get_span_context()
    assert fast.get_span_context() == reference and not fast.is_recording()
    # The caller's decision, as the parent-based sampler would read it; None: no valid parent, this process decides.
    assert sampled == (reference.trace_flags.sampled if reference.is_valid else None)
    if reference.is_valid and traceparent.startswith("00-"):
        # What a served call passes on to its own calls: the header it was given (the unsampled ids parsed on use).
        onward: dict[str, str] = {}
        tracing.PROPAGATOR.inject(onward, context=parent)
        assert onward["traceparent"] == traceparent and onward.get("tracestate", "") == tracestate
