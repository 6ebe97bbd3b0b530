"""Workflow records, their steps and their event log: the domain records and the WorkflowStore port.

Each workflow's events are numbered 1, 2, 3... by its own sequence, which is the only order: a store needs no
global counter (DynamoDB has none). Watchers of every workflow ask which workflows changed since a moment and
read each one's events after the last sequence they saw."""

from __future__ import annotations

import builtins
import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from services.runtime.errors import NotFound
from services.runtime.identity import ANONYMOUS, Identity

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})

# What a lease holder learns when it renews: still its run, someone else's now, or a caller asked to cancel it.
LeaseState = Literal["held", "lost", "cancel_requested"]


@dataclass
class Step:
    name: str
    state: str = "pending"
    started: dt.datetime | None = None
    ended: dt.datetime | None = None
    error: str = ""


@dataclass
class Workflow:
    id: str
    type: str
    parameters: dict[str, Any]
    state: str
    steps: list[Step]
    created: dt.datetime
    updated: dt.datetime
    progress: int = 0
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None  # {"code": str, "message": str, "reason": str}
    last_sequence: int = 0
    # W3C traceparent of the call that created the workflow: its runs, here or resumed elsewhere, join that trace.
    traceparent: str = ""
    # Who created it: its steps call agents and tools as this identity (anonymous: as the workflows service).
    creator: Identity = ANONYMOUS

    @property
    def trace_id(self) -> str:
        """The 32 hex digits of the creating trace, "" when the creation was not traced."""
        parts = self.traceparent.split("-")
        return parts[1] if len(parts) == 4 else ""

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

    @property
    def steps_done(self) -> int:
        return sum(1 for s in self.steps if s.state == "succeeded")


@dataclass(frozen=True)
class Event:
    workflow_id: str
    sequence: int
    type: str
    step: str
    state: str
    progress: int
    message: str
    created: dt.datetime
    steps_done: int = 0  # steps succeeded after the event, of steps_total
    steps_total: int = 0
    items_done: int = 0  # a step_progress event's items (files, tables) done of items_total, as its agent reported
    items_total: int = 0


@dataclass(frozen=True)
class Draft:
    """An event as a change of the workflow makes it, before the store gives it its sequence number."""

    type: str
    step: str
    message: str
    state: str
    progress: int
    steps_done: int
    steps_total: int
    items_done: int = 0
    items_total: int = 0

    @classmethod
    def of(cls, workflow: Workflow, event_type: str, step: str, message: str, items_done: int = 0,
           items_total: int = 0) -> Draft:
        """The event of a change just made to `workflow`, with its state and progress as they are now."""
        return cls(event_type, step, message, workflow.state, workflow.progress, workflow.steps_done,
                   len(workflow.steps), items_done, items_total)

    def event(self, workflow_id: str, sequence: int, created: dt.datetime) -> Event:
        return Event(workflow_id, sequence, self.type, self.step, self.state, self.progress, self.message, created,
                     self.steps_done, self.steps_total, self.items_done, self.items_total)


@dataclass(frozen=True)
class RunStart:
    """A new workflow claimed and started by its creating write: the lease owner and when the lease ends."""

    owner: str
    until: dt.datetime


def started_message(owner: str) -> str:
    return f"workflow started by {owner}"


def opening_events(workflow: Workflow, start: RunStart | None) -> list[Event]:
    """The events a new workflow is written with, exactly as every adapter stores them: `created`, and `started`
    when the creating write also claims the run (so the creator can hand them to watchers without reading)."""
    total = len(workflow.steps)
    events = [Event(workflow.id, 1, "created", "", "pending", 0, f"{workflow.type} workflow created", workflow.created,
                    0, total)]
    if start is not None:
        events.append(Event(workflow.id, 2, "started", "", "running", 0, started_message(start.owner), workflow.created,
                            0, total))
    return events


def not_found(workflow_id: str) -> NotFound:
    return NotFound(f"workflow {workflow_id!r} does not exist", reason="WORKFLOW_NOT_FOUND", metadata={"workflow": workflow_id})


class WorkflowStore(Protocol):
    """Where workflows and their events live. Every write of a state change and its event is atomic."""

    async def create(
        self, type_name: str, parameters: dict[str, Any], steps: builtins.list[str], request_id: str,
        traceparent: str = "", start: RunStart | None = None, creator: Identity = ANONYMOUS,
    ) -> tuple[Workflow, bool]:
        """Saves a new workflow (with the trace and the identity that created it) and its opening_events; with
        `start`, in the same write, its run lease is taken by start.owner and it is running. (earlier workflow,
        False) for a reused request id."""
        ...

    async def get(self, workflow_id: str) -> Workflow:
        """The workflow; NotFound (WORKFLOW_NOT_FOUND) when there is none."""
        ...

    async def list(self, state: str, offset: int, limit: int) -> tuple[builtins.list[Workflow], bool]:
        """Newest first, optionally of one state; one page and whether more follow."""
        ...

    async def unfinished(self) -> builtins.list[Workflow]:
        """Pending and running workflows, oldest first."""
        ...

    async def record(
        self, workflow: Workflow, event_type: str, step: str, message: str, items_done: int = 0, items_total: int = 0
    ) -> Event:
        """Writes the workflow's new state and the event that describes it (with the steps done of total, and a
        step's items done of total on step_progress), with the next sequence number."""
        ...

    async def record_all(self, workflow: Workflow, drafts: builtins.list[Draft]) -> builtins.list[Event]:
        """Writes the workflow's new state and several events (changes made one after another, each with the
        state it had then) with the next sequence numbers, in one atomic write: `record` for a batch."""
        ...

    async def events_after(self, workflow_id: str, sequence: int) -> builtins.list[Event]:
        """The workflow's events with a sequence above `sequence`, in order."""
        ...

    async def changed_since(self, moment: dt.datetime) -> builtins.list[tuple[str, int]]:
        """(workflow id, last sequence) of every workflow updated at or after `moment`."""
        ...

    # Run leases: at most one instance runs a workflow at a time. An instance claims an unfinished workflow by a
    # conditional write that succeeds only when no live lease is held by another owner, renews it while it runs
    # (its heartbeat, and before each step), and releases it when the run ends or the process stops.

    async def claim(self, workflow_id: str, owner: str, now: dt.datetime, until: dt.datetime) -> bool:
        """Takes the run lease of an unfinished workflow if it is free, expired before `now`, or already `owner`'s."""
        ...

    async def renew(self, workflow_id: str, owner: str, until: dt.datetime) -> LeaseState:
        """Extends `owner`'s lease; "lost" when another owner holds it or the workflow ended, "cancel_requested"
        (lease extended) when a caller asked to cancel."""
        ...

    async def release(self, workflow_id: str, owner: str) -> None:
        """Gives the lease up if `owner` holds it, so another instance may take the run over at once."""
        ...

    async def claimable(self, now: dt.datetime) -> builtins.list[Workflow]:
        """Unfinished workflows whose lease is free or expired before `now`, oldest first."""
        ...

    async def request_cancel(self, workflow_id: str) -> None:
        """Marks the workflow for cancellation; its lease holder sees it at its next renew."""
        ...

    async def prunable(self, ended_before: dt.datetime) -> builtins.list[str]:
        """Ids of workflows that ended before `ended_before` whose checkpoints are not pruned yet."""
        ...

    async def mark_pruned(self, workflow_id: str) -> None:
        """Records that the workflow's checkpoints were deleted; the workflow, its events and result stay."""
        ...

    async def ping(self) -> None:
        """Raises when the store cannot be reached."""
        ...
