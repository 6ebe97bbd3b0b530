"""The DynamoDB adapter of the instance report registry: one table, `{prefix}-instance-reports`, one item per
instance, keyed by "service/address". Entries expire by TTL an hour after their last publication, so the table
holds no more than the instances of the last hour; reads are a consistent Scan (a few items per instance)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from mcpmesh.health.v1 import health_pb2

from services.runtime import dynamodb
from services.runtime.dynamodb import TTL, BlockingCalls, item, plain
from services.runtime.instance_reports import PublishedReport

EXPIRE_SECONDS = 3600


def table_names(prefix: str) -> dict[str, str]:
    return {"instance-reports": f"{prefix}-instance-reports"}


def table_definitions(prefix: str) -> list[dict[str, Any]]:
    return [{
        "TableName": table_names(prefix)["instance-reports"],
        "KeySchema": [{"AttributeName": "instance", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "instance", "AttributeType": "S"}],
        TTL: "ttl",
    }]


def create_tables(client: Any, prefix: str) -> list[str]:
    """The adapter's set-up: creates the table when it does not exist yet."""
    return dynamodb.create_tables(client, table_definitions(prefix))


def _published(found: dict[str, Any]) -> PublishedReport:
    row = plain(found)
    return PublishedReport(row["service"], row["address"], health_pb2.HealthReport.FromString(bytes(row["report"])),
                           dt.datetime.fromisoformat(row["publish_time"]))


class DynamoDBInstanceReports:
    def __init__(self, client: Any, prefix: str) -> None:
        self._calls = BlockingCalls(client, "instance-reports", workers=2)
        self._table = table_names(prefix)["instance-reports"]

    async def publish(self, published: PublishedReport) -> None:
        when = published.publish_time.astimezone(dt.UTC)
        entry = item({
            "instance": f"{published.service}/{published.address}", "service": published.service,
            "address": published.address, "report": published.report.SerializeToString(),
            "publish_time": when.isoformat(), "ttl": int(when.timestamp()) + EXPIRE_SECONDS,
        })
        await self._calls.call(lambda: self._calls.client.put_item(TableName=self._table, Item=entry))

    async def recent(self, since: dt.datetime) -> list[PublishedReport]:
        def scan() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = []
            for page in self._calls.client.get_paginator("scan").paginate(TableName=self._table, ConsistentRead=True):
                found += page.get("Items", [])
            return found

        floor = since.astimezone(dt.UTC)
        entries = [_published(found) for found in await self._calls.call(scan)]
        return sorted((e for e in entries if e.publish_time >= floor), key=lambda e: (e.service, e.address))

    async def withdraw(self, service: str, address: str) -> None:
        key = item({"instance": f"{service}/{address}"})
        await self._calls.call(lambda: self._calls.client.delete_item(TableName=self._table, Key=key))

    def close(self) -> None:
        self._calls.close()
