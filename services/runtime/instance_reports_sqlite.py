"""The SQLite adapter of the instance report registry: one row per instance, in a file every local process shares."""

from __future__ import annotations

import datetime as dt
import sqlite3

from mcpmesh.health.v1 import health_pb2

from services.runtime.instance_reports import PublishedReport
from services.runtime.state import SqliteDatabase

SCHEMA = """
CREATE TABLE IF NOT EXISTS instance_reports (
    service TEXT NOT NULL,
    address TEXT NOT NULL,
    report BLOB NOT NULL,
    publish_time TEXT NOT NULL,
    PRIMARY KEY (service, address)
);
"""


def _published(row: sqlite3.Row) -> PublishedReport:
    return PublishedReport(row["service"], row["address"], health_pb2.HealthReport.FromString(row["report"]),
                           dt.datetime.fromisoformat(row["publish_time"]))


class SqliteInstanceReports:
    def __init__(self, database: SqliteDatabase) -> None:
        self._db = database

    async def publish(self, published: PublishedReport) -> None:
        row = (published.service, published.address, published.report.SerializeToString(),
               published.publish_time.astimezone(dt.UTC).isoformat())
        await self._db.run(lambda db: db.execute(
            "INSERT INTO instance_reports (service, address, report, publish_time) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (service, address) DO UPDATE SET report = excluded.report, publish_time = excluded.publish_time",
            row,
        ))

    async def recent(self, since: dt.datetime) -> list[PublishedReport]:
        # ISO times in UTC with the same offset sort as text.
        rows = await self._db.run(lambda db: db.execute(
            "SELECT * FROM instance_reports WHERE publish_time >= ? ORDER BY service, address",
            (since.astimezone(dt.UTC).isoformat(),),
        ).fetchall())
        return [_published(row) for row in rows]

    async def withdraw(self, service: str, address: str) -> None:
        await self._db.run(lambda db: db.execute(
            "DELETE FROM instance_reports WHERE service = ? AND address = ?", (service, address)))

    def close(self) -> None:
        self._db.close()
