"""The dashboard's WebSocket through Envoy's /ws route: subscribe, then receive workflow updates."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from services.launcher.processes import LocalMesh


def test_subscribe_and_receive_workflow_updates(mesh: LocalMesh, admin_key: str, rest: httpx.Client, sample_project: Path) -> None:
    url = f"ws://127.0.0.1:{mesh.ports.edge}/ws"
    with connect(url, additional_headers={"Authorization": f"Bearer {admin_key}"}, open_timeout=10) as socket:
        socket.send(json.dumps({"action": "subscribe", "types": ["workflow_update"]}))
        assert json.loads(socket.recv(timeout=10)) == {"type": "subscribed", "types": ["workflow_update"]}
        workflow = rest.post("/v1/workflows", json={"type": "code_analysis", "parameters": {"path": str(sample_project)}}).json()["workflow"]
        seen = []
        while not seen or seen[-1]["data"]["type"] != "WORKFLOW_EVENT_TYPE_SUCCEEDED":
            message = json.loads(socket.recv(timeout=30))
            assert message["type"] == "workflow_update"
            if message["data"]["workflow_id"] == workflow["id"]:
                seen.append(message)
        assert [int(m["data"]["sequence"]) for m in seen] == list(range(1, len(seen) + 1))


def test_bad_messages_get_an_error_naming_the_field(mesh: LocalMesh, admin_key: str) -> None:
    with connect(f"ws://127.0.0.1:{mesh.ports.edge}/ws?token={admin_key}", open_timeout=10) as socket:
        socket.send("not json")
        assert json.loads(socket.recv(timeout=10))["reason"] == "INVALID_MESSAGE"
        socket.send(json.dumps({"action": "subscribe", "types": ["weather"]}))
        error = json.loads(socket.recv(timeout=10))
        assert error["message"].startswith("types:")


def test_unauthenticated_socket_is_closed(mesh: LocalMesh) -> None:
    with connect(f"ws://127.0.0.1:{mesh.ports.edge}/ws", open_timeout=10) as socket:
        assert json.loads(socket.recv(timeout=10))["reason"] == "API_KEY_MISSING"
        with pytest.raises(ConnectionClosed):
            socket.recv(timeout=10)
    assert socket.close_code == 4401


@pytest.mark.parametrize("message", ["[" * 30000 + "]" * 30000, "[" * 5000 + "]" * 5000, json.dumps({"action": "subscribe", "pad": "x" * 200_000})])
def test_deep_or_large_messages_get_an_error_frame_and_the_connection_stays(mesh: LocalMesh, admin_key: str, message: str) -> None:
    """Before: 30,000 nested arrays closed the socket with 1011 and a traceback in the gateway's log."""
    with connect(f"ws://127.0.0.1:{mesh.ports.edge}/ws?token={admin_key}", open_timeout=10) as socket:
        socket.send(message)
        error = json.loads(socket.recv(timeout=10))
        assert error["type"] == "error" and error["reason"] == "INVALID_MESSAGE"
        assert error["message"].startswith("message:")
        socket.send(json.dumps({"action": "subscribe", "types": ["service_health"]}))
        assert json.loads(socket.recv(timeout=10)) == {"type": "subscribed", "types": ["service_health"]}


def test_two_hundred_subscribers_receive_every_event_of_a_running_workflow(
    mesh: LocalMesh, rest: httpx.Client, sample_project: Path
) -> None:
    """20 identities x 10 connections (the per-identity limit), all fed by the gateway's one upstream watch."""
    import asyncio

    from websockets.asyncio.client import connect as async_connect

    keys = [rest.post("/v1/api-keys", json={"displayName": f"ws{n}", "role": "ROLE_VIEWER"}).json()["secret"] for n in range(20)]
    url = f"ws://127.0.0.1:{mesh.ports.edge}/ws"

    async def scenario() -> list[list[int]]:
        sockets = []
        for key in keys:
            for _ in range(10):
                socket = await async_connect(f"{url}?token={key}", open_timeout=20)
                await socket.send(json.dumps({"action": "subscribe", "types": ["workflow_update"]}))
                sockets.append(socket)
        for socket in sockets:
            assert json.loads(await asyncio.wait_for(socket.recv(), 20))["type"] == "subscribed"
        over = await async_connect(f"{url}?token={keys[0]}", open_timeout=20)  # the 11th of one identity
        assert json.loads(await asyncio.wait_for(over.recv(), 10))["reason"] == "TOO_MANY_CONNECTIONS"
        await over.close()
        created = await asyncio.to_thread(
            rest.post, "/v1/workflows", json={"type": "code_analysis", "parameters": {"path": str(sample_project)}})
        workflow_id = created.json()["workflow"]["id"]

        async def follow(socket) -> list[int]:
            seen: list[int] = []
            while True:
                message = json.loads(await asyncio.wait_for(socket.recv(), 60))
                if message["data"].get("workflow_id") != workflow_id:
                    continue
                seen.append(int(message["data"]["sequence"]))
                if message["data"]["type"] in ("WORKFLOW_EVENT_TYPE_SUCCEEDED", "WORKFLOW_EVENT_TYPE_FAILED"):
                    return seen

        try:
            return await asyncio.gather(*(follow(s) for s in sockets))
        finally:
            await asyncio.gather(*(s.close() for s in sockets), return_exceptions=True)

    results = asyncio.run(scenario())
    assert len(results) == 200
    assert all(seen == list(range(1, len(seen) + 1)) for seen in results) and len(results[0]) >= 4
    assert len({tuple(seen) for seen in results}) == 1  # everyone saw the same events


def test_reconnect_with_the_last_sequence_misses_no_event(mesh: LocalMesh, admin_key: str, rest: httpx.Client, sample_project: Path) -> None:
    workflow = rest.post("/v1/workflows", json={"type": "code_analysis", "parameters": {"path": str(sample_project)}}).json()["workflow"]
    url = f"ws://127.0.0.1:{mesh.ports.edge}/ws?token={admin_key}"
    with connect(url, open_timeout=10) as socket:
        # Resume from sequence 2: the stored events 3.. come first, then live ones until the workflow ends.
        socket.send(json.dumps({"action": "subscribe", "types": ["workflow_update"], "resume": {workflow["id"]: 2}}))
        assert json.loads(socket.recv(timeout=10))["type"] == "subscribed"
        seen = []
        while not seen or seen[-1]["data"]["type"] not in ("WORKFLOW_EVENT_TYPE_SUCCEEDED", "WORKFLOW_EVENT_TYPE_FAILED"):
            message = json.loads(socket.recv(timeout=60))
            assert message["data"]["workflow_id"] == workflow["id"]
            seen.append(message)
    assert [m["sequence"] for m in seen] == list(range(3, 3 + len(seen)))
    with connect(url, open_timeout=10) as socket:
        socket.send(json.dumps({"action": "subscribe", "resume": {"x" * 300: 1}}))
        error = json.loads(socket.recv(timeout=10))
        assert error["reason"] == "INVALID_MESSAGE" and error["message"].startswith("resume:")
        socket.send(json.dumps({"action": "subscribe", "types": ["workflow_update"], "resume": {"no-such-workflow": 0}}))
        frames = [json.loads(socket.recv(timeout=10)) for _ in range(2)]
        assert {f["type"] for f in frames} == {"subscribed", "error"}
        assert [f["reason"] for f in frames if f["type"] == "error"] == ["WORKFLOW_NOT_FOUND"]
