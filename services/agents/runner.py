"""The run loop around agents: argument checks, idempotency, deadline, cancellation, concurrency, records."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jsonschema

from services.agents.base import AgentSpec, Finding, Limits, ModelClient, RunContext, RunResult, RunTimedOut
from services.agents.runs import AgentRun, RunStore
from services.runtime.arguments import check_arguments
from services.runtime.clock import utcnow
from services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from services.runtime.identity import Identity
from services.runtime.tracing import span


@dataclass(frozen=True)
class RunOptions:
    max_files: int = 0  # 0: the server's limit
    disable_llm: bool = False
    idempotency_key: str = ""


@dataclass(frozen=True)
class ProgressReport:
    """What a streaming caller hears while a run works (StreamAgentRun's AgentProgress)."""

    stage: str
    fraction: float
    done: int = 0
    total: int = 0


PROGRESS_SECONDS = 0.25  # at most about four reports a second reach the caller; a stage's first and last always do


def _forward(sink: Callable[[ProgressReport], None]) -> Callable[..., None]:
    """The agent's progress callback (worker thread) handing reports to `sink` on the event loop, throttled."""
    loop = asyncio.get_running_loop()
    last_at, last_stage = 0.0, ""

    def report(stage: str, fraction: float, done: int = 0, total: int = 0) -> None:
        nonlocal last_at, last_stage
        now = time.monotonic()
        if stage == last_stage and now - last_at < PROGRESS_SECONDS and not (total and done >= total):
            return
        last_at, last_stage = now, stage
        loop.call_soon_threadsafe(sink, ProgressReport(stage, min(max(fraction, 0.0), 1.0), done, total))

    return report


class AgentRunner:
    """Runs agents in worker threads, at most `max_concurrent` at once, each within `timeout` seconds."""

    def __init__(
        self,
        agents: Sequence[AgentSpec],
        store: RunStore,
        *,
        roots: Sequence[Path],
        limits: Limits,
        model: ModelClient | None = None,
        timeout: float = 120.0,
        max_concurrent: int = 4,
        data_dir: Path | None = None,
    ) -> None:
        self._agents = {a.name: a for a in agents}
        self._store = store
        self._roots = tuple(roots)
        self._limits = limits
        self._model = model
        self._timeout = timeout
        self._slots = asyncio.Semaphore(max_concurrent)
        self._data_dir = data_dir
        self.active = 0  # runs executing now: the ActiveAgentExecutions metric

    @property
    def model(self) -> ModelClient | None:
        return self._model

    def list_agents(self) -> list[AgentSpec]:
        return sorted(self._agents.values(), key=lambda a: a.name)

    def get(self, name: str) -> AgentSpec:
        if not name:
            raise InvalidArgument.field("name", "is required")
        agent = self._agents.get(name)
        if agent is None:
            raise NotFound(f"agent {name!r} does not exist", reason="AGENT_NOT_FOUND", metadata={"agent": name})
        return agent

    async def run(
        self, name: str, arguments: dict[str, Any], options: RunOptions, caller: Identity,
        progress: Callable[[ProgressReport], None] | None = None,
    ) -> AgentRun:
        """Runs an agent (or replays the run of an earlier call with the same idempotency key); `progress`, when
        given, hears the agent's reports on the event loop while it works (a replay reports nothing)."""
        agent = self.get(name)
        if options.max_files < 0:
            raise InvalidArgument.field("options.max_files", "must not be negative")
        check_arguments(agent.parameters, arguments, "input")
        _check_schema(agent.parameters, arguments)
        request_hash = _request_hash(name, arguments, options)
        key = options.idempotency_key
        if key and (earlier := await self._store.find_by_key(caller.principal, key)) is not None:
            return await self._replay(earlier, request_hash)
        deadline = time.monotonic() + self._timeout
        context = RunContext(
            roots=self._roots,
            limits=replace(self._limits, max_files=min(options.max_files or self._limits.max_files, self._limits.max_files)),
            deadline=deadline,
            cancelled=threading.Event(),
            model=None if options.disable_llm else self._model,
            model_status="skipped" if options.disable_llm else "not_configured",
            caller=caller,
            data_dir=self._data_dir,
        )
        if progress is not None:
            context.progress = _forward(progress)
        started, created = time.perf_counter(), utcnow()
        result = await self._execute(agent, arguments, context, deadline)
        run = AgentRun(
            id=uuid.uuid4().hex,
            agent=name,
            input=arguments,
            state="succeeded",
            created=created,
            caller=caller.principal,
            idempotency_key=key,
            request_hash=request_hash,
            result=result,
            ended=utcnow(),
            duration_ms=int((time.perf_counter() - started) * 1000),
        )
        stored = await self._store.create(run)
        if stored.id != run.id:  # another call with the same key finished first: its run is the answer
            return await self._replay(stored, request_hash)
        return run

    async def _execute(self, agent: AgentSpec, arguments: dict[str, Any], context: RunContext, deadline: float) -> RunResult:
        try:
            async with asyncio.timeout_at(asyncio.get_running_loop().time() + (deadline - time.monotonic())):
                async with self._slots:
                    self.active += 1
                    try:
                        # The span is current in the worker thread too (to_thread copies the context): model calls nest.
                        with span("agent.run", **{"mcpmesh.agent": agent.name}):
                            return await asyncio.to_thread(agent.run, arguments, context)
                    finally:
                        self.active -= 1
        except TimeoutError:
            context.cancelled.set()  # the worker thread stops at its next check
            raise RunTimedOut(
                f"agent {agent.name!r} did not finish within {self._timeout:g} s", reason="AGENT_RUN_TIMED_OUT"
            ) from None
        except asyncio.CancelledError:
            context.cancelled.set()  # the caller went away: stop the worker thread too
            raise

    async def _replay(self, earlier: AgentRun, request_hash: str) -> AgentRun:
        if earlier.request_hash != request_hash:
            raise FailedPrecondition(
                "idempotency key was already used with a different request",
                reason="IDEMPOTENCY_KEY_REUSED",
                metadata={"agent_run": earlier.id},
            )
        return await self.get_run(earlier.id)

    async def get_run(self, run_id: str, max_findings: int | None = None) -> AgentRun:
        """The run with its findings (the first `max_findings` of them when given)."""
        if not run_id:
            raise InvalidArgument.field("id", "is required")
        run = await self._store.get(run_id)
        findings, _ = await self._store.findings(run_id, 0, max_findings if max_findings is not None else 2**62)
        run.result.findings = findings
        return run


    async def findings(self, run_id: str, offset: int, limit: int) -> tuple[list[Finding], int]:
        if not run_id:
            raise InvalidArgument.field("id", "is required")
        return await self._store.findings(run_id, offset, limit)


def _check_schema(schema: dict[str, Any], arguments: dict[str, Any]) -> None:
    """The whole JSON Schema (items, enums, bounds), after the flat checks; the first error names its field."""
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(arguments))
    if error is not None:
        field = "input" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        raise InvalidArgument.field(field, error.message[:300])


def _request_hash(name: str, arguments: dict[str, Any], options: RunOptions) -> str:
    """What makes two requests the same: agent, input and options other than the key itself."""
    body = {"agent": name, "input": arguments, "max_files": options.max_files, "disable_llm": options.disable_llm}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
