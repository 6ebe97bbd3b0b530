"""Runs workflows: validation, the LangGraph run per workflow, step events, cancellation and resume."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver

from services.runtime.arguments import check_arguments
from services.runtime.clock import utcnow
from services.runtime.errors import DomainError, FailedPrecondition, InvalidArgument
from services.runtime.workspace import resolve_folder_argument
from services.workflows.steps import StepCalls, WorkflowType
from services.workflows.store import Event, Workflow, WorkflowStore

log = logging.getLogger("mcpmesh.workflows")

# How far back a watcher of every workflow looks on each poll: covers commits that land after their update time,
# and small clock differences between instances that share the store.
CHANGE_WINDOW = dt.timedelta(seconds=5)
POLL_SECONDS = 1.0


class Notifier:
    """Wakes watchers when this process writes an event; watchers also poll, for events written by other processes."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)


class FeedStart:
    """Where a watch of every workflow begins: what each recently changed workflow had already written."""

    def __init__(self, since: dt.datetime, seen: dict[str, int]) -> None:
        self.since = since
        self.seen = seen


class WorkflowEngine:
    def __init__(
        self,
        store: WorkflowStore,
        calls: StepCalls,
        checkpointer: BaseCheckpointSaver,
        types: Sequence[WorkflowType],
        roots: Sequence[Path],
    ) -> None:
        self.store = store
        self.types = {t.name: t for t in types}
        self.notifier = Notifier()
        self._roots = list(roots)
        self._graphs = {t.name: t.build(calls, self._on_step).compile(checkpointer=checkpointer) for t in types}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._closing = False

    @property
    def active(self) -> int:
        return len(self._tasks)

    def validate(self, type_name: str, parameters: dict[str, Any]) -> WorkflowType:
        """Type, parameter schema and folder parameters, all before anything is stored."""
        if not type_name:
            raise InvalidArgument.field("workflow.type", "is required")
        workflow_type = self.types.get(type_name)
        if workflow_type is None:
            known = ", ".join(sorted(self.types))
            raise InvalidArgument.field("workflow.type", f"unknown workflow type {type_name!r}; known: {known}",
                                        reason="UNKNOWN_WORKFLOW_TYPE")
        check_arguments(workflow_type.parameters_schema, parameters, "workflow.parameters")
        for name in workflow_type.path_parameters:
            if name in parameters:
                resolve_folder_argument(parameters[name], self._roots, f"workflow.parameters.{name}")
        return workflow_type

    async def create(self, type_name: str, parameters: dict[str, Any], request_id: str) -> Workflow:
        workflow_type = self.validate(type_name, parameters)
        workflow, created = await self.store.create(type_name, parameters, workflow_type.steps, request_id)
        if created:
            self.notifier.notify()
            self._start(workflow, resume=False)
        return workflow

    async def resume_unfinished(self) -> int:
        """Picks up workflows a previous process left pending or running; LangGraph resumes from the last checkpoint."""
        unfinished = [w for w in await self.store.unfinished() if w.type in self.types and w.id not in self._tasks]
        for workflow in unfinished:
            self._start(workflow, resume=workflow.state == "running")
        return len(unfinished)

    async def cancel(self, workflow_id: str) -> Workflow:
        workflow = await self.store.get(workflow_id)
        if workflow.done:
            raise FailedPrecondition(f"workflow {workflow_id!r} already ended as {workflow.state}",
                                     reason="WORKFLOW_ALREADY_ENDED")
        task = self._tasks.get(workflow_id)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        else:
            await self._finish(workflow_id, "cancelled", "workflow cancelled")
        return await self.store.get(workflow_id)

    async def watch(self, workflow_id: str, after: int) -> AsyncIterator[Event]:
        """The workflow's events after `after`; ends after its terminal event (at once, replayed, if it has ended)."""
        if after < 0:
            raise InvalidArgument.field("after_sequence", "must not be negative")
        if not workflow_id:
            raise InvalidArgument.field("id", "is required")
        while True:  # the first get raises NotFound for an unknown id
            done = (await self.store.get(workflow_id)).done
            for event in await self.store.events_after(workflow_id, after):
                after = event.sequence
                yield event
            if done:
                return
            await self.notifier.wait(POLL_SECONDS)

    async def feed_start(self) -> FeedStart:
        """Fixes the starting point of a watch of every workflow: nothing written after this call is missed."""
        since = utcnow() - CHANGE_WINDOW
        return FeedStart(since, dict(await self.store.changed_since(since)))

    async def watch_all(self, start: FeedStart) -> AsyncIterator[Event]:
        """Events of every workflow written after `start`, each workflow's in sequence order."""
        since, seen = start.since, dict(start.seen)
        while True:
            polled = utcnow() - CHANGE_WINDOW
            for workflow_id, last in await self.store.changed_since(since):
                if last <= seen.get(workflow_id, 0):
                    continue
                for event in await self.store.events_after(workflow_id, seen.get(workflow_id, 0)):
                    seen[workflow_id] = event.sequence
                    yield event
            since = polled
            await self.notifier.wait(POLL_SECONDS)

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
        workflow = await self.store.get(workflow_id)
        workflow_type = self.types[workflow.type]
        if not resume:
            await self._update(workflow_id, _started)
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
            await self._finish(workflow_id, "cancelled", "workflow cancelled")
            raise
        except Exception as exc:  # every failure of a run is recorded on the workflow
            log.info("workflow failed", extra={"workflow": workflow_id, "error": str(exc)})
            await self._finish(workflow_id, "failed", f"workflow failed: {exc}", error=_error(exc))
            return
        await self._finish(workflow_id, "succeeded", "workflow succeeded", result=final.get("result", {}))

    async def _finish(
        self, workflow_id: str, state: str, message: str, *, error: dict[str, Any] | None = None,
        result: dict[str, Any] | None = None,
    ) -> None:
        def finish(workflow: Workflow) -> Change:
            workflow.state, workflow.error, workflow.result = state, error, result
            if state == "succeeded":
                workflow.progress = 100
            for step in workflow.steps:
                if step.state == "running":  # a sibling of the failed step, stopped by LangGraph
                    step.state = "cancelled"
            return state, "", message

        await self._update(workflow_id, finish)

    async def _on_step(self, workflow_id: str, step_name: str, outcome: str) -> None:
        def change(workflow: Workflow) -> Change | None:
            step = next(s for s in workflow.steps if s.name == step_name)
            if outcome == "started":
                if step.state == "running":
                    return None  # re-run after a resume: watchers already saw it start, so they see it start once
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
            return event, step_name, f"{step_name} {outcome}"

        await self._update(workflow_id, change)

    async def _update(self, workflow_id: str, change: Callable[[Workflow], Change | None]) -> None:
        """Read, change, write one workflow; parallel steps of one run take turns, so neither overwrites the other."""
        lock = self._locks.setdefault(workflow_id, asyncio.Lock())
        async with lock:
            workflow = await self.store.get(workflow_id)
            event = change(workflow)
            if event is not None:
                await self.store.record(workflow, *event)
                self.notifier.notify()
            if workflow.done:
                self._locks.pop(workflow_id, None)


Change = tuple[str, str, str]  # (event type, step, message) recorded with a workflow's new state


def _started(workflow: Workflow) -> Change:
    workflow.state = "running"
    return "started", "", "workflow started"


def _error(exc: Exception) -> dict[str, Any]:
    """A failed step keeps the status of the service that failed it, so callers see the real reason."""
    if isinstance(exc, DomainError):
        return {"code": exc.code, "reason": exc.reason, "message": exc.message}
    return {"code": "INTERNAL", "reason": "INTERNAL", "message": f"{type(exc).__name__}: {exc}"}
