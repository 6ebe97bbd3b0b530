"""Agent runs: the record, its JSON form, and the RunStore port that every storage adapter implements."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from services.agents.base import SEVERITIES, Artifact, FileSpan, Finding, NamedObject, RunResult


@dataclass
class AgentRun:
    """One run of an agent, as stored: who asked, with what, and what came out."""

    id: str
    agent: str
    input: dict[str, Any]
    state: str  # "running", "succeeded" or "failed"
    created: dt.datetime
    caller: str = ""  # principal of the caller; idempotency keys are scoped by it
    idempotency_key: str = ""
    request_hash: str = ""  # hash of (agent, input, options): a reused key must come with the same request
    result: RunResult = field(default_factory=RunResult)
    error: str = ""
    ended: dt.datetime | None = None
    duration_ms: int = 0


class RunStore(Protocol):
    """Where agent runs live. Findings are stored apart from the run so that a large result can be paged."""

    async def create(self, run: AgentRun) -> AgentRun:
        """Stores a new run. When the caller already used run.idempotency_key, stores nothing and returns that run."""
        ...

    async def save(self, run: AgentRun) -> None:
        """Replaces a stored run (state, result and findings)."""
        ...

    async def get(self, run_id: str) -> AgentRun:
        """The run without its findings (result.findings is empty); NotFound when there is none."""
        ...

    async def findings(self, run_id: str, offset: int, limit: int) -> tuple[list[Finding], int]:
        """One slice of a run's findings in their stored order, and how many there are in all."""
        ...

    async def find_by_key(self, caller: str, idempotency_key: str) -> AgentRun | None:
        """The run this caller started with this key, if any (without findings)."""
        ...

    async def ping(self) -> None:
        """Raises when the store cannot be reached."""
        ...


def finding_to_dict(finding: Finding) -> dict[str, Any]:
    body = asdict(finding)
    location = finding.location
    body["location"] = {"span": asdict(location)} if isinstance(location, FileSpan) else {"object": asdict(location)}
    return body


def finding_from_dict(body: dict[str, Any]) -> Finding:
    location = body.pop("location")
    place: FileSpan | NamedObject = FileSpan(**location["span"]) if "span" in location else NamedObject(**location["object"])
    return Finding(location=place, **body)


def run_to_json(run: AgentRun) -> str:
    """The run without its findings, as JSON; adapters store findings with finding_to_dict."""
    result = asdict(run.result)
    result["findings"] = []
    body = {**asdict(run), "result": result}
    body["created"] = run.created.isoformat()
    body["ended"] = run.ended.isoformat() if run.ended else None
    return json.dumps(body)


def run_from_json(text: str) -> AgentRun:
    body = json.loads(text)
    body["created"] = dt.datetime.fromisoformat(body["created"])
    body["ended"] = dt.datetime.fromisoformat(body["ended"]) if body["ended"] else None
    result = body.pop("result")
    result["artifacts"] = [Artifact(**a) for a in result["artifacts"]]
    result["findings"] = []
    return AgentRun(result=RunResult(**result), **body)


@dataclass(frozen=True)
class MessageBounds:
    """How many findings one run message carries; the rest are paged with ListAgentRunFindings."""

    per_file: int = 100
    total: int = 2000


def bounded(findings: list[Finding], bounds: MessageBounds) -> tuple[list[Finding], bool]:
    """The most severe findings within the bounds, back in their run order, and whether any were left out."""
    rank = {severity: i for i, severity in enumerate(SEVERITIES)}
    order = sorted(range(len(findings)), key=lambda i: (rank[findings[i].severity], i))
    per_file: dict[str, int] = {}
    kept: list[int] = []
    for i in order:
        if len(kept) >= bounds.total:
            break
        where = findings[i].file or findings[i].sort_key()[0]
        if per_file.get(where, 0) >= bounds.per_file:
            continue
        per_file[where] = per_file.get(where, 0) + 1
        kept.append(i)
    kept.sort()
    return [findings[i] for i in kept], len(kept) < len(findings)
