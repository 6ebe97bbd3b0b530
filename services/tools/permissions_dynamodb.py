"""The DynamoDB adapter of the tool permission store: one table, `{prefix}-tool-permissions`, keyed by
(principal, tool).

The key leads with the principal because `held_by` runs before every tool execution: it is one strongly
consistent Query per principal, so a grant or a revoke counts at once. Listing (`page`, an admin's call) reads the
table with a consistent Scan and orders it by (tool, principal) like the SQLite adapter: grants are few, and an
index by tool could only be read eventually consistently."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from services.runtime import dynamodb
from services.runtime.clock import utcnow
from services.runtime.dynamodb import BlockingCalls, failed_condition, item, plain
from services.runtime.errors import NotFound
from services.tools.permissions import Permission, check_grant


def table_names(prefix: str) -> dict[str, str]:
    return {"tool-permissions": f"{prefix}-tool-permissions"}


def table_definitions(prefix: str) -> list[dict[str, Any]]:
    return [{
        "TableName": table_names(prefix)["tool-permissions"],
        "KeySchema": [{"AttributeName": "principal", "KeyType": "HASH"}, {"AttributeName": "tool", "KeyType": "RANGE"}],
        "AttributeDefinitions": [{"AttributeName": "principal", "AttributeType": "S"},
                                 {"AttributeName": "tool", "AttributeType": "S"}],
    }]


def create_tables(client: Any, prefix: str) -> list[str]:
    """The adapter's set-up: creates the table when it does not exist yet."""
    return dynamodb.create_tables(client, table_definitions(prefix))


def _permission(found: dict[str, Any]) -> Permission:
    row = plain(found)
    return Permission(row["tool"], row["principal"], dt.datetime.fromisoformat(row["create_time"]))


def _order(permissions: list[Permission]) -> list[Permission]:
    return sorted(permissions, key=lambda p: (p.tool, p.principal))


class DynamoDBPermissionStore:
    def __init__(self, client: Any, prefix: str) -> None:
        self._calls = BlockingCalls(client, "tool-permissions")
        self._table = table_names(prefix)["tool-permissions"]

    def close(self) -> None:
        self._calls.close()

    async def grant(self, tool: str, principal: str) -> Permission:
        check_grant(tool, principal, "permission.")
        fresh = item({"principal": principal, "tool": tool, "create_time": utcnow().isoformat()})

        def write() -> Permission:
            try:
                self._calls.client.put_item(TableName=self._table, Item=fresh,
                                            ConditionExpression="attribute_not_exists(principal)")
                return _permission(fresh)
            except ClientError as error:
                if not failed_condition(error):
                    raise
            # Granted before (or by a racing caller): the first grant stands. Grants are only deleted by a revoke,
            # so a grant that vanished in between is granted anew.
            found = self._calls.client.get_item(TableName=self._table, ConsistentRead=True,
                                                Key=item({"principal": principal, "tool": tool})).get("Item")
            return _permission(found) if found is not None else write()

        return await self._calls.call(write)

    async def revoke(self, tool: str, principal: str) -> None:
        check_grant(tool, principal, "")

        def delete() -> bool:
            try:
                self._calls.client.delete_item(TableName=self._table, Key=item({"principal": principal, "tool": tool}),
                                               ConditionExpression="attribute_exists(principal)")
                return True
            except ClientError as error:
                if failed_condition(error):
                    return False
                raise

        if not await self._calls.call(delete):
            raise NotFound(f"no permission on {tool!r} for {principal!r}", reason="PERMISSION_NOT_FOUND")

    async def page(self, tool: str, offset: int, limit: int) -> tuple[list[Permission], bool]:
        def scan() -> list[Permission]:
            only: dict[str, Any] = {}
            if tool:
                only = {"FilterExpression": "tool = :t", "ExpressionAttributeValues": item({":t": tool})}
            pages = self._calls.client.get_paginator("scan").paginate(TableName=self._table, ConsistentRead=True, **only)
            return [_permission(found) for page in pages for found in page.get("Items", [])]

        rows = _order(await self._calls.call(scan))[offset:offset + limit + 1]
        return rows[:limit], len(rows) > limit

    async def held_by(self, principals: Sequence[str]) -> list[Permission]:
        wanted = sorted(set(principals))

        def read() -> list[Permission]:
            return [_permission(found) for principal in wanted for found in self._calls.query(
                TableName=self._table, ConsistentRead=True, KeyConditionExpression="principal = :p",
                ExpressionAttributeValues=item({":p": principal}))]

        return _order(await self._calls.call(read)) if wanted else []

    async def ping(self) -> None:
        await self._calls.call(lambda: self._calls.client.describe_table(TableName=self._table))
