"""WebSocket fan-out latency: workflow events to 200 subscribers on the edge's /ws.

A local mesh (Envoy and the four services), 200 WebSocket subscribers at the edge (20 viewer keys x 10
connections, the per-identity limit) subscribed to workflow_update, and code_analysis workflows running on a
small generated project. Latency of each event at each subscriber: from the event's create_time (the
workflows service's clock when it recorded the event) to the subscriber receiving it (same host, same clock),
through the mesh, the gateway's one upstream watch and its fan-out, and Envoy's /ws route. The subscribers
all run in this one process, so the figure includes their own reading of 200 copies of each event.
Baseline in the same run: the same workflows watched by one subscriber. Figures: p50 and p99 over every
(subscriber, event) pair, and their ratio to the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from websockets.asyncio.client import ClientConnection, connect

from bench import MESH_ENV
from services.launcher.envoy_config import Ports
from services.launcher.processes import LocalMesh

PER_IDENTITY = 10  # the gateway's limit of connections per identity (websocket.MAX_SESSIONS_PER_IDENTITY)
TERMINAL = ("WORKFLOW_EVENT_TYPE_SUCCEEDED", "WORKFLOW_EVENT_TYPE_FAILED", "WORKFLOW_EVENT_TYPE_CANCELLED")


def write_project(folder: Path) -> Path:
    """A few small Python files: enough steps and events per workflow, quick to analyse."""
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(5):
        (folder / f"module_{n}.py").write_text(
            f'"""Module {n}."""\n\n\ndef add_{n}(a: int, b: int) -> int:\n    return a + b + {n}\n'
        )
    return folder


async def subscribe(url: str, keys: list[str], count: int) -> list[ClientConnection]:
    sockets = []
    for n in range(count):
        socket = await connect(f"{url}?token={keys[n // PER_IDENTITY]}", open_timeout=30, max_queue=None)
        await socket.send(json.dumps({"action": "subscribe", "types": ["workflow_update"]}))
        sockets.append(socket)
    for socket in sockets:
        reply = json.loads(await asyncio.wait_for(socket.recv(), 30))
        if reply.get("type") != "subscribed":
            raise RuntimeError(f"subscription refused: {reply}")
    return sockets


async def follow(socket: ClientConnection, workflow_id: str) -> list[float]:
    """Latencies (ms) of one workflow's events at one subscriber, until its terminal event."""
    latencies = []
    while True:
        message = json.loads(await asyncio.wait_for(socket.recv(), 120))
        received = time.time()
        data = message.get("data", {})
        if data.get("workflow_id") != workflow_id:
            continue
        created = dt.datetime.fromisoformat(data["create_time"]).timestamp()
        latencies.append(1000 * (received - created))
        if data.get("type") in TERMINAL:
            return latencies


async def run_workflows(client: httpx.AsyncClient, sockets: list[ClientConnection], project: Path, workflows: int) -> list[float]:
    samples: list[float] = []
    for _ in range(workflows):
        # Start watching before the workflow exists: its first events come within milliseconds of the create.
        pending: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        async def watch(socket: ClientConnection) -> list[float]:
            return await follow(socket, await pending)

        watchers = [asyncio.create_task(watch(s)) for s in sockets]
        response = await client.post("/v1/workflows", json={"type": "code_analysis", "parameters": {"path": str(project)}})
        response.raise_for_status()
        pending.set_result(response.json()["workflow"]["id"])
        for found in await asyncio.gather(*watchers):
            samples += found
    return samples


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


async def measure(mesh: LocalMesh, project: Path, subscribers: int, workflows: int) -> tuple[list[float], list[float]]:
    admin = {"Authorization": f"Bearer {mesh.admin_key()}"}
    async with httpx.AsyncClient(base_url=mesh.edge_url, headers=admin, timeout=60) as client:
        keys = []
        for n in range(-(-subscribers // PER_IDENTITY)):
            created = await client.post("/v1/api-keys", json={"displayName": f"fanout{n}", "role": "ROLE_VIEWER"})
            created.raise_for_status()
            keys.append(created.json()["secret"])
        url = f"ws://127.0.0.1:{mesh.ports.edge}/ws"
        one = await subscribe(url, keys, 1)
        await run_workflows(client, one, project, 1)  # warm: the gateway's watch, the services' caches
        baseline = await run_workflows(client, one, project, workflows)
        await one[0].close()
        many = await subscribe(url, keys, subscribers)
        try:
            fanned = await run_workflows(client, many, project, workflows)
        finally:
            await asyncio.gather(*(s.close() for s in many), return_exceptions=True)
    return baseline, fanned


def report(baseline: list[float], fanned: list[float], subscribers: int) -> None:
    print(f"{'subscribers':<12} {'events':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, samples in (("1", baseline), (str(subscribers), fanned)):
        print(f"{name:<12} {len(samples):>8} {statistics.median(samples):>8.1f} {percentile(samples, 0.99):>8.1f} {max(samples):>8.1f}")
    print(f"fan-out to {subscribers}: p50 {statistics.median(fanned) / statistics.median(baseline):.2f}x one subscriber, "
          f"p99 {percentile(fanned, 0.99) / percentile(baseline, 0.99):.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=200, help="WebSocket subscribers at the edge")
    parser.add_argument("--workflows", type=int, default=3, help="code_analysis workflows watched, one after another")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        project = write_project(Path(folder) / "workspace" / "project")
        env = {**MESH_ENV, "MCPMESH_TRACING": "off"}
        mesh = LocalMesh(Path(folder) / "data", ports=Ports.free(), workspace_roots=[project.parent], extra_env=env)
        try:
            mesh.start()
            baseline, fanned = asyncio.run(measure(mesh, project, args.subscribers, args.workflows))
        finally:
            mesh.stop()
    report(baseline, fanned, args.subscribers)


if __name__ == "__main__":
    main()
