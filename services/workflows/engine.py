"""Runs workflows: validation, the LangGraph run per workflow under a run lease, step events, cancellation, take-over
of runs whose instance died, and retention of checkpoints."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver

from services.runtime.arguments import check_arguments
from services.runtime.artifacts import ArtifactStore
from services.runtime.clock import utcnow
from services.runtime.errors import DomainError, FailedPrecondition, InvalidArgument
from services.runtime.identity import ANONYMOUS, Identity
from services.runtime.tracing import current_traceparent, resumed
from services.runtime.workspace import resolve_folder_argument
from services.workflows.checkpoints import NewThreads
from services.workflows.reports import KeptArtifacts
from services.workflows.steps import StepCalls, StepProgress, WorkflowType, act_for
from services.workflows.store import (
    TERMINAL,
    Draft,
    Event,
    RunStart,
    Workflow,
    WorkflowStore,
    opening_events,
    started_message,
)

log = logging.getLogger("mcpmesh.workflows")

# How far back a watcher of every workflow looks on each poll: covers commits that land after their update time,
# and small clock differences between instances that share the store.
CHANGE_WINDOW = dt.timedelta(seconds=5)
POLL_SECONDS = 1.0
RECENT_EVENTS = 64  # per workflow: more than any step count writes between two wakes of a watcher


def instance_owner() -> str:
    """A lease owner name unique to this process: host, pid and a random part (a pid can be reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Durability:
    """How runs are shared between instances: lease length, how many runs at once, how long checkpoints stay."""

    lease_seconds: float = 10.0
    max_active: int = 50  # runs one instance holds at once; the rest wait in the queue for any instance
    retention_seconds: float = 7 * 24 * 3600.0  # checkpoints of ended workflows are deleted after this
    owner: str = field(default_factory=instance_owner)

    @property
    def beat_seconds(self) -> float:
        """Heartbeat and sweep interval: several renewals fit in one lease, so one slow write does not lose it."""
        return self.lease_seconds / 4


class LeaseLost(Exception):
    """Another instance holds this run now: stop without writing anything."""


class CancelRequested(Exception):
    """A caller asked to cancel the run: it stops before its next step."""


class Notifier:
    """Wakes watchers when this process writes an event: those of that workflow and those of every workflow (a
    watcher of one workflow is not woken by the others'). Watchers also poll, for events of other processes.

    The events this process just wrote are kept a moment, so a woken watcher of a run held here reads them
    from memory instead of the store."""

    def __init__(self) -> None:
        self._all = asyncio.Event()
        self._each: dict[str, asyncio.Event] = {}
        self._recent: dict[str, collections.deque[Event]] = {}
        # Writes seen per workflow ("" for all): a watcher that read the store before a write and waits after it
        # sees the count moved and does not sleep through that write.
        self._versions: collections.Counter[str] = collections.Counter()

    def version(self, workflow_id: str = "") -> int:
        return self._versions[workflow_id]

    def _forget(self, workflow_id: str) -> None:
        self._recent.pop(workflow_id, None)
        self._versions.pop(workflow_id, None)

    def notify(self, workflow_id: str = "", written: Event | None = None) -> None:
        self._versions[workflow_id] += 1
        self._versions[""] += 1
        if written is not None:
            self._recent.setdefault(workflow_id, collections.deque(maxlen=RECENT_EVENTS)).append(written)
            if written.type in TERMINAL:  # nothing follows; late watchers read the store
                asyncio.get_running_loop().call_later(POLL_SECONDS, self._forget, workflow_id)
        self._all.set()
        self._all = asyncio.Event()
        event = self._each.pop(workflow_id, None)
        if event is not None:
            event.set()

    def recent_after(self, workflow_id: str, sequence: int) -> list[Event]:
        """Events after `sequence` kept in memory, only when they follow it without a gap; else []."""
        kept = [e for e in self._recent.get(workflow_id, ()) if e.sequence > sequence]
        if not kept or kept[0].sequence != sequence + 1:
            return []
        return [e for n, e in enumerate(kept) if e.sequence == sequence + 1 + n]

    async def wait(self, timeout: float, workflow_id: str = "", seen: int | None = None) -> None:
        """Until the next write (of `workflow_id`, or of any workflow), or at once if one came after `seen`."""
        if seen is not None and self._versions[workflow_id] != seen:
            return
        event = self._each.setdefault(workflow_id, asyncio.Event()) if workflow_id else self._all
        # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel that lands as the event fires.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await event.wait()


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
        durability: Durability | None = None,
        artifacts: ArtifactStore | None = None,
    ) -> None:
        self.store = store
        if artifacts is not None:  # agent runs' documents go to the artifact store; results reference them
            calls = KeptArtifacts(calls, artifacts)
        self.types = {t.name: t for t in types}
        self.notifier = Notifier()
        self.durability = durability or Durability()
        self.owner = self.durability.owner
        self.queue_depth = 0  # unfinished workflows no instance holds, as of the last sweep
        self._roots = list(roots)
        self._checkpointer = checkpointer
        self._new_threads = NewThreads(checkpointer)
        self._graphs = {t.name: t.build(calls, self._on_step).compile(checkpointer=checkpointer) for t in types}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._queued: dict[str, list[tuple[Callable[[Workflow], Change | None], asyncio.Future[None]]]] = {}
        self._writers: dict[str, asyncio.Task[None]] = {}  # per workflow with changes queued: the task writing them
        self._lost: set[str] = set()
        self._ended: set[str] = set()  # local runs whose terminal event is written
        self._held: dict[str, Workflow] = {}  # the record of each run held here, as last written
        self._renewed: dict[str, float] = {}  # loop time of the last successful claim or renewal per local run
        self._fractions: dict[str, dict[str, float]] = {}  # share done of each running step, as last reported
        self._starts: dict[str, dict[str, asyncio.Future[None]]] = {}  # per run, the writes of its steps' starts
        self._wake = asyncio.Event()
        self.idle = asyncio.Event()  # set while this instance holds no run (its last checkpoint writes done too)
        self.idle.set()
        self._maintainer: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def active(self) -> int:
        return len(self._tasks)

    def start(self) -> None:
        """Starts the heartbeat and sweeper of this instance; resume_unfinished runs at once in its first pass."""
        self._maintainer = asyncio.create_task(self._maintain(), name="workflow-maintainer")

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

    async def create(self, type_name: str, parameters: dict[str, Any], request_id: str,
                     creator: Identity = ANONYMOUS) -> Workflow:
        """A new workflow, started here when there is room; its steps will call agents and tools as `creator`."""
        workflow_type = self.validate(type_name, parameters)
        # The record keeps the creating call's trace: the run (here now, or resumed elsewhere later) continues it.
        # With room here, the creating write also takes the run's lease and starts it (one transaction, not three);
        # at capacity the workflow waits, pending, for whichever instance has room first.
        start = RunStart(self.owner, self._lease_end()) if self.active < self.durability.max_active else None
        started = asyncio.get_running_loop().time()
        workflow, created = await self.store.create(type_name, parameters, workflow_type.steps, request_id,
                                                    current_traceparent(), start, creator)
        if created:
            for event in opening_events(workflow, start):  # what was written: watchers need not read it back
                self.notifier.notify(workflow.id, event)
            if start is None:
                self.queue_depth += 1  # the sweep after a run here ends (or any instance's) takes it
            else:
                self._renewed[workflow.id] = started
                self._new_threads.add(workflow.id)  # its run's first read of checkpoints needs no store
                self._start(workflow, resume=False, fresh=True)
        return workflow

    async def resume_unfinished(self) -> int:
        """One sweep: claims workflows that no live instance holds (left pending or running by a stopped or dead
        process) and runs them; LangGraph resumes each from its last checkpoint. Returns how many it took."""
        waiting = [w for w in await self.store.claimable(utcnow()) if w.type in self.types and w.id not in self._tasks]
        taken = 0
        for workflow in waiting:
            if self.active >= self.durability.max_active or self._closing:
                break
            if await self._claim(workflow.id):
                self._start(workflow, resume=workflow.state == "running")
                taken += 1
        self.queue_depth = len(waiting) - taken
        return taken

    async def cancel(self, workflow_id: str) -> Workflow:
        """Cancels here, or asks the instance that holds the run; a run nobody holds is cancelled at once."""
        workflow = await self.store.get(workflow_id)
        if workflow.done:
            raise FailedPrecondition(f"workflow {workflow_id!r} already ended as {workflow.state}",
                                     reason="WORKFLOW_ALREADY_ENDED")
        await self.store.request_cancel(workflow_id)
        task = self._tasks.get(workflow_id)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        elif await self._claim(workflow_id):
            try:
                await self._finish(workflow_id, "cancelled", "workflow cancelled")
            finally:
                await self.store.release(workflow_id, self.owner)
        else:
            # Another instance holds it: it sees the request at its next heartbeat or step and records the end.
            deadline = asyncio.get_running_loop().time() + 3 * self.durability.beat_seconds + 2
            while not (await self.store.get(workflow_id)).done and asyncio.get_running_loop().time() < deadline:
                await self.notifier.wait(0.1, workflow_id)
        return await self.store.get(workflow_id)

    async def watch(self, workflow_id: str, after: int) -> AsyncIterator[Event]:
        """The workflow's events after `after`; ends after its terminal event (at once, replayed, if it has ended)."""
        async for batch in self.watch_batches(workflow_id, after):
            for event in batch:
                yield event

    async def watch_batches(self, workflow_id: str, after: int) -> AsyncIterator[list[Event]]:
        """As `watch`, the events that are read together as one list: those of one write, or of one replay."""
        if after < 0:
            raise InvalidArgument.field("after_sequence", "must not be negative")
        if not workflow_id:
            raise InvalidArgument.field("id", "is required")
        # A run held here is live, and its terminal event is still to come: its copy may already say it ended while
        # the write of that event is under way, so the copy never ends a watch. Other runs: the store says.
        held = workflow_id in self._held
        done = False if held else (await self.store.get(workflow_id)).done  # NotFound if unknown
        while True:
            seen = self.notifier.version(workflow_id)
            batch = self.notifier.recent_after(workflow_id, after) or await self.store.events_after(workflow_id, after)
            last = next((n for n, event in enumerate(batch) if event.type in TERMINAL), None)
            if batch:
                batch = batch if last is None else batch[:last + 1]
                after = batch[-1].sequence
                yield batch
            if last is not None:
                return
            if done:
                return
            if held and workflow_id not in self._held:
                # No longer run here, and nothing it wrote is left to read (a run that ended here wrote its terminal
                # event before leaving, and the read above returned on it): lost or stopped. Ask the store, then read
                # once more before ending, for an end written elsewhere in between.
                held, done = False, (await self.store.get(workflow_id)).done
                continue
            await self.notifier.wait(POLL_SECONDS, workflow_id, seen)

    async def feed_start(self) -> FeedStart:
        """Fixes the starting point of a watch of every workflow: nothing written after this call is missed."""
        since = utcnow() - CHANGE_WINDOW
        return FeedStart(since, dict(await self.store.changed_since(since)))

    async def watch_all(self, start: FeedStart) -> AsyncIterator[Event]:
        """Events of every workflow written after `start`, each workflow's in sequence order."""
        since, seen = start.since, dict(start.seen)
        while True:
            version = self.notifier.version()
            polled = utcnow() - CHANGE_WINDOW
            for workflow_id, last in await self.store.changed_since(since):
                if last <= seen.get(workflow_id, 0):
                    continue
                for event in await self.store.events_after(workflow_id, seen.get(workflow_id, 0)):
                    seen[workflow_id] = event.sequence
                    yield event
            since = polled
            await self.notifier.wait(POLL_SECONDS, seen=version)

    async def close(self) -> None:
        """Stops local runs without ending them: they stay `running`, their leases are released, and another
        instance (or this one at its next start) resumes them."""
        self._closing = True
        if self._maintainer is not None:
            self._maintainer.cancel()
            await asyncio.gather(self._maintainer, return_exceptions=True)
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Changes already made are written before the store closes (a step's start, a cancelled run's progress).
        await asyncio.gather(*self._writers.values(), return_exceptions=True)

    async def prune(self) -> int:
        """Deletes the checkpoints of workflows that ended longer ago than the retention; returns how many."""
        before = utcnow() - dt.timedelta(seconds=self.durability.retention_seconds)
        pruned = 0
        for workflow_id in await self.store.prunable(before):
            await self._checkpointer.adelete_thread(workflow_id)
            await self.store.mark_pruned(workflow_id)
            pruned += 1
        return pruned

    async def _maintain(self) -> None:
        """Heartbeat of the runs held here, then a sweep for runs nobody holds; pruning now and then."""
        next_prune = 0.0
        loop = asyncio.get_running_loop()
        while not self._closing:
            try:
                await self._heartbeat()
                await self.resume_unfinished()
                if loop.time() >= next_prune:
                    await self.prune()
                    next_prune = loop.time() + min(self.durability.retention_seconds, 600.0)
            except Exception:  # a store outage must not end the loop: the next pass tries again
                log.exception("workflow maintenance pass failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.durability.beat_seconds):
                    await self._wake.wait()

    async def _heartbeat(self) -> None:
        for workflow_id, task in list(self._tasks.items()):
            started = asyncio.get_running_loop().time()
            state = await self.store.renew(workflow_id, self.owner, self._lease_end())
            if state == "held":
                self._renewed[workflow_id] = started
            elif state == "lost" and not task.done() and not (await self.store.get(workflow_id)).done:
                log.warning("workflow lease lost", extra={"workflow": workflow_id})
                self._lost.add(workflow_id)
                task.cancel()
            elif state == "cancel_requested":
                task.cancel()

    def _fresh(self, workflow_id: str) -> bool:
        renewed = self._renewed.get(workflow_id)
        return renewed is not None and asyncio.get_running_loop().time() - renewed < self.durability.beat_seconds

    def _lease_end(self) -> dt.datetime:
        return utcnow() + dt.timedelta(seconds=self.durability.lease_seconds)

    async def _claim(self, workflow_id: str) -> bool:
        started = asyncio.get_running_loop().time()
        claimed = await self.store.claim(workflow_id, self.owner, utcnow(), self._lease_end())
        if claimed:
            self._renewed[workflow_id] = started
        return claimed

    def _start(self, workflow: Workflow, *, resume: bool, fresh: bool = False) -> None:
        if workflow.id in self._tasks:  # the sweeper and create() may both claim a new workflow: one run only
            return
        # A workflow this instance just created is current as it is; one taken over is read again after the claim.
        task = asyncio.create_task(self._run(workflow.id, resume, workflow if fresh else None),
                                   name=f"workflow-{workflow.id}")
        self._tasks[workflow.id] = task
        self.idle.clear()
        if fresh:
            self._held[workflow.id] = workflow

        def done(_: asyncio.Task[None]) -> None:
            self._tasks.pop(workflow.id, None)
            self._lost.discard(workflow.id)
            self._renewed.pop(workflow.id, None)
            self._fractions.pop(workflow.id, None)
            self._starts.pop(workflow.id, None)
            self._held.pop(workflow.id, None)
            self._ended.discard(workflow.id)
            self._new_threads.discard(workflow.id)
            if not self._tasks:
                self.idle.set()
            if self.queue_depth:  # room for a queued workflow: sweep now rather than at the next beat
                self._wake.set()

        task.add_done_callback(done)

    async def _run(self, workflow_id: str, resume: bool, fresh: Workflow | None) -> None:
        try:
            await self._run_held(workflow_id, resume, fresh)
        finally:
            # An ended workflow cannot be claimed again: its lease needs no release (one write less per run).
            if workflow_id not in self._lost and workflow_id not in self._ended:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.store.release(workflow_id, self.owner))

    async def _run_held(self, workflow_id: str, resume: bool, fresh: Workflow | None) -> None:
        workflow = fresh or await self.store.get(workflow_id)
        if workflow.done:  # ended between the sweep and the claim
            return
        self._held[workflow_id] = workflow
        # Whichever task runs it (create's, the sweeper's, another instance's), the run is a child of the call that
        # created the workflow, so its steps, agent runs and tool calls are in that trace.
        with resumed("workflow.run", workflow.traceparent, **{"mcpmesh.workflow_id": workflow_id,
                                                              "mcpmesh.workflow_type": workflow.type,
                                                              "mcpmesh.resumed": resume}):
            await self._run_traced(workflow, resume)

    async def _run_traced(self, workflow: Workflow, resume: bool) -> None:
        workflow_id = workflow.id
        workflow_type = self.types[workflow.type]
        if resume:
            await self._update(workflow_id, lambda w: ("resumed", "", f"workflow resumed by {self.owner}"))
        elif workflow.state == "pending":  # claimed by a sweep after waiting; one created here is started already
            await self._update(workflow_id, lambda w: _started(w, self.owner))
        config: RunnableConfig = {"configurable": {"thread_id": workflow_id}}
        graph = self._graphs[workflow.type]
        act_for(workflow.creator)  # this task's steps call as the workflow's creator
        try:
            inputs: dict[str, Any] | None = workflow_type.initial_state(workflow.parameters)
            # Resume from the last checkpoint; a run stopped before its first checkpoint starts over.
            if resume and (await graph.aget_state(config)).values:
                inputs = None
            final = await graph.ainvoke(inputs, config)
            # Every type runs every step (no conditional edges), and a step's end is written before its node
            # returns: a graph that ends with a step not succeeded did not do the workflow, so it fails instead of
            # succeeding without a result (a resume from checkpoints holding part of a step's writes did that: the
            # join before merge never fired; see whole_task_writes in store_dynamodb.py).
            record = self._held.get(workflow_id) or await self.store.get(workflow_id)
            not_run = [s.name for s in record.steps if s.state != "succeeded"]
            if not_run:
                raise DomainError(f"the run ended before step(s) {', '.join(not_run)} ran", reason="STEPS_NOT_RUN")
        except asyncio.CancelledError:
            if self._closing or workflow_id in self._lost:
                raise
            await self._finish(workflow_id, "cancelled", "workflow cancelled")
            raise
        except LeaseLost:
            self._lost.add(workflow_id)
            return
        except CancelRequested:
            await self._finish(workflow_id, "cancelled", "workflow cancelled")
            return
        except Exception as exc:  # every failure of a run is recorded on the workflow
            log.info("workflow failed", extra={"workflow": workflow_id, "error": str(exc)})
            await self._finish(workflow_id, "failed", f"workflow failed: {exc}", error=_error(exc))
            return
        await self._finish(workflow_id, "succeeded", "workflow succeeded", result=final.get("result", {}))

    async def _finish(
        self, workflow_id: str, state: str, message: str, *, error: dict[str, Any] | None = None,
        result: dict[str, Any] | None = None,
    ) -> None:
        def finish(workflow: Workflow) -> Change | None:
            if workflow.done:  # a cancel that lands while the end is being written: one end only
                return None
            workflow.state, workflow.error, workflow.result = state, error, result
            if state == "succeeded":
                workflow.progress = 100
            for step in workflow.steps:
                if step.state == "running":  # a sibling of the failed step, stopped by LangGraph
                    step.state = "cancelled"
            return state, "", message

        await self._update(workflow_id, finish)

    async def _on_step(
        self, workflow_id: str, step_name: str, outcome: str, progress: StepProgress | None = None
    ) -> None:
        if outcome == "progress":
            if progress is not None:
                self._behind(workflow_id, lambda w: self._progressed(w, step_name, progress))
            return
        if outcome == "started" and not self._fresh(workflow_id):
            # Fencing before each step's side effects: only the lease holder runs it, and a cancel stops it here.
            # A lease renewed less than a beat ago still has three quarters of its life: no other instance can
            # hold it, so the write is skipped (a cancel from elsewhere then lands at the heartbeat, within a beat).
            lease = await self.store.renew(workflow_id, self.owner, self._lease_end())
            if lease == "lost":
                raise LeaseLost(workflow_id)
            if lease == "cancel_requested":
                raise CancelRequested(workflow_id)
            self._renewed[workflow_id] = asyncio.get_running_loop().time()

        at = utcnow()

        def change(workflow: Workflow) -> Change | None:
            step = next(s for s in workflow.steps if s.name == step_name)
            if outcome == "started":
                # Re-run after a resume, of a step that was running or whose success had not reached the checkpoint:
                # its calls carry the same idempotency keys, so watchers see it start and succeed once.
                if step.state in ("running", "succeeded"):
                    return None
                step.state, step.started, step.ended, step.error = "running", at, None, ""
                event = "step_started"
            elif outcome == "succeeded":
                if step.state == "succeeded":
                    return None
                step.state, step.ended = "succeeded", at
                event = "step_succeeded"
            else:
                step.state, step.ended, step.error = "failed", at, outcome.removeprefix("failed: ")
                event = "step_failed"
            self._fractions.get(workflow_id, {}).pop(step_name, None)
            workflow.progress = max(workflow.progress, self._percent(workflow))
            return event, step_name, f"{step_name} {outcome}"

        if outcome == "started":
            # Written behind: the body starts at once, and a short step's start and end share one write. The end
            # waits for the start's write too, so a step is never done (nor in a checkpoint) before its start is
            # recorded, and a failed write of the start fails the step as an awaited one would.
            written = self._enqueue(workflow_id, change)
            written.add_done_callback(_log_failure)
            self._starts.setdefault(workflow_id, {})[step_name] = written
            return
        start = self._starts[workflow_id].pop(step_name, None) if workflow_id in self._starts else None

        def end(workflow: Workflow) -> Change | None:
            # Applied after the start's write (in the same batch, or an earlier one that is done): when that write
            # failed, the end is not recorded either, and the step fails with its error below.
            if start is not None and start.done() and start.exception() is not None:
                return None
            return change(workflow)

        await self._update(workflow_id, end)
        if start is not None:
            await start

    def _percent(self, workflow: Workflow) -> int:
        """Steps done, and the share each running step reported of itself; below 100 until the workflow ends."""
        running = self._fractions.get(workflow.id, {})
        share = workflow.steps_done + sum(running.get(s.name, 0.0) for s in workflow.steps if s.state == "running")
        return min(99, int(100 * share / len(workflow.steps)))

    def _progressed(self, workflow: Workflow, step_name: str, progress: StepProgress) -> Change | None:
        """A step_progress event: the step's own report (items done of total) and the workflow's percent."""
        step = next(s for s in workflow.steps if s.name == step_name)
        if step.state != "running":  # a late report of a step that has ended
            return None
        self._fractions.setdefault(workflow.id, {})[step_name] = progress.fraction
        workflow.progress = max(workflow.progress, self._percent(workflow))
        counted = f": {progress.done} of {progress.total}" if progress.total else ""
        return "step_progress", step_name, f"{step_name} {progress.stage}{counted}", progress.done, progress.total

    async def _update(self, workflow_id: str, change: Callable[[Workflow], Change | None]) -> None:
        """Changes one workflow and writes the change with its event; returns once it is written."""
        await self._enqueue(workflow_id, change)

    def _enqueue(self, workflow_id: str, change: Callable[[Workflow], Change | None]) -> asyncio.Future[None]:
        """Queues a change of one workflow for its writer, which applies the changes in order (parallel steps
        take turns, so neither overwrites the other) and writes those waiting together in one transaction."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.setdefault(workflow_id, []).append((change, future))
        if workflow_id not in self._writers:
            self._writers[workflow_id] = asyncio.create_task(self._write(workflow_id), name=f"workflow-writer-{workflow_id}")
        return future

    async def _write(self, workflow_id: str) -> None:
        # The task first runs in the loop's next turn: changes made in this turn (parallel steps) share one write.
        try:
            while queued := self._queued.get(workflow_id):
                batch, self._queued[workflow_id] = queued[:MAX_BATCH], queued[MAX_BATCH:]
                try:
                    # While this instance holds the run's lease it is the workflow's only writer: its copy is current.
                    workflow = self._held.get(workflow_id) or await self.store.get(workflow_id)
                    drafts = []
                    for change, _ in batch:
                        made = change(workflow)
                        if made is not None:
                            drafts.append(Draft.of(workflow, *made))
                    events = await self.store.record_all(workflow, drafts) if drafts else []
                except Exception as exc:  # each waiting caller gets the failure of the write its change was in
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for event in events:
                    self.notifier.notify(workflow_id, event)
                if workflow.done:
                    self._held.pop(workflow_id, None)
                    if workflow_id in self._tasks:
                        self._ended.add(workflow_id)
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)
        finally:
            self._writers.pop(workflow_id, None)
            if not self._queued.get(workflow_id):
                self._queued.pop(workflow_id, None)

    def _behind(self, workflow_id: str, change: Callable[[Workflow], Change | None]) -> None:
        """A change the step does not wait for (its progress): written in order with the others."""
        self._enqueue(workflow_id, change).add_done_callback(_log_failure)


# (event type, step, message[, items done, items total]) recorded with a workflow's new state
Change = tuple[str, str, str] | tuple[str, str, str, int, int]
MAX_BATCH = 25  # events in one write at most (a DynamoDB transaction takes 100 items)


def _log_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("workflow event not written", extra={"error": str(future.exception())})


def _started(workflow: Workflow, owner: str) -> Change:
    workflow.state = "running"
    return "started", "", started_message(owner)


def _error(exc: Exception) -> dict[str, Any]:
    """A failed step keeps the status of the service that failed it, so callers see the real reason."""
    if isinstance(exc, DomainError):
        return {"code": exc.code, "reason": exc.reason, "message": exc.message}
    return {"code": "INTERNAL", "reason": "INTERNAL", "message": f"{type(exc).__name__}: {exc}"}
