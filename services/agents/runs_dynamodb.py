"""The DynamoDB adapter of the agent run store: a run item, a key item per idempotency key, and the findings in pages.

A run's findings (and its body, when it is too big for one item) live in a partition of their own named after the
run and a generation; the run item names the generation it shows. `save` writes the new generation first and then
switches the run item to it with one conditional update, so a reader sees the old findings or the new ones, never a
mix, and the old generation is removed afterwards."""

from __future__ import annotations

import json
import uuid
import zlib
from typing import Any

from botocore.exceptions import ClientError

from services.agents.base import Finding
from services.agents.runs import AgentRun, finding_from_dict, finding_to_dict, run_from_json, run_to_json
from services.runtime import dynamodb
from services.runtime.dynamodb import BlockingCalls, batch_write, failed_condition, item, plain
from services.runtime.errors import AlreadyExists, NotFound

MAX_RETRIES = 50
PAGE_FINDINGS = 100  # findings per page item: a page's first index is its sort key, so one query finds any slice
PAGE_BYTES = 200_000  # a page is cut earlier when its JSON grows past this (items hold at most 400 KB)
BODY_BYTES = 300_000  # a compressed run body above this is stored in chunks beside the findings


def table_names(prefix: str) -> dict[str, str]:
    return {name: f"{prefix}-{name}" for name in ("agent-runs", "agent-run-keys", "agent-run-parts")}


def table_definitions(prefix: str) -> list[dict[str, Any]]:
    names = table_names(prefix)
    return [
        {
            "TableName": names["agent-runs"],
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        },
        {  # one item per (caller, idempotency key): its conditional put is what makes a key taken once
            "TableName": names["agent-run-keys"],
            "KeySchema": [{"AttributeName": "caller_key", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "caller_key", "AttributeType": "S"}],
        },
        {  # "{run}/{generation}/findings" pages by first index; "{run}/{generation}/body" chunks by number
            "TableName": names["agent-run-parts"],
            "KeySchema": [{"AttributeName": "part", "KeyType": "HASH"}, {"AttributeName": "seq", "KeyType": "RANGE"}],
            "AttributeDefinitions": [{"AttributeName": "part", "AttributeType": "S"}, {"AttributeName": "seq", "AttributeType": "N"}],
        },
    ]


def create_tables(client: Any, prefix: str) -> list[str]:
    """The adapter's set-up: creates the tables that do not exist yet."""
    return dynamodb.create_tables(client, table_definitions(prefix))


def _missing(run_id: str) -> NotFound:
    return NotFound(f"agent run {run_id!r} does not exist", reason="AGENT_RUN_NOT_FOUND")


def _caller_key(caller: str, key: str) -> str:
    return json.dumps([caller, key])


def _pages(findings: list[Finding]) -> list[tuple[int, list[dict[str, Any]]]]:
    """(first index, findings) of each page item."""
    pages: list[tuple[int, list[dict[str, Any]]]] = []
    size = 0
    for index, finding in enumerate(findings):
        body = finding_to_dict(finding)
        length = len(json.dumps(body))
        if not pages or len(pages[-1][1]) >= PAGE_FINDINGS or size + length > PAGE_BYTES:
            pages.append((index, []))
            size = 0
        pages[-1][1].append(body)
        size += length
    return pages


class DynamoDBRunStore:
    def __init__(self, client: Any, prefix: str) -> None:
        self._tables = table_names(prefix)
        self._calls = BlockingCalls(client, "agent-runs")
        self._client = client

    def close(self) -> None:
        self._calls.close()

    def _write_parts(self, run: AgentRun, generation: str) -> dict[str, Any]:
        """Writes the run's findings (and its body when big) under `generation`; returns the run item's attributes."""
        parts = self._tables["agent-run-parts"]
        puts = [{"PutRequest": {"Item": item({"part": f"{run.id}/{generation}/findings", "seq": first, "count": len(page),
                                              "body": zlib.compress(json.dumps(page).encode())})}}
                for first, page in _pages(run.result.findings)]
        body = zlib.compress(run_to_json(run).encode())
        values: dict[str, Any] = {"generation": generation, "finding_count": len(run.result.findings)}
        if len(body) <= BODY_BYTES:
            values["body"] = body
        else:
            chunks = [body[i:i + BODY_BYTES] for i in range(0, len(body), BODY_BYTES)]
            puts += [{"PutRequest": {"Item": item({"part": f"{run.id}/{generation}/body", "seq": n, "chunk": chunk})}}
                     for n, chunk in enumerate(chunks)]
            values["body_chunks"] = len(chunks)
        batch_write(self._client, parts, puts)
        return values

    def _drop_parts(self, run_id: str, generation: str) -> None:
        parts = self._tables["agent-run-parts"]
        keys = [key for kind in ("findings", "body") for key in self._calls.query(
            TableName=parts, KeyConditionExpression="part = :p", ProjectionExpression="part, seq", ConsistentRead=True,
            ExpressionAttributeValues=item({":p": f"{run_id}/{generation}/{kind}"}))]
        batch_write(self._client, parts, [{"DeleteRequest": {"Key": key}} for key in keys])

    async def create(self, run: AgentRun) -> AgentRun:
        if run.idempotency_key and (earlier := await self.find_by_key(run.caller, run.idempotency_key)) is not None:
            return earlier

        def write() -> AgentRun:
            generation = uuid.uuid4().hex
            values = self._write_parts(run, generation)
            put = {"TableName": self._tables["agent-runs"], "Item": item({"id": run.id, **values}),
                   "ConditionExpression": "attribute_not_exists(id)"}
            writes: list[dict[str, Any]] = [{"Put": put}]
            if run.idempotency_key:
                writes.append({"Put": {"TableName": self._tables["agent-run-keys"],
                                       "Item": item({"caller_key": _caller_key(run.caller, run.idempotency_key), "run_id": run.id}),
                                       "ConditionExpression": "attribute_not_exists(caller_key)"}})
            # The parts are dropped only when the transaction surely failed: after any other error it may have
            # been written, and parts left over are only unread items.
            for _ in range(MAX_RETRIES):
                try:
                    self._client.transact_write_items(TransactItems=writes)
                    return run
                except ClientError as error:
                    if not failed_condition(error):
                        raise
                    reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
                    if reasons and reasons[0] == "ConditionalCheckFailed":
                        self._drop_parts(run.id, generation)
                        raise AlreadyExists(f"agent run {run.id!r} already exists", reason="AGENT_RUN_EXISTS") from None
                # The key is taken, or a racing create holding it is in flight: the run that holds it is the answer.
                earlier = self._by_key(run.caller, run.idempotency_key) if run.idempotency_key else None
                if earlier is not None:
                    self._drop_parts(run.id, generation)
                    return earlier
            self._drop_parts(run.id, generation)
            raise RuntimeError(f"agent run {run.id}: no outcome after {MAX_RETRIES} tries")

        return await self._calls.call(write)

    async def save(self, run: AgentRun) -> None:
        def write() -> None:
            generation = uuid.uuid4().hex
            values = self._write_parts(run, generation)
            sets = ["generation = :generation", "finding_count = :finding_count"]
            sets.append("body = :body" if "body" in values else "body_chunks = :body_chunks")
            removes = " REMOVE body_chunks" if "body" in values else " REMOVE body"
            try:
                old = self._client.update_item(
                    TableName=self._tables["agent-runs"], Key=item({"id": run.id}),
                    UpdateExpression="SET " + ", ".join(sets) + removes, ConditionExpression="attribute_exists(id)",
                    ExpressionAttributeValues=item({f":{k}": v for k, v in values.items()}), ReturnValues="UPDATED_OLD",
                )
            except ClientError as error:
                if failed_condition(error):  # no such run; after another error the update may have been written
                    self._drop_parts(run.id, generation)
                    raise _missing(run.id) from None
                raise
            # Readers now see the new generation; the one it replaced goes (unless botocore sent the update again after
            # a lost answer, and the "old" generation is this one).
            replaced = plain(old["Attributes"])["generation"]
            if replaced != generation:
                self._drop_parts(run.id, replaced)

        await self._calls.call(write)

    def _record(self, run_id: str) -> dict[str, Any] | None:
        found = self._client.get_item(TableName=self._tables["agent-runs"], Key=item({"id": run_id}), ConsistentRead=True)
        return plain(found["Item"]) if "Item" in found else None

    def _get(self, run_id: str) -> AgentRun | None:
        for _ in range(MAX_RETRIES):
            record = self._record(run_id)
            if record is None:
                return None
            if "body" in record:
                return run_from_json(zlib.decompress(bytes(record["body"])).decode())
            chunks = [bytes(plain(c)["chunk"]) for c in self._calls.query(
                TableName=self._tables["agent-run-parts"], KeyConditionExpression="part = :p", ConsistentRead=True,
                ExpressionAttributeValues=item({":p": f"{run_id}/{record['generation']}/body"}))]
            if len(chunks) == int(record["body_chunks"]):
                return run_from_json(zlib.decompress(b"".join(chunks)).decode())
            # A save replaced this generation while it was read: read the new one.
        raise RuntimeError(f"agent run {run_id}: no stable read after {MAX_RETRIES} tries")

    async def get(self, run_id: str) -> AgentRun:
        run = await self._calls.call(lambda: self._get(run_id))
        if run is None:
            raise _missing(run_id)
        return run

    async def findings(self, run_id: str, offset: int, limit: int) -> tuple[list[Finding], int]:
        def read() -> tuple[list[Finding], int]:
            for _ in range(MAX_RETRIES):
                record = self._record(run_id)
                if record is None:
                    raise _missing(run_id)
                total = int(record["finding_count"])
                wanted = max(0, min(limit, total - offset))
                if wanted == 0:
                    return [], total
                found: list[Finding] = []
                # Pages hold at most PAGE_FINDINGS each, so every page overlapping the slice starts in this range.
                for page in map(plain, self._calls.query(
                    TableName=self._tables["agent-run-parts"], ConsistentRead=True,
                    KeyConditionExpression="part = :p AND seq BETWEEN :lo AND :hi",
                    ExpressionAttributeValues=item({":p": f"{run_id}/{record['generation']}/findings",
                                                    ":lo": max(0, offset - PAGE_FINDINGS + 1), ":hi": offset + wanted - 1}),
                )):
                    first = int(page["seq"])
                    bodies = json.loads(zlib.decompress(bytes(page["body"])))
                    for index, body in enumerate(bodies, start=first):
                        if offset <= index < offset + wanted:
                            found.append(finding_from_dict(body))
                if len(found) == wanted:
                    return found, total
                # A save replaced this generation while it was read: read the new one.
            raise RuntimeError(f"agent run {run_id}: no stable read after {MAX_RETRIES} tries")

        return await self._calls.call(read)

    def _by_key(self, caller: str, key: str) -> AgentRun | None:
        found = self._client.get_item(TableName=self._tables["agent-run-keys"], ConsistentRead=True,
                                      Key=item({"caller_key": _caller_key(caller, key)}))
        return self._get(plain(found["Item"])["run_id"]) if "Item" in found else None

    async def find_by_key(self, caller: str, idempotency_key: str) -> AgentRun | None:
        return await self._calls.call(lambda: self._by_key(caller, idempotency_key))

    async def ping(self) -> None:
        await self._calls.call(lambda: self._client.describe_table(TableName=self._tables["agent-runs"]))
