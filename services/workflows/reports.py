"""A bounded report of one agent run for a workflow's result: counts and the most severe findings inline, the rest by
reference; the run's documents copied into the artifact store."""

from __future__ import annotations

import hashlib
from typing import Any

from services.agents.base import SEVERITIES
from services.runtime.artifacts import ArtifactStore
from services.workflows.steps import StepCalls

# A result must stay small enough to read, store and stream: the full list is ListAgentRunFindings on the agent run.
MAX_FINDINGS = 100
# The size rule of documents: one this small keeps its content in the result too; a larger one (reports, graphs,
# document sets) is there by reference only: GET /v1/artifacts/{artifact}.
INLINE_BYTES = 4096


def artifact_name(run_id: str, name: str) -> str:
    """Where a document of an agent run is kept: one name per run and document, so a retried step (which replays
    the same run by its idempotency key) writes the same artifact again, not a second one."""
    return f"agent-runs/{run_id}/{name}"


def _reference(run_id: str, name: str, media_type: str, content: bytes, stored: bool) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": name, "media_type": media_type, "bytes": len(content),
                           "sha256": hashlib.sha256(content).hexdigest(), "agent_run": run_id}
    if stored:
        ref["artifact"] = artifact_name(run_id, name)
    if len(content) <= INLINE_BYTES:
        ref["content"] = content.decode()
    return ref


async def keep_artifacts(store: ArtifactStore, run: dict[str, Any]) -> dict[str, Any]:
    """The run with its documents copied into the artifact store and replaced by references (content inline only
    under the size rule), so neither checkpoints nor results carry large documents."""
    run_id = str(run.get("id", ""))
    if not run_id:
        return run
    refs = []
    for artifact in run.get("artifacts", []):
        content = str(artifact.get("content", "")).encode()
        name = str(artifact.get("name", ""))
        await store.put(artifact_name(run_id, name), content)
        refs.append(_reference(run_id, name, str(artifact.get("media_type", "")), content, stored=True))
    return {**run, "artifacts": refs}


def severity(finding: dict[str, Any]) -> str:
    return str(finding.get("severity", "")).removeprefix("SEVERITY_").lower()


def finding_counts(findings: list[dict[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(SEVERITIES, 0)
    for finding in findings:
        counts[severity(finding)] = counts.get(severity(finding), 0) + 1
    return counts


class KeptArtifacts:
    """StepCalls whose agent runs come back with their documents kept in the artifact store (keep_artifacts)."""

    def __init__(self, calls: StepCalls, store: ArtifactStore) -> None:
        self._calls = calls
        self._store = store

    async def run_agent(self, agent: str, inputs: dict[str, Any], key: str) -> dict[str, Any]:
        return await keep_artifacts(self._store, await self._calls.run_agent(agent, inputs, key))

    async def execute_tool(self, tool: str, arguments: dict[str, Any], key: str) -> dict[str, Any]:
        return await self._calls.execute_tool(tool, arguments, key)


def artifact_refs(run: dict[str, Any]) -> list[dict[str, Any]]:
    """Where each document of an agent run lives (the artifact store when kept there, and the agent run), its size
    and digest; its content only under the size rule."""
    refs = []
    for artifact in run.get("artifacts", []):
        if "sha256" in artifact:  # kept in the artifact store already
            refs.append(dict(artifact))
            continue
        content = str(artifact.get("content", "")).encode()
        refs.append(_reference(str(run.get("id", "")), str(artifact.get("name", "")), str(artifact.get("media_type", "")),
                               content, stored=False))
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
