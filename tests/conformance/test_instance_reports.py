"""Conformance suite of the instance report registry port, run against every adapter."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcpmesh.health.v1 import health_pb2

from services.runtime.instance_reports import InstanceReports, PublishedReport
from services.runtime.instance_reports_dynamodb import DynamoDBInstanceReports, create_tables
from services.runtime.instance_reports_sqlite import SCHEMA, SqliteInstanceReports
from services.runtime.state import SqliteDatabase
from tests.dynamodb import tables_for

NOW = dt.datetime(2030, 5, 6, 7, 8, 9, tzinfo=dt.UTC)


@pytest.fixture(params=["sqlite", "dynamodb"])
async def reports(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[InstanceReports]:
    registry: InstanceReports
    if request.param == "sqlite":
        registry = SqliteInstanceReports(SqliteDatabase(tmp_path / "instances.db", SCHEMA))
    else:
        request.getfixturevalue("dynamodb_endpoint")  # DynamoDB Local, started once per session
        client, prefix = tables_for(tmp_path, create_tables)  # one set of tables per test
        registry = DynamoDBInstanceReports(client, prefix)
    yield registry
    registry.close()


def _report(service: str, status: health_pb2.HealthStatus.ValueType, **metrics: float) -> health_pb2.HealthReport:
    return health_pb2.HealthReport(service=service, status=status, version="1.2.3", metrics=metrics,
                                   checks=[health_pb2.HealthCheck(name="database", status=status, detail="ok")])


async def test_a_published_report_reads_back_whole(reports: InstanceReports) -> None:
    report = _report("tools", health_pb2.HEALTH_STATUS_DEGRADED, ToolExecutionQueue=3.0)
    await reports.publish(PublishedReport("tools", "10.0.1.7:3002", report, NOW))
    [found] = await reports.recent(NOW - dt.timedelta(seconds=15))
    assert (found.service, found.address, found.publish_time) == ("tools", "10.0.1.7:3002", NOW)
    assert found.report == report


async def test_each_instance_has_one_entry_its_latest(reports: InstanceReports) -> None:
    await reports.publish(PublishedReport("agents", "10.0.1.8:3001", _report("agents", health_pb2.HEALTH_STATUS_SERVING), NOW))
    later = NOW + dt.timedelta(seconds=5)
    await reports.publish(PublishedReport("agents", "10.0.1.8:3001", _report("agents", health_pb2.HEALTH_STATUS_NOT_SERVING), later))
    await reports.publish(PublishedReport("agents", "10.0.1.9:3001", _report("agents", health_pb2.HEALTH_STATUS_SERVING), later))
    await reports.publish(PublishedReport("gateway", "10.0.1.2:3000", _report("gateway", health_pb2.HEALTH_STATUS_SERVING), later))
    found = await reports.recent(NOW - dt.timedelta(seconds=15))
    assert [(f.service, f.address) for f in found] == [
        ("agents", "10.0.1.8:3001"), ("agents", "10.0.1.9:3001"), ("gateway", "10.0.1.2:3000")]
    assert found[0].report.status == health_pb2.HEALTH_STATUS_NOT_SERVING and found[0].publish_time == later


async def test_stale_and_withdrawn_entries_are_not_recent(reports: InstanceReports) -> None:
    await reports.publish(PublishedReport("tools", "10.0.1.7:3002", _report("tools", health_pb2.HEALTH_STATUS_SERVING), NOW))
    await reports.publish(PublishedReport("tools", "10.0.1.6:3002", _report("tools", health_pb2.HEALTH_STATUS_SERVING),
                                          NOW - dt.timedelta(minutes=2)))
    assert [f.address for f in await reports.recent(NOW - dt.timedelta(seconds=15))] == ["10.0.1.7:3002"]
    await reports.withdraw("tools", "10.0.1.7:3002")
    await reports.withdraw("tools", "10.0.1.5:3002")  # never published: nothing to do, no error
    assert await reports.recent(NOW - dt.timedelta(seconds=15)) == []
    assert [f.address for f in await reports.recent(NOW - dt.timedelta(hours=1))] == ["10.0.1.6:3002"]
