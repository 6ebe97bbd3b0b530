"""Findings from the REST answers as SARIF 2.1.0, written by the Code Analyzer's own exporter (one SARIF per tool)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcpmesh.agents.v1 import agent_pb2

# The contract's Severity enum orders severities (INFO=1 .. CRITICAL=5); nothing else does.
SEVERITY_RANK = {name.removeprefix("SEVERITY_").lower(): number for name, number in agent_pb2.Severity.items() if number}


def _field(finding: dict[str, Any], name: str, default: Any = "") -> Any:
    """A finding field by its proto name (workflow results) or its JSON name (REST answers of the agents)."""
    head, *rest = name.split("_")
    camel = head + "".join(part.title() for part in rest)
    value = finding.get(name, finding.get(camel, default))
    return default if value is None else value


def severity(finding: dict[str, Any]) -> str:
    """"SEVERITY_HIGH", "high" or 4 -> "high"; unknown -> "info"."""
    value = _field(finding, "severity")
    if isinstance(value, int):
        return next((name for name, rank in SEVERITY_RANK.items() if rank == value), "info")
    name = str(value).removeprefix("SEVERITY_").lower()
    return name if name in SEVERITY_RANK else "info"


def location(finding: dict[str, Any]) -> tuple[str, int, int]:
    """(file, line, column) of a finding at a file span; ("", 0, 0) for one at a named object."""
    return str(_field(finding, "file")), int(_field(finding, "line", 0)), int(_field(finding, "column", 0))


def rule_id(finding: dict[str, Any]) -> str:
    return str(_field(finding, "rule_id") or "unknown")


def to_domain(finding: dict[str, Any]) -> Any:
    """The agents' Finding record from its REST form, so their exporter writes the SARIF."""
    from services.agents.base import CONFIDENCES, FileSpan, Finding, NamedObject

    file, line, column = location(finding)
    subject = _field(finding, "object", {}) or {}
    place = (
        FileSpan(file, line, column, int(_field(finding, "end_line", 0)), int(_field(finding, "end_column", 0)))
        if file or not subject else NamedObject(str(subject.get("kind", "")), str(subject.get("name", "")))
    )
    confidence = str(_field(finding, "confidence")).removeprefix("CONFIDENCE_").lower()
    return Finding(
        rule_id(finding), str(_field(finding, "tool") or "mcpmesh"), severity(finding), str(_field(finding, "message")),
        place, category=str(_field(finding, "category")), confidence=confidence if confidence in CONFIDENCES else "high",
        cwe=int(_field(finding, "cwe", 0)), fix_hint=str(_field(finding, "fix_hint")),
        snippet=str(_field(finding, "snippet")), fingerprint=str(_field(finding, "fingerprint")),
    )


def to_sarif(findings: list[dict[str, Any]], root: Path | None = None) -> dict[str, Any]:
    """SARIF as the Code Analyzer exports it; SRCROOT points at the analysed folder when it is known."""
    from services.agents.code.exports import to_sarif as export

    document: dict[str, Any] = export([to_domain(f) for f in findings], {})
    if root is not None:
        for run in document["runs"]:
            run["originalUriBaseIds"]["SRCROOT"]["uri"] = root.resolve().as_uri() + "/"
    return document
