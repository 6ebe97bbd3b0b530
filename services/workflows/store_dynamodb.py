"""The production WorkflowStore: DynamoDB tables for workflows (with their run leases), events and request ids.

Every write of a state change and its event is one TransactWriteItems, conditioned on the sequence the writer
read, so two writers never take the same sequence number. `create_tables` is the adapter's set-up: it creates
what is missing (also the LangGraph checkpoint table) and is run at start-up and by `python -m` on this module."""

from __future__ import annotations

import builtins
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from services.runtime import dynamodb
from services.runtime.clock import utcnow
from services.runtime.dynamodb import TTL, BlockingCalls, dynamodb_client, failed_condition, index
from services.runtime.dynamodb import item as _item
from services.runtime.dynamodb import plain as _plain
from services.runtime.identity import ANONYMOUS, Identity, identity_of_text, identity_text
from services.runtime.state import StateUrl
from services.workflows.store import (
    TERMINAL,
    Draft,
    Event,
    LeaseState,
    RunStart,
    Step,
    Workflow,
    not_found,
    opening_events,
)

UNFINISHED = ("pending", "running")
FEED = "all"  # the one partition of the by_create and by_update indexes: workflows are few next to their events
MAX_RETRIES = 50


def table_names(prefix: str) -> dict[str, str]:
    return {name: f"{prefix}-{name}" for name in ("workflows", "workflow-events", "workflow-requests", "checkpoints")}


def table_definitions(prefix: str) -> list[dict[str, Any]]:
    names = table_names(prefix)
    strings = ("id", "state", "create_time", "update_time", "feed")
    return [
        {
            "TableName": names["workflows"],
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in strings],
            "GlobalSecondaryIndexes": [
                index("by_state", "state", "create_time"),
                index("by_create", "feed", "create_time"),
                index("by_update", "feed", "update_time"),
            ],
        },
        {
            "TableName": names["workflow-events"],
            "KeySchema": [{"AttributeName": "workflow_id", "KeyType": "HASH"}, {"AttributeName": "sequence", "KeyType": "RANGE"}],
            "AttributeDefinitions": [{"AttributeName": "workflow_id", "AttributeType": "S"},
                                     {"AttributeName": "sequence", "AttributeType": "N"}],
        },
        {
            "TableName": names["workflow-requests"],
            "KeySchema": [{"AttributeName": "request_id", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "request_id", "AttributeType": "S"}],
        },
        {  # what langgraph-checkpoint-aws's DynamoDBSaver reads and writes; it does not create it
            "TableName": names["checkpoints"],
            "KeySchema": [{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
            "AttributeDefinitions": [{"AttributeName": "PK", "AttributeType": "S"}, {"AttributeName": "SK", "AttributeType": "S"}],
            TTL: "ttl",
        },
    ]


def create_tables(client: Any, prefix: str) -> list[str]:
    """The adapter's set-up: creates the tables that do not exist yet (also DynamoDBSaver's checkpoint table)."""
    return dynamodb.create_tables(client, table_definitions(prefix))


def whole_task_writes(saver: Any) -> Any:
    """Makes DynamoDBSaver store each task's writes whole or not at all; returns the saver.

    Its own put_writes stores them one at a time, each as its metadata item and then its payload, and skips a write
    whose payload is missing when it reads them back. An instance killed in between leaves part of a task's writes:
    LangGraph then counts the task done and applies only those, so a join after it (the merge of two parallel
    steps) never fires and the resumed run ends without it. Here the payloads go first (nothing reads a payload
    without its metadata), then the metadata items in one transaction (up to 100 writes per task)."""
    from langgraph_checkpoint_aws.checkpoint.dynamodb.unified_repository import WRITES_IDX_MAP  # type: ignore[import-untyped]

    repo = saver.repo

    def put_writes(thread_id: str, checkpoint_ns: str, checkpoint_id: str, writes: Any, task_id: str,
                   task_path: str = "") -> None:
        if not writes:
            return
        special = all(channel in WRITES_IDX_MAP for channel, _ in writes)  # as the saver: these may be overwritten
        items = list(repo._build_write_items(thread_id, checkpoint_ns, checkpoint_id, writes, task_id, task_path,
                                             allow_overwrites=special))
        for _, payload in items:
            repo.storage.store_data(chunk_key=payload["chunk_key"], s3_key=payload["s3_key"],
                                    serialized_data=payload["value_data"], allow_overwrite=special)
        condition = {} if special else {"ConditionExpression": "attribute_not_exists(PK)"}
        for start in range(0, len(items), 100):
            part = [metadata for metadata, _ in items[start:start + 100]]
            try:
                repo.dynamodb_client.transact_write_items(
                    TransactItems=[{"Put": {"TableName": repo.table_name, "Item": m, **condition}} for m in part])
            except ClientError as error:
                if not failed_condition(error):
                    raise
                # Some are there already (the same writes saved again): the others one by one, as the saver does.
                for metadata in part:
                    repo.put_single_write_item(checkpoint_id, metadata, allow_overwrites=special)

    repo.put_writes = put_writes
    return saver


def _time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _steps_json(steps: list[Step]) -> str:
    return json.dumps([
        {"name": s.name, "state": s.state, "error": s.error,
         "started": s.started.isoformat() if s.started else None, "ended": s.ended.isoformat() if s.ended else None}
        for s in steps
    ])


def _workflow(item: dict[str, Any]) -> Workflow:
    row = _plain(item)
    return Workflow(
        id=row["id"],
        type=row["type"],
        parameters=json.loads(row["parameters"]),
        state=row["state"],
        steps=[Step(s["name"], s["state"], _time(s["started"]), _time(s["ended"]), s["error"]) for s in json.loads(row["steps"])],
        created=dt.datetime.fromisoformat(row["create_time"]),
        updated=dt.datetime.fromisoformat(row["update_time"]),
        progress=int(row.get("progress", 0)),
        result=json.loads(row["result"]) if row.get("result") else None,
        error=json.loads(row["error"]) if row.get("error") else None,
        last_sequence=int(row.get("last_sequence", 0)),
        traceparent=row.get("traceparent", ""),
        creator=identity_of_text(row.get("creator")),
    )


def _event(item: dict[str, Any]) -> Event:
    row = _plain(item)
    return Event(row["workflow_id"], int(row["sequence"]), row["type"], row["step"], row["state"], int(row["progress"]),
                 row["message"], dt.datetime.fromisoformat(row["create_time"]), int(row.get("steps_done", 0)),
                 int(row.get("steps_total", 0)), int(row.get("items_done", 0)), int(row.get("items_total", 0)))


class DynamoDBWorkflowStore:
    def __init__(self, client: Any, prefix: str) -> None:
        self._client = client
        self._tables = table_names(prefix)
        self._calls = BlockingCalls(client, "workflows")
        self._call = self._calls.call  # every boto3 call runs on the adapter's worker threads
        self._query = self._calls.query

    def close(self) -> None:
        self._calls.close()

    def _put_event(self, event: Event) -> dict[str, Any]:
        return {"Put": {
            "TableName": self._tables["workflow-events"],
            "Item": _item({"workflow_id": event.workflow_id, "sequence": event.sequence, "type": event.type,
                           "step": event.step, "state": event.state, "progress": event.progress,
                           "message": event.message, "create_time": event.created.isoformat(),
                           "steps_done": event.steps_done, "steps_total": event.steps_total,
                           "items_done": event.items_done, "items_total": event.items_total}),
            "ConditionExpression": "attribute_not_exists(workflow_id)",
        }}

    async def create(
        self, type_name: str, parameters: dict[str, Any], steps: builtins.list[str], request_id: str,
        traceparent: str = "", start: RunStart | None = None, creator: Identity = ANONYMOUS,
    ) -> tuple[Workflow, bool]:
        now = utcnow()
        workflow = Workflow(uuid.uuid4().hex, type_name, parameters, "pending", [Step(s) for s in steps], now, now,
                            traceparent=traceparent, creator=creator)
        events = opening_events(workflow, start)
        workflow.state, workflow.last_sequence = events[-1].state, len(events)
        lease = {"lease_owner": start.owner, "lease_expires": Decimal(str(start.until.timestamp()))} if start else {}
        writes: list[dict[str, Any]] = [
            {"Put": {
                "TableName": self._tables["workflows"],
                "Item": _item({"id": workflow.id, "type": type_name, "parameters": json.dumps(parameters),
                               "state": workflow.state, "progress": 0, "steps": _steps_json(workflow.steps),
                               "request_id": request_id or None, "create_time": now.isoformat(),
                               "update_time": now.isoformat(), "last_sequence": workflow.last_sequence, "feed": FEED,
                               "traceparent": traceparent or None, "creator": identity_text(creator) or None,
                               **lease}),
            }},
            *(self._put_event(event) for event in events),
        ]
        if request_id:
            writes.append({"Put": {
                "TableName": self._tables["workflow-requests"],
                "Item": _item({"request_id": request_id, "workflow_id": workflow.id}),
                "ConditionExpression": "attribute_not_exists(request_id)",
            }})

        def write() -> tuple[Workflow, bool]:
            for _ in range(MAX_RETRIES):
                try:
                    self._client.transact_write_items(TransactItems=writes)
                    return workflow, True
                except ClientError as error:
                    if not (request_id and failed_condition(error)):
                        raise
                # The request id is taken (or a racing caller's transaction is in flight): its workflow is the answer.
                earlier = self._client.get_item(TableName=self._tables["workflow-requests"], ConsistentRead=True,
                                                Key=_item({"request_id": request_id})).get("Item")
                if earlier is not None:
                    found = self._client.get_item(TableName=self._tables["workflows"], ConsistentRead=True,
                                                  Key={"id": earlier["workflow_id"]})
                    return _workflow(found["Item"]), False
            raise RuntimeError(f"request id {request_id!r}: no outcome after {MAX_RETRIES} tries")

        return await self._call(write)

    async def get(self, workflow_id: str) -> Workflow:
        if not workflow_id:
            raise not_found(workflow_id)
        found = await self._call(lambda: self._client.get_item(
            TableName=self._tables["workflows"], Key=_item({"id": workflow_id}), ConsistentRead=True))
        if "Item" not in found:
            raise not_found(workflow_id)
        return _workflow(found["Item"])

    def _by_state(self, state: str, newest_first: bool = False, **extra: Any) -> Iterator[dict[str, Any]]:
        return self._query(TableName=self._tables["workflows"], IndexName="by_state",
                           KeyConditionExpression="#s = :s", ExpressionAttributeNames={"#s": "state", **extra.pop("names", {})},
                           ExpressionAttributeValues=_item({":s": state, **extra.pop("values", {})}),
                           ScanIndexForward=not newest_first, **extra)

    async def list(self, state: str, offset: int, limit: int) -> tuple[builtins.list[Workflow], bool]:
        def page() -> builtins.list[dict[str, Any]]:
            if state:
                items = self._by_state(state, newest_first=True)
            else:
                items = self._query(TableName=self._tables["workflows"], IndexName="by_create",
                                    KeyConditionExpression="feed = :f", ExpressionAttributeValues=_item({":f": FEED}),
                                    ScanIndexForward=False)
            taken = []
            for item in items:
                taken.append(item)
                if len(taken) > offset + limit:
                    break
            return taken[offset:]

        items = await self._call(page)
        return [_workflow(i) for i in items[:limit]], len(items) > limit

    def _unfinished(self) -> builtins.list[Workflow]:
        found = [_workflow(i) for state in UNFINISHED for i in self._by_state(state)]
        return sorted(found, key=lambda w: (w.created, w.id))

    async def unfinished(self) -> builtins.list[Workflow]:
        return await self._call(self._unfinished)

    async def record(
        self, workflow: Workflow, event_type: str, step: str, message: str, items_done: int = 0, items_total: int = 0
    ) -> Event:
        return (await self.record_all(workflow, [Draft.of(workflow, event_type, step, message, items_done, items_total)]))[0]

    async def record_all(self, workflow: Workflow, drafts: builtins.list[Draft]) -> builtins.list[Event]:
        workflow.updated = utcnow()

        def write() -> builtins.list[Event]:
            seen = workflow.last_sequence
            for _ in range(MAX_RETRIES):
                last = seen + len(drafts)
                sets = ["#s = :s", "progress = :p", "steps = :steps", "update_time = :u", "last_sequence = :next"]
                removes: builtins.list[str] = []
                (sets if workflow.result is not None else removes).append("#r = :r" if workflow.result is not None else "#r")
                (sets if workflow.error is not None else removes).append("#e = :e" if workflow.error is not None else "#e")
                update = {"Update": {
                    "TableName": self._tables["workflows"],
                    "Key": _item({"id": workflow.id}),
                    "UpdateExpression": "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else ""),
                    "ConditionExpression": "attribute_exists(id) AND last_sequence = :seen",
                    "ExpressionAttributeNames": {"#s": "state", "#r": "result", "#e": "error"},
                    "ExpressionAttributeValues": _item({
                        ":s": workflow.state, ":p": workflow.progress, ":steps": _steps_json(workflow.steps),
                        ":u": workflow.updated.isoformat(), ":next": last, ":seen": seen,
                        ":r": json.dumps(workflow.result) if workflow.result is not None else None,
                        ":e": json.dumps(workflow.error) if workflow.error is not None else None,
                    }),
                }}
                events = [draft.event(workflow.id, seen + 1 + n, workflow.updated) for n, draft in enumerate(drafts)]
                try:
                    self._client.transact_write_items(TransactItems=[update, *map(self._put_event, events)])
                except ClientError as error:
                    if not failed_condition(error):
                        raise
                    current = self._client.get_item(TableName=self._tables["workflows"], ConsistentRead=True,
                                                    Key=_item({"id": workflow.id}), ProjectionExpression="last_sequence")
                    if "Item" not in current:
                        raise not_found(workflow.id) from None
                    seen = int(_plain(current["Item"])["last_sequence"])  # another writer took that sequence
                    continue
                workflow.last_sequence = last
                return events
            raise RuntimeError(f"workflow {workflow.id}: no free sequence after {MAX_RETRIES} tries")

        return await self._call(write)

    async def events_after(self, workflow_id: str, sequence: int) -> builtins.list[Event]:
        def read() -> builtins.list[Event]:
            return [_event(i) for i in self._query(
                TableName=self._tables["workflow-events"], ConsistentRead=True,
                KeyConditionExpression="workflow_id = :w AND #q > :q", ExpressionAttributeNames={"#q": "sequence"},
                ExpressionAttributeValues=_item({":w": workflow_id, ":q": sequence}))]

        return await self._call(read)

    async def changed_since(self, moment: dt.datetime) -> builtins.list[tuple[str, int]]:
        def read() -> builtins.list[tuple[str, int]]:
            items = self._query(TableName=self._tables["workflows"], IndexName="by_update",
                                KeyConditionExpression="feed = :f AND update_time >= :m",
                                ProjectionExpression="id, last_sequence",
                                ExpressionAttributeValues=_item({":f": FEED, ":m": moment.isoformat()}))
            return [(row["id"], int(row["last_sequence"])) for row in map(_plain, items)]

        return await self._call(read)

    def _update(self, workflow_id: str, **kwargs: Any) -> dict[str, Any] | None:
        """One conditional UpdateItem; None when its condition failed."""
        try:
            return dict(self._client.update_item(TableName=self._tables["workflows"], Key=_item({"id": workflow_id}),
                                                 **kwargs))
        except ClientError as error:
            if failed_condition(error):
                return None
            raise

    async def claim(self, workflow_id: str, owner: str, now: dt.datetime, until: dt.datetime) -> bool:
        taken = await self._call(lambda: self._update(
            workflow_id,
            UpdateExpression="SET lease_owner = :o, lease_expires = :u",
            ConditionExpression="attribute_exists(id) AND #s IN (:pending, :running) AND "
                                "(attribute_not_exists(lease_owner) OR lease_owner = :o OR lease_expires < :now)",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues=_item({":o": owner, ":u": Decimal(str(until.timestamp())),
                                             ":now": Decimal(str(now.timestamp())), ":pending": "pending",
                                             ":running": "running"}),
        ))
        return taken is not None

    async def renew(self, workflow_id: str, owner: str, until: dt.datetime) -> LeaseState:
        renewed = await self._call(lambda: self._update(
            workflow_id,
            UpdateExpression="SET lease_expires = :u",
            ConditionExpression="lease_owner = :o AND #s IN (:pending, :running)",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues=_item({":o": owner, ":u": Decimal(str(until.timestamp())),
                                             ":pending": "pending", ":running": "running"}),
            ReturnValues="ALL_NEW",
        ))
        if renewed is None:
            return "lost"
        return "cancel_requested" if "cancel_requested" in renewed["Attributes"] else "held"

    async def release(self, workflow_id: str, owner: str) -> None:
        await self._call(lambda: self._update(
            workflow_id, UpdateExpression="REMOVE lease_owner, lease_expires", ConditionExpression="lease_owner = :o",
            ExpressionAttributeValues=_item({":o": owner})))

    async def claimable(self, now: dt.datetime) -> builtins.list[Workflow]:
        def read() -> builtins.list[Workflow]:
            moment = now.timestamp()
            leases = {}
            for state in UNFINISHED:
                for row in map(_plain, self._by_state(state)):
                    leases[row["id"]] = (row.get("lease_owner"), float(row.get("lease_expires", 0)))
            return [w for w in self._unfinished() if leases.get(w.id, (None, 0.0))[0] is None
                    or leases[w.id][1] < moment]

        return await self._call(read)

    async def request_cancel(self, workflow_id: str) -> None:
        marked = await self._call(lambda: self._update(
            workflow_id, UpdateExpression="SET cancel_requested = :t", ConditionExpression="attribute_exists(id)",
            ExpressionAttributeValues=_item({":t": True})))
        if marked is None:
            raise not_found(workflow_id)

    async def prunable(self, ended_before: dt.datetime) -> builtins.list[str]:
        def read() -> builtins.list[str]:
            found = []
            for state in sorted(TERMINAL):
                for row in map(_plain, self._by_state(
                    state, FilterExpression="update_time < :before AND attribute_not_exists(checkpoints_pruned)",
                    values={":before": ended_before.isoformat()},
                )):
                    found.append((row["update_time"], row["id"]))
            return [workflow_id for _, workflow_id in sorted(found)]

        return await self._call(read)

    async def mark_pruned(self, workflow_id: str) -> None:
        await self._call(lambda: self._update(
            workflow_id, UpdateExpression="SET checkpoints_pruned = :t", ConditionExpression="attribute_exists(id)",
            ExpressionAttributeValues=_item({":t": True})))

    async def ping(self) -> None:
        await self._call(lambda: self._client.describe_table(TableName=self._tables["workflows"]))


if __name__ == "__main__":  # python -m services.workflows.store_dynamodb: create the tables of MCPMESH_STATE_URL
    from services.runtime.config import Config

    state = StateUrl.parse(Config.from_env("workflows").state_url or "dynamodb://")
    print("\n".join(create_tables(dynamodb_client(state), state.table_prefix)) or "all tables exist")
