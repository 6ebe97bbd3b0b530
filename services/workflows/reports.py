"""A bounded report of one agent run for a workflow's result: counts and the most severe findings inline, the rest by reference."""

from __future__ import annotations

import hashlib
from typing import Any

from services.agents.base import SEVERITIES

# A result must stay small enough to read, store and stream: the full list is ListAgentRunFindings on the agent run.
MAX_FINDINGS = 100


def severity(finding: dict[str, Any]) -> str:
    return str(finding.get("severity", "")).removeprefix("SEVERITY_").lower()


def finding_counts(findings: list[dict[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(SEVERITIES, 0)
    for finding in findings:
        counts[severity(finding)] = counts.get(severity(finding), 0) + 1
    return counts


def artifact_refs(run: dict[str, Any]) -> list[dict[str, Any]]:
    """Where each document of an agent run lives, its size and digest; the content stays with the agent run."""
    refs = []
    for artifact in run.get("artifacts", []):
        content = str(artifact.get("content", "")).encode()
        refs.append({
            "name": artifact.get("name", ""),
            "media_type": artifact.get("media_type", ""),
            "bytes": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
            "agent_run": run.get("id", ""),
        })
    return refs


def run_report(run: dict[str, Any]) -> dict[str, Any]:
    """What a workflow keeps of an agent run: counts, metrics, a bounded selection of findings, artifact references."""
    findings = list(run.get("findings", []))
    counts = run.get("finding_counts") or finding_counts(findings)
    total = int(run.get("total_findings", len(findings)) or len(findings))
    order = {name: index for index, name in enumerate(SEVERITIES)}
    kept = sorted(findings, key=lambda f: order.get(severity(f), len(order)))[:MAX_FINDINGS]
    return {
        "agent": run.get("agent", ""),
        "agent_run": run.get("id", ""),
        "summary": run.get("summary", ""),
        "llm_status": run.get("llm_status", ""),
        "finding_counts": {name: int(counts.get(name, 0)) for name in SEVERITIES},
        "total_findings": total,
        "findings": kept,
        "findings_truncated": bool(run.get("findings_truncated")) or total > len(kept),
        "metrics": run.get("metrics", {}),
        "usage": run.get("usage", {}),
        "artifacts": artifact_refs(run),
    }
