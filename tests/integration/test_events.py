"""The gateway's event feed over REST (NDJSON through the transcoder) and the system metrics."""

from __future__ import annotations

import json

import httpx

from services.launcher.processes import LocalMesh


def test_service_health_events_stream_as_ndjson(mesh: LocalMesh, admin_key: str) -> None:
    headers = {"Authorization": f"Bearer {admin_key}"}
    url = f"{mesh.edge_url}/v1/events"
    with httpx.stream("GET", url, params={"types": "EVENT_TYPE_SERVICE_HEALTH"}, headers=headers, timeout=30) as response:
        assert response.status_code == 200
        first = json.loads(next(line for line in response.iter_lines() if line.strip()))["event"]
    assert first["type"] == "EVENT_TYPE_SERVICE_HEALTH"
    services = {s["service"]: s["status"] for s in first["data"]["services"]}
    assert services == {"gateway": "serving", "agents": "serving", "tools": "serving", "workflows": "serving"}


def test_unknown_event_type_is_rejected(mesh: LocalMesh, admin_key: str) -> None:
    response = httpx.get(f"{mesh.edge_url}/v1/events", params={"types": "EVENT_TYPE_WEATHER"},
                         headers={"Authorization": f"Bearer {admin_key}"}, timeout=30)
    assert response.status_code == 400


def test_system_metrics_include_scaling_gauges_and_envoy_counters(mesh: LocalMesh, admin_key: str) -> None:
    response = httpx.get(f"{mesh.edge_url}/v1/system/metrics", headers={"Authorization": f"Bearer {admin_key}"}, timeout=30)
    assert response.status_code == 200
    metrics = {(m["service"], m["name"]) for m in response.json()["metrics"]}
    assert {("workflows", "ActiveWorkflows"), ("agents", "ActiveAgentExecutions"), ("tools", "ToolExecutionQueue")} <= metrics
    assert ("gateway", "envoy.upstream_rq_total") in metrics
