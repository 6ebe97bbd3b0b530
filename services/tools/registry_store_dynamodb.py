"""The DynamoDB adapter of the registry store: registrations, the registry version, and idempotency records.

A put or delete of a registration and the version's increment are one TransactWriteItems, so an instance that sees
the version change also sees the registration (reads are strongly consistent). An idempotency record is written
once with a conditional PutItem (the first wins; an expired one may be replaced); DynamoDB's TTL removes records
some time after they expire, and `recall` ignores expired ones until then.

A record's result is kept zlib-compressed. An item holds at most 400 KB, and a tool result may be far larger (a
file inventory of a big repository): a result beyond PART_BYTES is cut into parts in `{prefix}-tool-idempotency-parts`
under an id of the writer's own, written before the record that names them, so a record that can be read always
has its parts, and a writer that lost the race removes its own parts."""

from __future__ import annotations

import builtins
import datetime as dt
import json
import random
import time
import uuid
import zlib
from typing import Any

from botocore.exceptions import ClientError

from services.runtime import dynamodb
from services.runtime.clock import utcnow
from services.runtime.dynamodb import TTL, BlockingCalls, failed_condition, item, plain
from services.runtime.errors import Unavailable
from services.tools.registry_store import IDEMPOTENCY_RETENTION, IdempotencyRecord, Registration

VERSION_ID = "registry"  # the one item of the version table
PART_BYTES = 350_000  # compressed result bytes kept in one item (400 KB at most, with the other attributes)
PARTS_OUTLIVE = dt.timedelta(hours=1)  # parts expire after their record, whatever the clocks' skew
MAX_RETRIES = 20


def table_names(prefix: str) -> dict[str, str]:
    names = ("tool-registrations", "tool-registry-version", "tool-idempotency", "tool-idempotency-parts")
    return {name: f"{prefix}-{name}" for name in names}


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
        {  # the parts of a result too large for one item
            "TableName": names["tool-idempotency-parts"],
            "KeySchema": [{"AttributeName": "part_id", "KeyType": "HASH"}, {"AttributeName": "part", "KeyType": "RANGE"}],
            "AttributeDefinitions": [{"AttributeName": "part_id", "AttributeType": "S"},
                                     {"AttributeName": "part", "AttributeType": "N"}],
            TTL: "expire_at",
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


def _record(row: dict[str, Any], result: bytes) -> IdempotencyRecord:
    return IdempotencyRecord(
        caller=row["caller"], key=row["idempotency_key"], request_hash=row["request_hash"],
        result=json.loads(zlib.decompress(result)), duration_ms=int(row["duration_ms"]),
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

    def _get_record(self, caller: str, key: str) -> IdempotencyRecord | None:
        """The record of (caller, key) unless it has expired (TTL may remove it, and its parts, days later)."""
        found = self._calls.client.get_item(TableName=self._tables["tool-idempotency"], ConsistentRead=True,
                                            Key=item({"caller": caller, "idempotency_key": key})).get("Item")
        if found is None:
            return None
        row = plain(found)
        if dt.datetime.fromisoformat(row["create_time"]) < utcnow() - self._retention:
            return None
        if "result" in row:
            return _record(row, bytes(row["result"]))
        parts = [bytes(plain(p)["data"]) for p in self._calls.query(
            TableName=self._tables["tool-idempotency-parts"], ConsistentRead=True,
            KeyConditionExpression="part_id = :i", ExpressionAttributeValues=item({":i": row["part_id"]}))]
        if len(parts) != int(row["parts"]):
            raise RuntimeError(f"idempotency record {key!r}: {len(parts)} of {int(row['parts'])} result parts found")
        return _record(row, b"".join(parts))

    def _put_parts(self, result: bytes, expire_at: int) -> tuple[str, int]:
        part_id = uuid.uuid4().hex
        chunks = [result[n:n + PART_BYTES] for n in range(0, len(result), PART_BYTES)]
        for number, chunk in enumerate(chunks):
            self._calls.client.put_item(TableName=self._tables["tool-idempotency-parts"], Item=item(
                {"part_id": part_id, "part": number, "data": chunk, "expire_at": expire_at}))
        return part_id, len(chunks)

    def _delete_parts(self, part_id: str, count: int) -> None:
        for number in range(count):
            self._calls.client.delete_item(TableName=self._tables["tool-idempotency-parts"],
                                           Key=item({"part_id": part_id, "part": number}))

    async def remember(self, record: IdempotencyRecord) -> IdempotencyRecord:
        result = zlib.compress(json.dumps(record.result).encode())
        expires = record.created + self._retention
        fresh = {
            "caller": record.caller, "idempotency_key": record.key, "request_hash": record.request_hash,
            "duration_ms": record.duration_ms, "create_time": record.created.isoformat(),
            "expire_at": int(expires.timestamp()) + 1,
        }

        def write() -> IdempotencyRecord:
            part_id, count = "", 0
            if len(result) > PART_BYTES:
                part_id, count = self._put_parts(result, int((expires + PARTS_OUTLIVE).timestamp()))
                fresh.update(part_id=part_id, parts=count)
            else:
                fresh["result"] = result
            for _ in range(MAX_RETRIES):
                expired = (utcnow() - self._retention).isoformat()
                try:
                    self._calls.client.put_item(
                        TableName=self._tables["tool-idempotency"], Item=item(fresh),
                        ConditionExpression="attribute_not_exists(caller) OR create_time < :expired",
                        ExpressionAttributeValues=item({":expired": expired}))
                    return _record(fresh, result)
                except ClientError as error:
                    if not failed_condition(error):
                        raise
                earlier = self._get_record(record.caller, record.key)
                if earlier is not None:  # the first record wins; this writer's parts are not needed
                    self._delete_parts(part_id, count)
                    return earlier
                # The earlier record expired (or was removed) in between: try again.
            raise RuntimeError(f"idempotency key {record.key!r}: no outcome after {MAX_RETRIES} tries")

        return await self._calls.call(write)

    async def recall(self, caller: str, key: str) -> IdempotencyRecord | None:
        return await self._calls.call(lambda: self._get_record(caller, key))

    async def ping(self) -> None:
        await self._calls.call(lambda: self._calls.client.describe_table(TableName=self._tables["tool-registrations"]))
