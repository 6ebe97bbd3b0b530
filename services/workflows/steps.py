"""What every workflow type shares: the calls to other services, the step wrapper, idempotency keys, the type record."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from langgraph.graph import StateGraph
from langgraph.runtime import Runtime

from services.runtime.identity import ANONYMOUS, Identity
from services.runtime.tracing import span

log = logging.getLogger("mcpmesh.workflows")

# Errors worth another try: the other side may answer next time. Every step is idempotent (its calls carry the
# (workflow, step) key), so a retry cannot act twice.
TRANSIENT = frozenset({"UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"})


@dataclass(frozen=True)
class Backoff:
    """Tries of a step that fails with a transient error: waits first, 2*first, ... up to `most` seconds."""

    attempts: int = 4
    first: float = 0.5
    most: float = 8.0

    def delay(self, attempt: int) -> float:
        return min(self.first * 2 ** (attempt - 1), self.most)


RETRY = Backoff()


def transient(exc: Exception) -> bool:
    return getattr(exc, "code", "") in TRANSIENT


class StepCalls(Protocol):
    """What the graphs need from the other services; the key makes a re-run step idempotent."""

    async def run_agent(self, agent: str, inputs: dict[str, Any], key: str) -> dict[str, Any]: ...

    async def execute_tool(self, tool: str, arguments: dict[str, Any], key: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class StepProgress:
    """Progress inside a running step, as its agent reports it: a stage, the share done, items done of total."""

    stage: str
    fraction: float
    done: int = 0
    total: int = 0


class StepHook(Protocol):
    """Told when a step starts, succeeds, fails ("failed: <error>") or reports progress ("progress", with it)."""

    def __call__(
        self, workflow_id: str, step: str, outcome: str, progress: StepProgress | None = None, /
    ) -> Awaitable[None]: ...


ProgressSink = Callable[[StepProgress], Awaitable[None]]
# The running step's progress sink: set by `step` around its body, so a StepCalls implementation can pass on what
# the agent reports (StreamAgentRun) without every workflow type threading it through.
_progress: contextvars.ContextVar[ProgressSink | None] = contextvars.ContextVar("step_progress", default=None)
_step_name: contextvars.ContextVar[str] = contextvars.ContextVar("step_name", default="")


def progress_sink() -> ProgressSink | None:
    """Where the step running in this task reports progress; None outside a step."""
    return _progress.get()


# Who the running workflow works for: the identity that created it, set by the engine around each run (here or
# resumed on another instance), so the steps' calls carry that identity's permissions, not the service's.
_acting_for: contextvars.ContextVar[Identity] = contextvars.ContextVar("acting_for", default=ANONYMOUS)


def acting_for() -> Identity:
    """The creator of the workflow whose run is in this task; anonymous outside a run."""
    return _acting_for.get()


def act_for(creator: Identity) -> None:
    """Sets the creator for the run in this task (and the tasks it starts: LangGraph's steps)."""
    _acting_for.set(creator)


StepBody = Callable[[Any, Runtime[Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class WorkflowType:
    """One workflow type: its module provides the schema, the graph and how the first state is made."""

    name: str
    description: str
    steps: list[str]
    parameters_schema: dict[str, Any]
    build: Callable[[StepCalls, StepHook], StateGraph]
    initial_state: Callable[[dict[str, Any]], dict[str, Any]]
    # Parameters that name a folder: checked against the workspace roots when the workflow is created.
    path_parameters: tuple[str, ...] = field(default=("path",))


DIALECT_SCHEMA: dict[str, Any] = {
    "type": "string", "enum": ["postgres", "mysql", "sqlite"],
    "description": "SQL dialect of the schema and query files; default postgres.",
}


def with_options(schema: dict[str, Any], **options: dict[str, Any]) -> dict[str, Any]:
    """A parameters schema with optional properties added (passed on to the agents that take them)."""
    return {**schema, "properties": {**schema["properties"], **options}}


def agent_input(state: Any, *names: str) -> dict[str, Any]:
    """The agent's input: the folder and those of the named options the workflow was given."""
    return {"path": state["path"], **{n: state["options"][n] for n in names if n in state.get("options", {})}}


def initial_state(parameters: dict[str, Any]) -> dict[str, Any]:
    """The first state of every type: the folder, and the other parameters as agent options."""
    return {"path": parameters["path"], "options": {k: v for k, v in parameters.items() if k != "path"}}


def idempotency_key(runtime: Runtime[Any]) -> str:
    """(workflow, step): the same when a step is re-run after a crash and resume, and when it is retried.

    Not LangGraph's checkpoint and task ids: it saves a superstep's checkpoint while the superstep's steps already
    run (its default "async" durability), so a crash before that save resumes with a new checkpoint id and new task
    ids, and a key made of them would let the re-run step act a second time. A workflow runs each step once (the
    types are graphs without cycles), so its name is enough."""
    info = runtime.execution_info
    name = _step_name.get()
    if info is None or not name:
        return ""
    return f"{info.thread_id}:{name}"


def workflow_id(runtime: Runtime[Any]) -> str:
    return (runtime.execution_info.thread_id or "") if runtime.execution_info else ""


def step(hook: StepHook, name: str, body: StepBody, *, idempotent: bool = True, retry: Backoff | None = None) -> Any:
    """A graph node that reports its start and end through `hook`, retries transient failures of an idempotent
    body with back-off, and marks itself completed in the state.

    Typed Any: LangGraph's add_node overloads want the state type the node is declared with."""

    async def node(state: Any, runtime: Runtime[Any]) -> dict[str, Any]:
        # One span per LangGraph step, in the trace that created the workflow (its task inherits that context).
        with span("workflow.step", **{"mcpmesh.workflow_id": workflow_id(runtime), "mcpmesh.step": name}):
            return await run_step(state, runtime)

    async def run_step(state: Any, runtime: Runtime[Any]) -> dict[str, Any]:
        thread = workflow_id(runtime)
        policy = retry or RETRY
        await hook(thread, name, "started")

        async def report(progress: StepProgress) -> None:
            await hook(thread, name, "progress", progress)

        attempt = 1
        while True:
            token = _progress.set(report)  # only for the body: parallel steps run in tasks of their own
            named = _step_name.set(name)
            try:
                update = await body(state, runtime)
                break
            except Exception as exc:
                if idempotent and transient(exc) and attempt < policy.attempts:
                    log.info("step failed, retrying", extra={"workflow": thread, "step": name, "attempt": attempt,
                                                             "error": str(exc)})
                    await asyncio.sleep(policy.delay(attempt))
                    attempt += 1
                    continue
                await hook(thread, name, f"failed: {exc}")
                raise
            finally:
                _step_name.reset(named)
                _progress.reset(token)
        await hook(thread, name, "succeeded")
        return {**update, "completed": [name]}

    return node
