"""Structured JSON logs, one object per line, with the service, the instance and the trace and span ids."""

from __future__ import annotations

import json
import logging
import sys
import time

from opentelemetry import trace

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str, instance: str = "") -> None:
        super().__init__()
        self._service = service
        self.instance = instance

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self._service,
            "instance": self.instance,
            "logger": record.name,
            "message": record.getMessage(),
        }
        # The span current where the record was made: a log line leads to its trace (X-Ray shows the same id).
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            entry["trace_id"] = format(context.trace_id, "032x")
            entry["span_id"] = format(context.span_id, "016x")
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


_formatter: JsonFormatter | None = None


def configure_logging(service: str, level: str) -> None:
    global _formatter
    _formatter = JsonFormatter(service)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def set_instance(instance: str) -> None:
    """Names this process in every later line (host:port), once the server has bound its port."""
    if _formatter is not None:
        _formatter.instance = instance
