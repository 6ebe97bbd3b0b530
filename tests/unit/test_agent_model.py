"""The Bedrock model step through the real langchain-aws and boto3 code, against a small local stand-in of the
Bedrock Runtime Converse HTTP API (moto does not implement Converse): a review, token usage, throttling, and the
span each call makes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from services.agents import code_analyzer
from services.agents.base import RunContext
from services.agents.model import BedrockModel, BedrockSettings
from services.runtime import tracing
from services.runtime.errors import ResourceExhausted, Unavailable

PLANTED = Path(__file__).parent.parent / "fixtures" / "code" / "planted"
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


class ConverseStandIn:
    """Answers POST /model/{id}/converse like Bedrock Runtime: a planned answer per request, in order."""

    def __init__(self) -> None:
        self.plan: list[tuple[int, dict[str, Any], dict[str, str]]] = []
        self.requests: list[tuple[str, dict[str, Any]]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                stand_in.requests.append((self.path, body))
                status, answer, headers = stand_in.plan.pop(0) if stand_in.plan else stand_in.reply("fine")
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def reply(text: str, tokens_in: int = 321, tokens_out: int = 45) -> tuple[int, dict[str, Any], dict[str, str]]:
        return 200, {
            "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": tokens_in, "outputTokens": tokens_out, "totalTokens": tokens_in + tokens_out},
            "metrics": {"latencyMs": 12},
        }, {}

    @staticmethod
    def throttled() -> tuple[int, dict[str, Any], dict[str, str]]:
        return 429, {"message": "Too many requests, please wait before trying again."}, {"x-amzn-ErrorType": "ThrottlingException"}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def converse() -> Iterator[ConverseStandIn]:
    stand_in = ConverseStandIn()
    yield stand_in
    stand_in.close()


@pytest.fixture
def bedrock(converse: ConverseStandIn, monkeypatch: pytest.MonkeyPatch) -> Iterator[ConverseStandIn]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}.items():
        monkeypatch.setenv(name, value)
    converse.plan.clear()
    converse.requests.clear()
    yield converse


def _model(stand_in: ConverseStandIn, attempts: int = 3) -> BedrockModel:
    return BedrockModel(BedrockSettings(MODEL, region="us-east-1", endpoint_url=stand_in.url, max_attempts=attempts))


def test_the_review_is_labelled_as_model_output_with_token_usage(bedrock: ConverseStandIn) -> None:
    bedrock.plan.append(bedrock.reply("B602: shell=True lets input run commands; pass a list without a shell."))
    result = code_analyzer.run({"path": str(PLANTED)}, RunContext(roots=(PLANTED.parent,), model=_model(bedrock)))
    assert result.llm_status == "completed"
    assert (result.input_tokens, result.output_tokens) == (321, 45)
    report = result.artifacts[0].content
    assert "## Model review" in report and f"Written by the model {MODEL}, not by the analysers" in report
    assert "pass a list without a shell" in report
    path, body = bedrock.requests[0]
    assert path == f"/model/{MODEL.replace(':', '%3A')}/converse" or path == f"/model/{MODEL}/converse"
    prompt = body["messages"][0]["content"][0]["text"]
    assert "B602" in prompt and "app/handlers.py:15" in prompt  # the model is given the real findings
    assert body["system"][0]["text"].startswith("You review static analysis findings")
    # The static analysis is unchanged by the model: same findings as without it.
    plain = code_analyzer.run({"path": str(PLANTED)}, RunContext(roots=(PLANTED.parent,)))
    assert result.findings == plain.findings


def test_a_throttled_answer_is_retried_with_back_off(bedrock: ConverseStandIn) -> None:
    bedrock.plan += [bedrock.throttled(), bedrock.reply("ok")]
    reply = _model(bedrock).complete("system", "prompt")
    assert (reply.text, reply.input_tokens) == ("ok", 321)
    assert len(bedrock.requests) == 2


def test_throttling_that_outlasts_the_retries_is_resource_exhausted_with_retry_information(bedrock: ConverseStandIn) -> None:
    bedrock.plan += [bedrock.throttled(), bedrock.throttled()]
    with pytest.raises(ResourceExhausted) as throttled:
        code_analyzer.run({"path": str(PLANTED)}, RunContext(roots=(PLANTED.parent,), model=_model(bedrock, attempts=2)))
    assert throttled.value.reason == "MODEL_THROTTLED"
    assert float(throttled.value.metadata["retry_after_seconds"]) > 0
    assert len(bedrock.requests) == 2


def test_an_unreachable_model_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    model = BedrockModel(BedrockSettings(MODEL, endpoint_url="http://127.0.0.1:9", max_attempts=1, timeout_seconds=2))
    with pytest.raises(Unavailable) as down:
        model.complete("system", "prompt")
    assert down.value.reason == "MODEL_UNAVAILABLE"


def test_another_model_error_leaves_the_static_result_marked_failed(bedrock: ConverseStandIn) -> None:
    bedrock.plan.append((400, {"message": "Malformed input request"}, {"x-amzn-ErrorType": "ValidationException"}))
    result = code_analyzer.run({"path": str(PLANTED)}, RunContext(roots=(PLANTED.parent,), model=_model(bedrock)))
    assert result.llm_status == "failed" and "Model review failed" in result.summary
    assert "## Model review" not in result.artifacts[0].content
    assert len(result.findings) == 25


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
    """Spans made through services.runtime.tracing, kept in memory for this test only."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("test"))
    return exporter


def test_a_model_call_is_a_span_with_the_model_and_its_token_usage(bedrock: ConverseStandIn, spans: InMemorySpanExporter) -> None:
    bedrock.plan.append(bedrock.reply("fine", tokens_in=120, tokens_out=7))
    _model(bedrock).complete("system", "prompt", max_tokens=256)
    (span,) = spans.get_finished_spans()
    assert span.name == f"chat {MODEL}"
    attributes = dict(span.attributes or {})
    assert attributes["gen_ai.system"] == "aws.bedrock"
    assert attributes["gen_ai.request.model"] == MODEL
    assert attributes["gen_ai.request.max_tokens"] == 256
    assert (attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"]) == (120, 7)
    assert attributes["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert attributes["server.address"] == bedrock.url
    assert span.status.status_code is StatusCode.UNSET


def test_a_throttled_model_call_is_a_failed_span_naming_the_bedrock_error(bedrock: ConverseStandIn, spans: InMemorySpanExporter) -> None:
    bedrock.plan += [bedrock.throttled(), bedrock.throttled()]
    with pytest.raises(ResourceExhausted):
        _model(bedrock, attempts=2).complete("system", "prompt")
    (span,) = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert dict(span.attributes or {})["error.type"] == "ThrottlingException"
    assert "gen_ai.usage.input_tokens" not in (span.attributes or {})
    assert [event.name for event in span.events] == ["exception"]


def test_an_unreachable_model_is_a_failed_span_naming_the_connection_error(
    monkeypatch: pytest.MonkeyPatch, spans: InMemorySpanExporter
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    model = BedrockModel(BedrockSettings(MODEL, endpoint_url="http://127.0.0.1:9", max_attempts=1, timeout_seconds=2))
    with pytest.raises(Unavailable):
        model.complete("system", "prompt")
    (span,) = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert dict(span.attributes or {})["error.type"] == "EndpointConnectionError"
