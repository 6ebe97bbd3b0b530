"""What every DynamoDB adapter shares: the client for a state URL, table set-up, item (de)serialisation, and
running boto3's blocking calls off the event loop.

Each adapter owns its tables, named `{prefix}-{name}` after the state URL's prefix (`dynamodb://PREFIX`), and
publishes their definitions; `create_tables` is the adapter's set-up, run at start-up (it creates only what is
missing, so every instance may run it) and kept in step with deploy/cloudformation by a test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from services.runtime.state import StateUrl

T = TypeVar("T")
TTL = "TimeToLiveAttribute"  # a key of a table definition here (not of CreateTable): the table's expiry attribute
_to = TypeSerializer()
_from = TypeDeserializer()


def dynamodb_client(url: StateUrl) -> Any:
    """A boto3 DynamoDB client for the state URL's endpoint and region (the environment's when empty)."""
    return boto3.client("dynamodb", endpoint_url=url.endpoint or None, region_name=url.region or None)


def index(name: str, key: str, sort: str) -> dict[str, Any]:
    """A global secondary index projecting every attribute."""
    return {
        "IndexName": name,
        "KeySchema": [{"AttributeName": key, "KeyType": "HASH"}, {"AttributeName": sort, "KeyType": "RANGE"}],
        "Projection": {"ProjectionType": "ALL"},
    }


def create_tables(client: Any, definitions: Sequence[dict[str, Any]]) -> list[str]:
    """Creates the tables that do not exist yet (on-demand capacity), waits until they are active, and returns
    the names it created. Another instance creating the same table at the same moment is fine."""
    made = []
    for definition in definitions:
        table = {k: v for k, v in definition.items() if k != TTL}
        name = table["TableName"]
        try:
            if client.describe_table(TableName=name)["Table"]["TableStatus"] != "ACTIVE":  # another instance made it just now
                client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
            continue
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
        try:
            client.create_table(BillingMode="PAY_PER_REQUEST", **table)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceInUseException":
                raise
            # Another instance is creating it at this moment; it also sets the expiry.
            client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
            continue
        client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        if TTL in definition:
            _expire_by(client, name, definition[TTL])
        made.append(name)
    return made


def _expire_by(client: Any, table: str, attribute: str) -> None:
    try:
        client.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute})
    except ClientError as error:  # set already (a start-up that stopped between creating the table and this)
        if "already enabled" not in error.response["Error"].get("Message", ""):
            raise


def item(values: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item (or key, or expression values) from plain values; None values are left out."""
    return {k: _to.serialize(v) for k, v in values.items() if v is not None}


def plain(found: dict[str, Any]) -> dict[str, Any]:
    """Plain values from a DynamoDB item (numbers come back as Decimal)."""
    return {k: _from.deserialize(v) for k, v in found.items()}


def failed_condition(error: ClientError) -> bool:
    """A conditional write or a transaction refused because its condition did not hold."""
    return error.response["Error"]["Code"] in {"ConditionalCheckFailedException", "TransactionCanceledException"}


def batch_write(client: Any, table: str, requests: Sequence[dict[str, Any]], max_rounds: int = 20) -> None:
    """Puts and deletes (`{"PutRequest": ...}` / `{"DeleteRequest": ...}`) on one table, 25 per BatchWriteItem, until
    every one is done: the unprocessed ones (throttling) are sent again after a growing pause."""
    for start in range(0, len(requests), 25):
        pending: dict[str, Any] = {table: list(requests[start:start + 25])}
        for round_ in range(max_rounds):
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not pending:
                break
            time.sleep(min(0.05 * 2**round_, 2.0))
        else:
            raise RuntimeError(f"{table}: {len(pending[table])} writes still unprocessed after {max_rounds} rounds")


class BlockingCalls:
    """boto3 is blocking: an adapter's calls run on its own worker threads, so the event loop never waits on the
    network."""

    def __init__(self, client: Any, name: str, workers: int = 8) -> None:
        self.client = client
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"dynamodb-{name}")

    async def call(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    def query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every item of a query, page after page (call it inside `call`)."""
        for page in self.client.get_paginator("query").paginate(**kwargs):
            yield from page.get("Items", [])

    def close(self) -> None:
        self._executor.shutdown(wait=True)
