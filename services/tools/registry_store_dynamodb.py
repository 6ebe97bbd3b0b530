"""The DynamoDB adapter of the registry store: registrations, the registry version, and idempotency records.

A put or delete of a registration and the version's increment are one TransactWriteItems, so an instance that sees
the version change also sees the registration (reads are strongly consistent). An idempotency record is written
once with a conditional PutItem (the first wins; an expired one may be replaced); DynamoDB's TTL removes records
some time after they expire, and `recall` ignores expired ones until then. A record's result is kept
zlib-compressed, as an item holds at most 400 KB."""

from __future__ import annotations

import builtins
import datetime as dt
import json
import random
import time
import zlib
from typing import Any

from botocore.exceptions import ClientError

from services.runtime import dynamodb
from services.runtime.clock import utcnow
from services.runtime.dynamodb import TTL, BlockingCalls, failed_condition, item, plain
from services.runtime.errors import ResourceExhausted, Unavailable
from services.tools.registry_store import IDEMPOTENCY_RETENTION, IdempotencyRecord, Registration

VERSION_ID = "registry"  # the one item of the version table
MAX_RESULT_BYTES = 350_000  # a compressed result beyond this does not fit in an item (400 KB with its other fields)
MAX_RETRIES = 20


def table_names(prefix: str) -> dict[str, str]:
    return {name: f"{prefix}-{name}" for name in ("tool-registrations", "tool-registry-version", "tool-idempotency")}


def table_definitions(prefix: str) -> list[dict[str, Any]]:
    names = table_names(prefix)
    return [
        {
            "TableName": names["tool-registrations"],
            "KeySchema": [{"AttributeName": "kind", "KeyType": "HASH"}, {"AttributeName": "name", "KeyType": "RANGE"}],
            "AttributeDefinitions": [{"AttributeName": "kind", "AttributeType": "S"},
                                     {"AttributeName": "name", "AttributeType": "S"}],
        },
        {
            "TableName": names["tool-registry-version"],
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        },
        {
            "TableName": names["tool-idempotency"],
            "KeySchema": [{"AttributeName": "caller", "KeyType": "HASH"},
                          {"AttributeName": "idempotency_key", "KeyType": "RANGE"}],
            "AttributeDefinitions": [{"AttributeName": "caller", "AttributeType": "S"},
                                     {"AttributeName": "idempotency_key", "AttributeType": "S"}],
            TTL: "expire_at",  # epoch seconds: creation plus the retention
        },
    ]


def create_tables(client: Any, prefix: str) -> list[str]:
    """The adapter's set-up: creates the tables that do not exist yet."""
    return dynamodb.create_tables(client, table_definitions(prefix))


def _reasons(error: ClientError) -> set[str]:
    """Why a transaction was cancelled, one code per item (`None` for items that were fine)."""
    if error.response["Error"]["Code"] == "TransactionConflictException":
        return {"TransactionConflict"}
    return {str(r.get("Code")) for r in error.response.get("CancellationReasons") or []}


def _registration(found: dict[str, Any]) -> Registration:
    row = plain(found)
    return Registration(row["kind"], row["name"], json.loads(row["body"]), dt.datetime.fromisoformat(row["update_time"]))


def _record(found: dict[str, Any]) -> IdempotencyRecord:
    row = plain(found)
    return IdempotencyRecord(
        caller=row["caller"], key=row["idempotency_key"], request_hash=row["request_hash"],
        result=json.loads(zlib.decompress(bytes(row["result"]))), duration_ms=int(row["duration_ms"]),
        created=dt.datetime.fromisoformat(row["create_time"]),
    )


class DynamoDBRegistryStore:
    def __init__(self, client: Any, prefix: str, retention: dt.timedelta = IDEMPOTENCY_RETENTION) -> None:
        self._calls = BlockingCalls(client, "tool-registry")
        self._tables = table_names(prefix)
        self._retention = retention

    def close(self) -> None:
        self._calls.close()

    def _bump(self) -> dict[str, Any]:
        """The version's increment, as one item of a transaction (ADD makes the item when it is missing)."""
        return {"Update": {
            "TableName": self._tables["tool-registry-version"], "Key": item({"id": VERSION_ID}),
            "UpdateExpression": "ADD version :one", "ExpressionAttributeValues": item({":one": 1}),
        }}

    def _transact(self, change: dict[str, Any]) -> bool:
        """`change` and the version's increment as one transaction; False when the change's condition failed.

        Two instances changing registrations at once both update the version item: DynamoDB cancels one of the
        transactions (TransactionConflict), which is tried again after a short random pause."""
        for attempt in range(MAX_RETRIES):
            try:
                self._calls.client.transact_write_items(TransactItems=[change, self._bump()])
                return True
            except ClientError as error:
                reasons = _reasons(error)
                if "TransactionConflict" in reasons:
                    time.sleep(random.uniform(0, min(0.5, 0.01 * 2 ** attempt)))
                    continue
                if failed_condition(error) and "ConditionalCheckFailed" in reasons:
                    return False
                raise
        raise Unavailable(f"the tool registry stayed contended for {MAX_RETRIES} tries; retry later",
                          reason="REGISTRY_CONTENDED")

    async def put(self, kind: str, name: str, body: dict[str, Any]) -> Registration:
        now = utcnow()
        text = json.dumps(body, sort_keys=True)
        put = {"Put": {
            "TableName": self._tables["tool-registrations"],
            "Item": item({"kind": kind, "name": name, "body": text, "update_time": now.isoformat()}),
        }}
        await self._calls.call(lambda: self._transact(put))
        return Registration(kind, name, json.loads(text), now)

    async def delete(self, kind: str, name: str) -> bool:
        delete = {"Delete": {
            "TableName": self._tables["tool-registrations"], "Key": item({"kind": kind, "name": name}),
            "ConditionExpression": "attribute_exists(kind)",
        }}
        return await self._calls.call(lambda: self._transact(delete))  # False: there was none, the version stays

    async def list(self, kind: str) -> builtins.list[Registration]:
        def read() -> builtins.list[Registration]:
            return [_registration(found) for found in self._calls.query(
                TableName=self._tables["tool-registrations"], ConsistentRead=True,
                KeyConditionExpression="kind = :k", ExpressionAttributeValues=item({":k": kind}))]

        return await self._calls.call(read)  # the sort key orders them by name

    async def version(self) -> int:
        found = await self._calls.call(lambda: self._calls.client.get_item(
            TableName=self._tables["tool-registry-version"], Key=item({"id": VERSION_ID}), ConsistentRead=True))
        return int(plain(found["Item"]).get("version", 0)) if "Item" in found else 0

    def _get_record(self, caller: str, key: str) -> dict[str, Any] | None:
        found = self._calls.client.get_item(TableName=self._tables["tool-idempotency"], ConsistentRead=True,
                                            Key=item({"caller": caller, "idempotency_key": key}))
        return found.get("Item")

    async def remember(self, record: IdempotencyRecord) -> IdempotencyRecord:
        result = zlib.compress(json.dumps(record.result).encode())
        if len(result) > MAX_RESULT_BYTES:
            raise ResourceExhausted(
                f"the result for idempotency key {record.key!r} is {len(result)} bytes compressed; at most "
                f"{MAX_RESULT_BYTES} can be kept", reason="IDEMPOTENT_RESULT_TOO_LARGE")
        expires = record.created + self._retention
        fresh = item({
            "caller": record.caller, "idempotency_key": record.key, "request_hash": record.request_hash,
            "result": result, "duration_ms": record.duration_ms, "create_time": record.created.isoformat(),
            "expire_at": int(expires.timestamp()) + 1,
        })

        def write() -> IdempotencyRecord:
            for _ in range(MAX_RETRIES):
                expired = (utcnow() - self._retention).isoformat()
                try:
                    self._calls.client.put_item(
                        TableName=self._tables["tool-idempotency"], Item=fresh,
                        ConditionExpression="attribute_not_exists(caller) OR create_time < :expired",
                        ExpressionAttributeValues=item({":expired": expired}))
                    return _record(fresh)
                except ClientError as error:
                    if not failed_condition(error):
                        raise
                earlier = self._get_record(record.caller, record.key)
                if earlier is not None:
                    return _record(earlier)  # the first record wins
                # The earlier record expired and was removed in between: try again.
            raise RuntimeError(f"idempotency key {record.key!r}: no outcome after {MAX_RETRIES} tries")

        return await self._calls.call(write)

    async def recall(self, caller: str, key: str) -> IdempotencyRecord | None:
        found = await self._calls.call(lambda: self._get_record(caller, key))
        if found is None:
            return None
        record = _record(found)
        return record if record.created >= utcnow() - self._retention else None

    async def ping(self) -> None:
        await self._calls.call(lambda: self._calls.client.describe_table(TableName=self._tables["tool-registrations"]))
