"""Each instance's health report, published under its own address where every gateway can read it.

The gateway's system health lists every instance with its own report. Asking each instance for it needs a route
to that instance: on one machine Envoy's "instance" route reaches loopback hosts, but in containers (compose, ECS)
the gateway has neither a route to each task nor Envoy's admin interface. So every instance publishes its report
every few seconds into a small registry in the state store (SQLite in the shared data folder, or a DynamoDB
table), and the gateway reads the fresh ones; an instance that stops cleanly withdraws its entry, one that dies
stops being fresh."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mcpmesh.health.v1 import health_pb2

from services.runtime.clock import utcnow
from services.runtime.state import SqliteDatabase, StateUrl

log = logging.getLogger("mcpmesh.instance_reports")

PUBLISH_SECONDS = 5.0  # how often an instance publishes its report
FRESH_SECONDS = 3 * PUBLISH_SECONDS  # a report older than this belongs to an instance that is gone
REGISTRY = "instances"  # the state URL's name for the registry: data_dir/instances.db by default


@dataclass(frozen=True)
class PublishedReport:
    """One instance's last report: which service, where it serves ("host:port"), when it was published."""

    service: str
    address: str
    report: health_pb2.HealthReport
    publish_time: dt.datetime


class InstanceReports(Protocol):
    """The registry port: one entry per (service, address), replaced by each publication."""

    async def publish(self, published: PublishedReport) -> None: ...

    async def recent(self, since: dt.datetime) -> list[PublishedReport]:
        """Entries published at or after `since`, by service then address."""
        ...

    async def withdraw(self, service: str, address: str) -> None: ...

    def close(self) -> None: ...


async def open_instance_reports(state_url: str, data_dir: Path) -> InstanceReports:
    """The registry for the configured state URL: every service of a deployment opens the same one."""
    url = StateUrl.of_service(state_url, data_dir, REGISTRY)
    if url.scheme == "sqlite" and url.path is not None:
        from services.runtime.instance_reports_sqlite import SCHEMA, SqliteInstanceReports

        return SqliteInstanceReports(SqliteDatabase(url.path, SCHEMA))
    if url.scheme == "dynamodb":
        from services.runtime import instance_reports_dynamodb
        from services.runtime.dynamodb import dynamodb_client

        client = dynamodb_client(url)
        await asyncio.to_thread(instance_reports_dynamodb.create_tables, client, url.table_prefix)
        return instance_reports_dynamodb.DynamoDBInstanceReports(client, url.table_prefix)
    raise SystemExit(f"no instance report registry for state URL scheme {url.scheme!r} (have: sqlite, dynamodb)")


def advertised_address(host: str, port: int) -> str:
    """Where others see this instance: the bound host, or for a wildcard bind (containers) this host's own
    address, as Envoy's DNS clusters and Cloud Map list it."""
    if host not in ("0.0.0.0", "::", ""):
        return f"{host}:{port}"
    name = socket.gethostname()
    try:
        return f"{socket.gethostbyname(name)}:{port}"
    except OSError:
        return f"{name}:{port}"


class Publisher:
    """Publishes a report at most every `every` seconds; a registry that fails is logged once per outage and
    never stops the caller (the health drive loop)."""

    def __init__(self, reports: InstanceReports, service: str, address: str, every: float = PUBLISH_SECONDS,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.reports = reports
        self.service = service
        self.address = address
        self._every = every
        self._clock = clock
        self._last = float("-inf")
        self._failing = False

    async def __call__(self, report: health_pb2.HealthReport) -> None:
        if time.monotonic() - self._last < self._every:
            return
        try:
            await self.reports.publish(PublishedReport(self.service, self.address, report, self._clock()))
        except Exception as error:  # the registry is for the gateway's view; serving goes on without it
            if not self._failing:
                log.warning("cannot publish the health report", extra={"error": f"{type(error).__name__}: {error}"})
            self._failing = True
            return
        self._last = time.monotonic()
        if self._failing:
            log.info("publishing the health report again")
        self._failing = False

    async def withdraw(self) -> None:
        try:
            await self.reports.withdraw(self.service, self.address)
        except Exception as error:  # stopping goes on; the entry ages out
            log.warning("cannot withdraw the health report", extra={"error": f"{type(error).__name__}: {error}"})
