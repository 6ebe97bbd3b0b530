"""The metadata of the call being served, read from gRPC once per call and shared by the code that serves it."""

from __future__ import annotations

import contextvars
from typing import Any

Metadata = tuple[tuple[str, Any], ...]

# grpc.aio builds a new tuple (every key and value decoded again) on each invocation_metadata(): about 4 us for the
# nine entries an edge call carries. The telemetry wrapper, the token guard and the body check all read it.
_held: contextvars.ContextVar[tuple[object, Metadata]] = contextvars.ContextVar("call_metadata", default=(None, ()))


def of(context: Any) -> Metadata:
    """`context.invocation_metadata()` (a grpc.aio.ServicerContext) as a tuple, read once per call. Each served call
    runs in its own task, so what is held here is that call's; the context is compared all the same."""
    held, metadata = _held.get()
    if held is not context:
        metadata = tuple(context.invocation_metadata() or ())
        _held.set((context, metadata))
    return metadata
