"""The optional model step: a language model explains the static findings; it never adds or changes one."""

from __future__ import annotations

from dataclasses import dataclass

from services.agents.base import ModelClient
from services.agents.database.findings import DbFinding

MAX_EXPLAINED = 40  # the most severe ones; a prompt stays small and the answer fits its token budget
SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
SYSTEM = (
    "You review database schemas. A static analyzer found the numbered problems below. For each number, write one "
    "or two sentences on why it matters for this schema and what to check before applying the fix. Do not add "
    "problems, tables or columns that are not listed. Answer only with lines of the form `N:: explanation`."
)


@dataclass(frozen=True)
class Explanations:
    """Model text per finding (by position in the analysis' list), with who wrote it and what it cost."""

    by_finding: dict[int, str]
    status: str  # "completed" or "failed"
    model_id: str = ""
    input_tokens: int = 0
    output_tokens: int = 0


def _where(finding: DbFinding) -> str:
    if finding.file and finding.line and not finding.table:
        return f"{finding.file}:{finding.line}"
    return ".".join(p for p in (finding.table, finding.column or finding.index) if p) or f"{finding.file}:{finding.line}"


def _line(number: int, finding: DbFinding) -> str:
    fix = f" Fix: {finding.sql}" if finding.sql else ""
    return f"{number}. [{finding.rule}] {_where(finding)}: {finding.message}.{fix}"


def explain(findings: list[DbFinding], model: ModelClient) -> Explanations:
    """Asks the model once; a failed call leaves the static result as it is and says the step failed."""
    chosen = sorted(range(len(findings)), key=lambda i: (SEVERITY_RANK.get(findings[i].severity, 9), i))[:MAX_EXPLAINED]
    if not chosen:
        return Explanations({}, "completed", model.model_id)
    prompt = "\n".join(_line(n, findings[i]) for n, i in enumerate(chosen, start=1))
    try:
        reply = model.complete(SYSTEM, prompt, max_tokens=2048)
    except Exception:  # throttling, network, a bad answer: the findings stand without prose
        return Explanations({}, "failed", model.model_id)
    texts: dict[int, str] = {}
    for line in reply.text.splitlines():
        number, sep, text = line.strip().lstrip("-* ").partition("::")
        if sep and number.strip().isdigit() and 1 <= int(number) <= len(chosen) and text.strip():
            texts[chosen[int(number) - 1]] = text.strip()
    return Explanations(texts, "completed", reply.model_id, reply.input_tokens, reply.output_tokens)


def explanations_markdown(findings: list[DbFinding], explanations: Explanations) -> str:
    """The model's text per finding, headed by which model wrote it: nothing here comes from static analysis."""
    lines = ["# Explanations", "", f"Written by the language model `{explanations.model_id}`; the findings themselves come "
             "from static analysis (report.md).", ""]
    for index, text in sorted(explanations.by_finding.items()):
        lines.append(f"- **{findings[index].rule}** at {_where(findings[index])}: {text}")
    return "\n".join(lines) + "\n"
