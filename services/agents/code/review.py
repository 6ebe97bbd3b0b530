"""The optional model step: a short review of the most severe findings. Never invents findings; always labelled."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from services.agents.base import SEVERITIES, Finding, RunContext
from services.runtime.errors import ResourceExhausted, Unavailable

log = logging.getLogger("mcpmesh.agents.review")
REVIEWED = 20  # findings sent to the model, most severe first
SYSTEM = (
    "You review static analysis findings for a software team. For each finding given, say in one or two sentences "
    "why it matters and how to fix it. Do not add findings that are not in the list. Be brief."
)
NOT_RUN = {
    "not_configured": "Model review not run: no model is configured; the findings are the static analysis alone.",
    "skipped": "Model review skipped at the caller's request; the findings are the static analysis alone.",
}


@dataclass(frozen=True)
class ModelOutcome:
    status: str  # one of base.LLM_STATES
    text: str = ""  # Markdown, headed as model output
    note: str = ""  # one sentence for the summary
    input_tokens: int = 0
    output_tokens: int = 0


def _prompt(findings: Sequence[Finding], summary: str) -> str:
    lines = [summary, "", "Findings:"]
    lines += [f"- [{f.severity}] {f.rule_id} ({f.tool}) at {f.file}:{f.line}: {f.message}. Code: {f.snippet[:200]}" for f in findings]
    return "\n".join(lines)


def review(findings: Sequence[Finding], summary: str, context: RunContext) -> ModelOutcome:
    """Throttling and an unreachable model are the caller's to retry (RESOURCE_EXHAUSTED / UNAVAILABLE carry the
    retry information); any other model failure leaves the static result, marked as such."""
    if context.model is None:
        return ModelOutcome(context.model_status, note=NOT_RUN.get(context.model_status, ""))
    if not findings:
        return ModelOutcome("completed", note="No findings, so nothing for the model to review.")
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    chosen = sorted(findings, key=lambda f: (rank[f.severity], f.sort_key()))[:REVIEWED]
    context.check()
    try:
        reply = context.model.complete(SYSTEM, _prompt(chosen, summary))
    except (ResourceExhausted, Unavailable):
        raise
    except Exception as exc:  # the static analysis stands on its own; the failure is reported, not hidden
        log.warning("model review failed: %s", exc)
        return ModelOutcome("failed", note=f"Model review failed ({type(exc).__name__}); the findings are the static analysis alone.")
    text = f"## Model review\n\nWritten by the model {reply.model_id}, not by the analysers, about the {len(chosen)} most severe findings.\n\n{reply.text.strip()}"
    return ModelOutcome(
        "completed",
        text=text,
        note=f"Model review by {reply.model_id} in report.md.",
        input_tokens=reply.input_tokens,
        output_tokens=reply.output_tokens,
    )
