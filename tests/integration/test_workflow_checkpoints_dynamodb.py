"""DynamoDBSaver as the workflows service uses it (whole_task_writes), on DynamoDB Local: a task's checkpoint writes
are stored whole or not at all, so a process stopped while saving them never leaves a part that LangGraph would take
for the whole task (a join after it then never fires)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.base import empty_checkpoint
from langgraph_checkpoint_aws import DynamoDBSaver  # type: ignore[import-untyped]

from services.workflows.store_dynamodb import create_tables, table_names, whole_task_writes
from tests.dynamodb import tables_for

WRITES = [("inventory", {"total_files": 3}), ("completed", ["inventory_files"]),
          ("branch:to:merge", "inventory_files")]


@pytest.fixture()
def saver(dynamodb_endpoint: str, tmp_path: Path) -> Any:
    _, prefix = tables_for(tmp_path, create_tables)
    made = whole_task_writes(DynamoDBSaver(table_name=table_names(prefix)["checkpoints"], endpoint_url=dynamodb_endpoint))
    config = {"configurable": {"thread_id": "w1", "checkpoint_ns": ""}}
    return made, made.put(config, empty_checkpoint(), {"source": "loop", "step": 0}, {})


def test_a_tasks_writes_are_stored_whole(saver: Any) -> None:
    made, config = saver
    made.put_writes(config, WRITES, "task-1")
    stored = made.get_tuple(config).pending_writes
    assert sorted((t, c) for t, c, _ in stored) == sorted(("task-1", c) for c, _ in WRITES)
    assert {c: v for _, c, v in stored} == dict(WRITES)


def test_a_save_stopped_midway_leaves_none_of_the_tasks_writes(saver: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    made, config = saver
    storage = made.repo.storage
    real = storage.store_data
    stored_payloads: list[str] = []

    def stops_at_the_second(**kwargs: Any) -> Any:
        if len(stored_payloads) == 1:
            raise KeyboardInterrupt("the process stops here")  # as a kill would: nothing after this runs
        stored_payloads.append(kwargs["chunk_key"])
        return real(**kwargs)

    monkeypatch.setattr(storage, "store_data", stops_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        made.put_writes(config, WRITES, "task-1")
    assert stored_payloads  # it did stop in the middle
    assert made.get_tuple(config).pending_writes == []  # not a part of them
    monkeypatch.setattr(storage, "store_data", real)
    made.put_writes(config, WRITES, "task-1")  # saved again after a resume: whole
    assert len(made.get_tuple(config).pending_writes) == len(WRITES)
