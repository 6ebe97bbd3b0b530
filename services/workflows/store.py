"""Workflow records, their steps and their event log: the domain records and the WorkflowStore port.

Each workflow's events are numbered 1, 2, 3... by its own sequence, which is the only order: a store needs no
global counter (DynamoDB has none). Watchers of every workflow ask which workflows changed since a moment and
read each one's events after the last sequence they saw."""

from __future__ import annotations

import builtins
import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol

from services.runtime.errors import NotFound

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


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

    @property
    def done(self) -> bool:
        return self.state in TERMINAL


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


def not_found(workflow_id: str) -> NotFound:
    return NotFound(f"workflow {workflow_id!r} does not exist", reason="WORKFLOW_NOT_FOUND", metadata={"workflow": workflow_id})


class WorkflowStore(Protocol):
    """Where workflows and their events live. Every write of a state change and its event is atomic."""

    async def create(
        self, type_name: str, parameters: dict[str, Any], steps: builtins.list[str], request_id: str
    ) -> tuple[Workflow, bool]:
        """Saves a new workflow with its `created` event; (earlier workflow, False) for a reused request id."""
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

    async def record(self, workflow: Workflow, event_type: str, step: str, message: str) -> Event:
        """Writes the workflow's new state and the event that describes it, with the next sequence number."""
        ...

    async def events_after(self, workflow_id: str, sequence: int) -> builtins.list[Event]:
        """The workflow's events with a sequence above `sequence`, in order."""
        ...

    async def changed_since(self, moment: dt.datetime) -> builtins.list[tuple[str, int]]:
        """(workflow id, last sequence) of every workflow updated at or after `moment`."""
        ...

    async def ping(self) -> None:
        """Raises when the store cannot be reached."""
        ...
