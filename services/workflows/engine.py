"""Runs workflows: validation, the LangGraph run per workflow, step events, cancellation and resume."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import StateGraph

from services.runtime.arguments import check_arguments
from services.runtime.errors import DomainError, FailedPrecondition, InvalidArgument
from services.runtime.protos import utcnow
from services.workflows.graph import STEPS, StepCalls, StepHook, build_code_analysis
from services.workflows.store import Event, Workflow, WorkflowStore

log = logging.getLogger("mcpmesh.workflows")


@dataclass(frozen=True)
class WorkflowType:
    name: str
    description: str
    steps: list[str]
    parameters_schema: dict[str, Any]
    build: Callable[[StepCalls, StepHook], StateGraph]
    initial_state: Callable[[dict[str, Any]], dict[str, Any]]


CODE_ANALYSIS = WorkflowType(
    name="code_analysis",
    description="Analyses the Python code of a folder with the Code Analyzer agent while the file_inventory tool "
    "lists its files, languages and lines; then merges both into one result.",
    steps=STEPS,
    parameters_schema={
        "type": "object",
        "properties": {"path": {"type": "string", "description": "Folder to analyse, inside a workspace root."}},
        "required": ["path"],
        "additionalProperties": False,
    },
    build=build_code_analysis,
    initial_state=lambda parameters: {"path": parameters["path"]},
)


class Notifier:
    """Wakes watchers when an event is written; watchers also poll, for events written by other processes."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)


class WorkflowEngine:
    def __init__(self, store: WorkflowStore, calls: StepCalls, checkpointer: BaseCheckpointSaver, types: list[WorkflowType]) -> None:
        self.store = store
        self.types = {t.name: t for t in types}
        self.notifier = Notifier()
        self._graphs = {t.name: t.build(calls, self._on_step).compile(checkpointer=checkpointer) for t in types}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._closing = False

    @property
    def active(self) -> int:
        return len(self._tasks)

    def validate(self, type_name: str, parameters: dict[str, Any]) -> WorkflowType:
        if not type_name:
            raise InvalidArgument.field("workflow.type", "is required")
        workflow_type = self.types.get(type_name)
        if workflow_type is None:
            known = ", ".join(sorted(self.types))
            raise InvalidArgument.field("workflow.type", f"unknown workflow type {type_name!r}; known: {known}",
                                        reason="UNKNOWN_WORKFLOW_TYPE")
        check_arguments(workflow_type.parameters_schema, parameters, "workflow.parameters")
        return workflow_type

    async def create(self, type_name: str, parameters: dict[str, Any], request_id: str) -> Workflow:
        workflow_type = self.validate(type_name, parameters)
        workflow, created = self.store.create(type_name, parameters, workflow_type.steps, request_id)
        if created:
            self.notifier.notify()
            self._start(workflow, resume=False)
        return workflow

    def resume_unfinished(self) -> int:
        """Picks up workflows a previous process left pending or running; LangGraph resumes from the last checkpoint."""
        unfinished = [w for w in self.store.unfinished() if w.type in self.types]
        for workflow in unfinished:
            self._start(workflow, resume=workflow.state == "running")
        return len(unfinished)

    async def cancel(self, workflow_id: str) -> Workflow:
        workflow = self.store.get(workflow_id)
        if workflow.done:
            raise FailedPrecondition(f"workflow {workflow_id!r} already ended as {workflow.state}",
                                     reason="WORKFLOW_ALREADY_ENDED")
        task = self._tasks.get(workflow_id)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        else:
            self._finish(workflow, "cancelled", "workflow cancelled")
        return self.store.get(workflow_id)

    async def watch(self, workflow_id: str, after: int) -> AsyncIterator[Event]:
        if after < 0:
            raise InvalidArgument.field("after_sequence", "must not be negative")
        if workflow_id == "-":
            async for event in self.watch_all(self.store.last_position()):
                yield event
            return
        if not workflow_id:
            raise InvalidArgument.field("id", "is required")
        while True:  # the first get raises NotFound for an unknown id
            done = self.store.get(workflow_id).done
            for event in self.store.events_after(workflow_id, after):
                after = event.sequence
                yield event
            if done:
                return
            await self.notifier.wait(1.0)

    async def watch_all(self, position: int) -> AsyncIterator[Event]:
        """Events of every workflow written after `position` in the global log."""
        while True:
            for event in self.store.events_after_position(position):
                position = event.position
                yield event
            await self.notifier.wait(1.0)

    async def close(self) -> None:
        """Stops local runs without ending them: they stay `running` and resume at the next start."""
        self._closing = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _start(self, workflow: Workflow, *, resume: bool) -> None:
        task = asyncio.create_task(self._run(workflow.id, resume), name=f"workflow-{workflow.id}")
        self._tasks[workflow.id] = task
        task.add_done_callback(lambda _: self._tasks.pop(workflow.id, None))

    async def _run(self, workflow_id: str, resume: bool) -> None:
        workflow = self.store.get(workflow_id)
        workflow_type = self.types[workflow.type]
        if not resume:
            workflow.state = "running"
            self._record(workflow, "started", "", "workflow started")
        config: RunnableConfig = {"configurable": {"thread_id": workflow_id}}
        graph = self._graphs[workflow.type]
        try:
            inputs: dict[str, Any] | None = workflow_type.initial_state(workflow.parameters)
            # Resume from the last checkpoint; a run stopped before its first checkpoint starts over.
            if resume and (await graph.aget_state(config)).values:
                inputs = None
            final = await graph.ainvoke(inputs, config)
        except asyncio.CancelledError:
            if self._closing:
                raise
            self._finish(self.store.get(workflow_id), "cancelled", "workflow cancelled")
            raise
        except Exception as exc:
            log.info("workflow failed", extra={"workflow": workflow_id, "error": str(exc)})
            self._finish(self.store.get(workflow_id), "failed", f"workflow failed: {exc}", error=_error(exc))
            return
        workflow = self.store.get(workflow_id)
        workflow.result = final.get("result", {})
        self._finish(workflow, "succeeded", "workflow succeeded")

    def _finish(self, workflow: Workflow, state: str, message: str, error: dict[str, Any] | None = None) -> None:
        workflow.state = state
        workflow.error = error
        if state == "succeeded":
            workflow.progress = 100
        for step in workflow.steps:
            if step.state == "running":  # a sibling of the failed step, stopped by LangGraph
                step.state = "cancelled"
        self._record(workflow, state, "", message)

    async def _on_step(self, workflow_id: str, step_name: str, outcome: str) -> None:
        workflow = self.store.get(workflow_id)
        step = next(s for s in workflow.steps if s.name == step_name)
        if outcome == "started":
            step.state, step.started, step.ended, step.error = "running", utcnow(), None, ""
            event = "step_started"
        elif outcome == "succeeded":
            step.state, step.ended = "succeeded", utcnow()
            event = "step_succeeded"
        else:
            step.state, step.ended, step.error = "failed", utcnow(), outcome.removeprefix("failed: ")
            event = "step_failed"
        done = sum(1 for s in workflow.steps if s.state == "succeeded")
        workflow.progress = int(100 * done / len(workflow.steps))
        self._record(workflow, event, step_name, f"{step_name} {outcome}")

    def _record(self, workflow: Workflow, event_type: str, step: str, message: str) -> None:
        self.store.record(workflow, event_type, step, message)
        self.notifier.notify()


def _error(exc: Exception) -> dict[str, Any]:
    """A failed step keeps the status of the service that failed it, so callers see the real reason."""
    if isinstance(exc, DomainError):
        return {"code": exc.code, "reason": exc.reason, "message": exc.message}
    return {"code": "INTERNAL", "reason": "INTERNAL", "message": f"{type(exc).__name__}: {exc}"}
