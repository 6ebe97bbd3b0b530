"""The model port's Bedrock adapter: ChatBedrockConverse from langchain-aws, with botocore's retries and back-off."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import Span

from services.agents.base import ModelReply
from services.runtime import tracing
from services.runtime.errors import ResourceExhausted, Unavailable

log = logging.getLogger("mcpmesh.agents.model")
THROTTLED = {"ThrottlingException", "TooManyRequestsException", "ServiceQuotaExceededException"}
UNAVAILABLE = {"ServiceUnavailableException", "ModelNotReadyException", "InternalServerException", "ModelTimeoutException"}
RETRY_AFTER_SECONDS = 5  # what a caller is told to wait once botocore's own retries are spent


def error_type(error: BaseException) -> str:
    """What failed, in words a trace view can group by: Bedrock's error code (ThrottlingException ...) or the class
    of the error botocore raised, also when it was turned into one of ours."""
    original = error.__context__ if isinstance(error, (ResourceExhausted, Unavailable)) and error.__context__ else error
    response = getattr(original, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return str(code) if code else type(original).__name__


@dataclass(frozen=True)
class BedrockSettings:
    model_id: str
    region: str = "us-east-1"
    endpoint_url: str = ""  # empty: AWS's own endpoint for the region
    max_attempts: int = 4  # in all, the first included; botocore "standard" mode backs off exponentially with jitter
    timeout_seconds: int = 60


class BedrockModel:
    """A ModelClient on Bedrock Runtime's Converse API. Credentials come from boto3's usual chain."""

    def __init__(self, settings: BedrockSettings) -> None:
        from botocore.config import Config
        from langchain_aws import ChatBedrockConverse

        self.model_id = settings.model_id
        self._settings = settings
        self._chat = ChatBedrockConverse(
            model=settings.model_id,
            region_name=settings.region,
            base_url=settings.endpoint_url or None,  # the alias of endpoint_url
            config=Config(
                retries={"total_max_attempts": settings.max_attempts, "mode": "standard"},
                connect_timeout=settings.timeout_seconds,
                read_timeout=settings.timeout_seconds,
            ),
        )

    def complete(self, system: str, prompt: str, *, max_tokens: int = 1024) -> ModelReply:
        """One Converse call, as a span with the OpenTelemetry GenAI attributes (model, token usage, stop reason)."""
        with tracing.span(
            f"chat {self.model_id}", **{
                "gen_ai.system": "aws.bedrock", "gen_ai.operation.name": "chat",
                "gen_ai.request.model": self.model_id, "gen_ai.request.max_tokens": max_tokens,
                "server.address": self._settings.endpoint_url or f"bedrock-runtime.{self._settings.region}.amazonaws.com",
            },
        ) as span:
            try:
                reply = self._converse(system, prompt, max_tokens, span)
            except Exception as exc:
                # The span itself records the exception and the error status as it ends.
                span.set_attribute("error.type", error_type(exc))
                raise
            span.set_attribute("gen_ai.usage.input_tokens", reply.input_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", reply.output_tokens)
            return reply

    def _converse(self, system: str, prompt: str, max_tokens: int, span: Span) -> ModelReply:
        from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, EndpointConnectionError
        from langchain_core.messages import HumanMessage, SystemMessage

        try:
            message: Any = self._chat.invoke([SystemMessage(system), HumanMessage(prompt)], max_tokens=max_tokens)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in THROTTLED:
                raise ResourceExhausted(
                    f"the model {self.model_id} is throttling requests; retry later",
                    reason="MODEL_THROTTLED",
                    metadata={"model": self.model_id, "retry_after_seconds": str(RETRY_AFTER_SECONDS)},
                ) from None
            if code in UNAVAILABLE:
                raise Unavailable(
                    f"the model {self.model_id} is unavailable ({code}); retry later",
                    reason="MODEL_UNAVAILABLE",
                    metadata={"model": self.model_id, "retry_after_seconds": str(RETRY_AFTER_SECONDS)},
                ) from None
            raise
        except (EndpointConnectionError, ConnectionError) as exc:
            log.warning("model endpoint unreachable: %s", exc)
            raise Unavailable(
                f"the model endpoint for {self.model_id} cannot be reached; retry later",
                reason="MODEL_UNAVAILABLE",
                metadata={"model": self.model_id, "retry_after_seconds": str(RETRY_AFTER_SECONDS)},
            ) from None
        except BotoCoreError:
            raise
        usage = getattr(message, "usage_metadata", None) or {}
        stop = (getattr(message, "response_metadata", None) or {}).get("stopReason")
        if stop:
            span.set_attribute("gen_ai.response.finish_reasons", [str(stop)])
        text = message.content if isinstance(message.content, str) else "".join(
            block.get("text", "") for block in message.content if isinstance(block, dict)
        )
        return ModelReply(
            text=text,
            model_id=self.model_id,
            input_tokens=int(usage.get("input_tokens", 0)),
            output_tokens=int(usage.get("output_tokens", 0)),
        )
