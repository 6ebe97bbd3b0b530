"""A workflow's events over REST as server-sent events when the client asks for text/event-stream."""

from __future__ import annotations

import json
from pathlib import Path

import httpx


def test_watch_streams_server_sent_events_on_request(rest: httpx.Client, sample_project: Path) -> None:
    created = rest.post("/v1/workflows", json={"type": "code_analysis", "parameters": {"path": str(sample_project)}})
    workflow_id = created.json()["workflow"]["id"]
    with rest.stream("GET", f"/v1/workflows/{workflow_id}:watch", headers={"Accept": "text/event-stream"}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    frames = [frame for frame in text.split("\n\n") if frame.strip()]
    assert all(frame.startswith("data: ") for frame in frames), text[:500]
    events = [json.loads(frame.removeprefix("data: "))["event"] for frame in frames]
    assert [int(e["sequence"]) for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["type"] == "WORKFLOW_EVENT_TYPE_SUCCEEDED"
    # Resuming from a sequence works the same way, and NDJSON stays the default.
    with rest.stream("GET", f"/v1/workflows/{workflow_id}:watch", params={"afterSequence": len(events) - 1},
                     headers={"Accept": "text/event-stream"}) as response:
        tail = [f for f in "".join(response.iter_text()).split("\n\n") if f.strip()]
    assert [json.loads(f.removeprefix("data: "))["event"]["sequence"] for f in tail] == [str(len(events))]
    with rest.stream("GET", f"/v1/workflows/{workflow_id}:watch") as response:
        assert response.headers["content-type"].startswith("application/json")
        assert len([line for line in response.iter_lines() if line.strip()]) == len(events)


def test_watch_in_batches_over_rest_holds_the_same_events_in_fewer_lines(rest: httpx.Client, sample_project: Path) -> None:
    created = rest.post("/v1/workflows", json={"type": "code_analysis", "parameters": {"path": str(sample_project)}})
    workflow_id = created.json()["workflow"]["id"]
    with rest.stream("GET", f"/v1/workflows/{workflow_id}:watch", params={"batch": "true"}) as response:
        assert response.status_code == 200
        lines = [json.loads(line) for line in response.iter_lines() if line.strip()]
    assert all("event" not in line and line["events"] for line in lines), lines[:3]
    events = [event for line in lines for event in line["events"]]
    assert [int(e["sequence"]) for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["type"] == "WORKFLOW_EVENT_TYPE_SUCCEEDED"
    # The replay of an ended workflow is one batch; one event per line is still the default.
    with rest.stream("GET", f"/v1/workflows/{workflow_id}:watch", params={"batch": "true"}) as response:
        replay = [json.loads(line) for line in response.iter_lines() if line.strip()]
    assert [[e["sequence"] for e in line["events"]] for line in replay] == [[e["sequence"] for e in events]]
    with rest.stream("GET", f"/v1/workflows/{workflow_id}:watch", params={"afterSequence": 2}) as response:
        single = [json.loads(line) for line in response.iter_lines() if line.strip()]
    assert [line["event"]["sequence"] for line in single] == [e["sequence"] for e in events[2:]]
