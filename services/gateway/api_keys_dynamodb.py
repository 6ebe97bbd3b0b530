"""The DynamoDB adapter of the API key store: one table, `{prefix}-api-keys`, keyed by the key id.

Reads are strongly consistent, so a key works as soon as it is made and stops as soon as it is revoked. Revoking
is one conditional UpdateItem. Listing reads the whole table with a consistent Scan and orders it like the SQLite
adapter (newest first, then id): keys are few, and an index could only be read eventually consistently."""

from __future__ import annotations

import builtins
import datetime as dt
from typing import Any

from botocore.exceptions import ClientError

from services.gateway.api_keys import ApiKey, StoredKey
from services.runtime import dynamodb
from services.runtime.dynamodb import BlockingCalls, failed_condition, item, plain
from services.runtime.errors import AlreadyExists, FailedPrecondition, NotFound


def table_names(prefix: str) -> dict[str, str]:
    return {"api-keys": f"{prefix}-api-keys"}


def table_definitions(prefix: str) -> list[dict[str, Any]]:
    return [{
        "TableName": table_names(prefix)["api-keys"],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
    }]


def create_tables(client: Any, prefix: str) -> list[str]:
    """The adapter's set-up: creates the table when it does not exist yet."""
    return dynamodb.create_tables(client, table_definitions(prefix))


def _time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _stored(found: dict[str, Any]) -> StoredKey:
    row = plain(found)
    key = ApiKey(
        row["id"], row["display_name"], row["role"], dt.datetime.fromisoformat(row["create_time"]),
        revoked=_time(row.get("revoke_time")), expires=_time(row.get("expire_time")),
        scopes=tuple(row.get("scopes", ())),
    )
    return StoredKey(key, row["secret_hash"])


def _not_found(key_id: str) -> NotFound:
    return NotFound(f"API key {key_id!r} does not exist", reason="API_KEY_NOT_FOUND")


class DynamoDBApiKeyStore:
    def __init__(self, client: Any, prefix: str) -> None:
        self._calls = BlockingCalls(client, "api-keys")
        self._table = table_names(prefix)["api-keys"]

    def close(self) -> None:
        self._calls.close()

    async def insert(self, key: ApiKey, secret_hash: str) -> None:
        record = item({
            "id": key.id, "display_name": key.display_name, "role": key.role, "secret_hash": secret_hash,
            "create_time": key.created.isoformat(), "expire_time": key.expires.isoformat() if key.expires else None,
            "scopes": list(key.scopes),
        })

        def write() -> None:
            try:
                self._calls.client.put_item(TableName=self._table, Item=record,
                                            ConditionExpression="attribute_not_exists(id)")
            except ClientError as error:
                if failed_condition(error):
                    raise AlreadyExists(f"API key {key.id!r} already exists", reason="API_KEY_EXISTS") from None
                raise

        await self._calls.call(write)

    def _get(self, key_id: str) -> dict[str, Any] | None:
        found = self._calls.client.get_item(TableName=self._table, Key=item({"id": key_id}), ConsistentRead=True)
        return found.get("Item")

    async def get(self, key_id: str) -> StoredKey | None:
        found = await self._calls.call(lambda: self._get(key_id))
        return None if found is None else _stored(found)

    async def list(self, offset: int, limit: int) -> tuple[builtins.list[ApiKey], bool]:
        def scan() -> builtins.list[ApiKey]:
            pages = self._calls.client.get_paginator("scan").paginate(TableName=self._table, ConsistentRead=True)
            return [_stored(found).key for page in pages for found in page.get("Items", [])]

        keys = await self._calls.call(scan)
        keys.sort(key=lambda k: k.id)
        keys.sort(key=lambda k: k.created, reverse=True)  # stable: newest first, then id, as the SQLite adapter
        rows = keys[offset:offset + limit + 1]
        return rows[:limit], len(rows) > limit

    async def revoke(self, key_id: str, when: dt.datetime) -> ApiKey:
        def write() -> ApiKey:
            try:
                updated = self._calls.client.update_item(
                    TableName=self._table, Key=item({"id": key_id}),
                    UpdateExpression="SET revoke_time = :r",
                    ConditionExpression="attribute_exists(id) AND attribute_not_exists(revoke_time)",
                    ExpressionAttributeValues=item({":r": when.isoformat()}), ReturnValues="ALL_NEW",
                )
            except ClientError as error:
                if not failed_condition(error):
                    raise
                if self._get(key_id) is None:
                    raise _not_found(key_id) from None
                raise FailedPrecondition(f"API key {key_id!r} is already revoked", reason="API_KEY_REVOKED") from None
            return _stored(updated["Attributes"]).key

        return await self._calls.call(write)

    async def ping(self) -> None:
        await self._calls.call(lambda: self._calls.client.describe_table(TableName=self._table))
