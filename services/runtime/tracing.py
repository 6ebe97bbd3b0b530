"""OpenTelemetry traces of one service process: set-up, spans for steps and runs, and the W3C trace context hooks."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

MODES = ("auto", "otlp", "file", "console", "off")
# W3C trace context only (no baggage): the one format Envoy and the services exchange, and the cheapest to parse.
PROPAGATOR = TraceContextTextMapPropagator()
_provider: TracerProvider | None = None
_service = ""
_tracer: trace.Tracer = trace.get_tracer("mcpmesh")


def parse_mode(raw: str) -> str:
    """MCPMESH_TRACING: auto (OTLP when an endpoint is set, else a file), otlp, file, console or off."""
    mode = raw.strip().lower()
    if mode not in MODES:
        raise ValueError(f"expected one of {', '.join(MODES)}")
    return mode


class FileSpanExporter(SpanExporter):
    """Spans as JSON lines in one file per process; the file is started over past `limit` bytes (one old copy kept)."""

    def __init__(self, path: Path, limit: int = 50 * 2**20) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.limit = limit
        self._lock = threading.Lock()
        self._file: IO[str] = path.open("a", encoding="utf-8")

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            for span in spans:
                self._file.write(span.to_json(indent=None) + "\n")
            self._file.flush()
            if self._file.tell() > self.limit:
                self._file.close()
                self.path.replace(self.path.with_suffix(".1.jsonl"))
                self._file = self.path.open("a", encoding="utf-8")
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            self._file.close()


def configure(service: str, version: str, mode: str, otlp_endpoint: str, data_dir: Path, sample: float = 1.0) -> str:
    """Installs the process's tracer provider once; returns where spans go ("off" when not traced).

    `sample` is the share of traces started here that are recorded; a caller's decision (the sampled flag of its
    traceparent, drawn by Envoy's edge at the same rate) is always followed, so a trace is whole or absent."""
    global _provider, _tracer, _service
    _service = service
    if mode == "auto":
        mode = "otlp" if otlp_endpoint else "file"
    if mode == "off" or _provider is not None:
        return mode
    if mode == "otlp" and not otlp_endpoint:
        raise SystemExit("MCPMESH_TRACING=otlp needs MCPMESH_OTLP_ENDPOINT (e.g. http://127.0.0.1:4318)")
    resource = Resource.create({
        "service.name": f"mcpmesh-{service}",
        "service.namespace": "mcpmesh",
        "service.version": version,
        "service.instance.id": f"{socket.gethostname()}-{os.getpid()}",
    })
    provider = TracerProvider(resource=resource, sampler=ParentBased(TraceIdRatioBased(sample)))
    exporter: SpanExporter
    if mode == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=f"{otlp_endpoint.rstrip('/')}/v1/traces", timeout=5)
    elif mode == "file":
        exporter = FileSpanExporter(data_dir / "traces" / f"{service}-{os.getpid()}.jsonl")
    else:
        exporter = ConsoleSpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _provider = provider
    _tracer = provider.get_tracer("mcpmesh", version)
    return mode


def enabled() -> bool:
    return _provider is not None


def service() -> str:
    """The service this process runs, as tracing was configured for it."""
    return _service


def tracer() -> trace.Tracer:
    return _tracer


def shutdown() -> None:
    """Exports what is buffered; called as the server stops."""
    if _provider is not None:
        _provider.shutdown()


@contextlib.contextmanager
def span(name: str, **attributes: Any) -> Iterator[trace.Span]:
    """A span for a unit of work inside a call: a LangGraph step, an agent run, a tool execution, an MCP or model call.

    Attributes with a None value are left out. A no-op (and cheap) when tracing is off."""
    with _tracer.start_as_current_span(name, attributes={k: v for k, v in attributes.items() if v is not None}) as current:
        yield current


def current_traceparent() -> str:
    """The W3C `traceparent` of the current span, "" when there is none: what a workflow record keeps."""
    carrier: dict[str, str] = {}
    PROPAGATOR.inject(carrier)
    return carrier.get("traceparent", "")


def current_trace_id() -> str:
    """The current trace id as 32 hex digits (X-Ray and the OTLP backends show this), "" when not traced."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


def extract(carrier: Mapping[str, str]) -> otel_context.Context:
    return PROPAGATOR.extract(carrier)


# The form every traceparent from Envoy and the services takes (version 00); others go through the propagator.
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ZERO_TRACE_ID, _ZERO_SPAN_ID = "0" * 32, "0" * 16


def _remote_context(match: re.Match[str], tracestate: str) -> trace.SpanContext:
    return trace.SpanContext(
        int(match[1], 16), int(match[2], 16), is_remote=True, trace_flags=trace.TraceFlags(int(match[3], 16)),
        trace_state=trace.TraceState.from_header([tracestate]) if tracestate else None,
    )


class _UnsampledCaller(trace.NonRecordingSpan):
    """The caller's span when its traceparent says "not sampled". Most such calls never ask for it (no log line, no
    call onward, no span inside), so its ids are parsed on first use: about 5 us less per call in a loaded server."""

    def __init__(self, match: re.Match[str], tracestate: str) -> None:  # NonRecordingSpan's takes the parsed context
        self._match = match
        self._tracestate = tracestate
        self._parsed: trace.SpanContext | None = None

    def get_span_context(self) -> trace.SpanContext:
        if self._parsed is None:
            self._parsed = _remote_context(self._match, self._tracestate)
        return self._parsed

    def __repr__(self) -> str:
        return f"NonRecordingSpan({self.get_span_context()!r})"


def parent_of(traceparent: str, tracestate: str = "") -> tuple[otel_context.Context, bool | None]:
    """The caller's span as the parent context of a served call (what PROPAGATOR.extract gives, built directly for
    the usual version-00 header) and the caller's decision: True to record the call, False not to, None when there
    is no valid traceparent (this process's sampler decides). Every call of a traced process pays this."""
    if not traceparent:
        return otel_context.Context(), None
    match = _TRACEPARENT.fullmatch(traceparent)
    if match is None:
        parent = PROPAGATOR.extract({"traceparent": traceparent, "tracestate": tracestate})
        remote = trace.get_current_span(parent).get_span_context()
        return parent, remote.trace_flags.sampled if remote.is_valid else None
    if match[1] == _ZERO_TRACE_ID or match[2] == _ZERO_SPAN_ID:
        return otel_context.Context(), None
    if int(match[3], 16) & trace.TraceFlags.SAMPLED:
        return trace.set_span_in_context(trace.NonRecordingSpan(_remote_context(match, tracestate)), otel_context.Context()), True
    return trace.set_span_in_context(_UnsampledCaller(match, tracestate), otel_context.Context()), False


@contextlib.contextmanager
def resumed(name: str, traceparent: str, **attributes: Any) -> Iterator[trace.Span]:
    """A span for work that continues a stored trace later (a workflow resumed after a restart).

    It is a child of the stored span when that is known, so the resumed steps join the trace that created the
    workflow; with no stored traceparent it is a root span of its own."""
    parent = extract({"traceparent": traceparent}) if traceparent else otel_context.Context()
    with _tracer.start_as_current_span(
        name, context=parent, attributes={k: v for k, v in attributes.items() if v is not None}
    ) as current:
        yield current
