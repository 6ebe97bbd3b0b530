"""The graph store on DynamoDB: a graph item per graph, and its nodes, edges and file records as items of one
partition, each written with the version of the save that wrote it.

DynamoDB has no transaction big enough for a graph, so a save is published instead of committed: it reserves a new
version number, writes only the rows that changed (and a tombstone per removed row) under that version, then one
conditional update of the graph item publishes it, naming the versions whose rows make up the graph (`chain`). A
reader takes, for each row, the item of the highest version in the chain, so it sees the whole old graph or the
whole new one; the items the new version replaced are removed after. Two saves of one graph both read the version
they diff against; the one that publishes second finds the graph item changed, drops its rows and saves again
against the new version. A read re-reads the graph item at the end and reads again when a save was published
meanwhile (the removal of replaced rows could have taken rows it was reading)."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from services.agents.knowledge.graph import (
    Edge,
    FileRecord,
    GraphInfo,
    Node,
    edge_from_dict,
    edge_to_dict,
    node_from_dict,
    node_to_dict,
)
from services.agents.knowledge.name_search import NameIndex
from services.agents.knowledge.store import DIRECTIONS, Neighbor, SaveCounts, query_words
from services.runtime import dynamodb
from services.runtime.dynamodb import BlockingCalls, batch_write, failed_condition, item
from services.runtime.errors import InvalidArgument, NotFound, Unavailable

T = TypeVar("T")
log = logging.getLogger("mcpmesh.graphs")
MAX_RETRIES = 50
Item = dict[str, Any]  # an item as DynamoDB returns it (attribute -> {type: value})
_VERSION = 13  # every row key ends in "|" and the version in 12 digits
CHUNK_BYTES = 300_000  # a file record's compressed extraction above this is split over rows (items hold 400 KB)
CACHED_GRAPHS = 2  # graphs whose nodes (at one published version) each store instance keeps (tasks have 1 GiB)


def table_names(prefix: str) -> dict[str, str]:
    return {name: f"{prefix}-{name}" for name in ("graphs", "graph-items")}


def table_definitions(prefix: str) -> list[dict[str, Any]]:
    names = table_names(prefix)
    return [
        {  # one item per graph: its published version, the versions its rows carry, and its GraphInfo
            "TableName": names["graphs"],
            "KeySchema": [{"AttributeName": "name", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "name", "AttributeType": "S"}],
        },
        {  # a graph's rows: n|node, o|source|kind+target and i|target|kind+source (edges both ways), f|file and
            # x|file|chunk (a big file's extraction); each key ends in |version
            "TableName": names["graph-items"],
            "KeySchema": [{"AttributeName": "graph", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "AttributeDefinitions": [{"AttributeName": "graph", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        },
    ]


def create_tables(client: Any, prefix: str) -> list[str]:
    """The adapter's set-up: creates the tables that do not exist yet."""
    return dynamodb.create_tables(client, table_definitions(prefix))


def _h(*parts: str) -> str:
    """Row keys hold hashes of ids: fixed length whatever the id, and no separator inside them."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def node_key(node_id: str) -> str:
    return f"n|{_h(node_id)}"


def out_key(source: str, kind: str, target: str) -> str:
    return f"o|{_h(source)}|{_h(kind, target)}"


def in_key(source: str, kind: str, target: str) -> str:
    return f"i|{_h(target)}|{_h(kind, source)}"


def file_key(path: str) -> str:
    return f"f|{_h(path)}"


def chunk_key(path: str, number: int) -> str:
    return f"x|{_h(path)}|{number:04d}"


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _digest(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()[:32]


def _version(found: Item) -> int:
    return int(found["v"]["N"])


def _dead(found: Item) -> bool:
    return bool(found.get("dead", {}).get("BOOL", False))


def _body(found: Item) -> Any:
    return json.loads(found["body"]["S"])


def visible(items: Iterable[Item], chain: set[int]) -> dict[str, Item]:
    """Per row key, the item of the highest version in the chain (tombstones included)."""
    best: dict[str, Item] = {}
    for found in items:
        version = _version(found)
        if version not in chain:
            continue
        key = found["sk"]["S"][:-_VERSION]
        if key not in best or version > _version(best[key]):
            best[key] = found
    return best


def _graph_missing(graph: str) -> NotFound:
    return NotFound(f"graph {graph!r} does not exist", reason="GRAPH_NOT_FOUND", metadata={"graph": graph})


def _node_missing(graph: str, node_id: str) -> NotFound:
    return NotFound(f"graph {graph!r} has no node {node_id!r}", reason="GRAPH_NODE_NOT_FOUND",
                    metadata={"graph": graph, "node": node_id})


class _Row:
    """One row a save wants stored: its key, what tells a change, and its attributes."""

    def __init__(self, key: str, compare: str, values: dict[str, Any]) -> None:
        self.key, self.compare, self.values = key, compare, values


def _wanted(nodes: Sequence[Node], edges: Sequence[Edge], files: Sequence[FileRecord]) -> dict[str, _Row]:
    rows: dict[str, _Row] = {}
    for node in nodes:
        body = _json(node_to_dict(node))
        rows[node_key(node.id)] = _Row(node_key(node.id), _digest(body), {"body": body, "digest": _digest(body)})
    for edge in edges:
        body = _json(edge_to_dict(edge))
        for key in (out_key(*edge.key), in_key(*edge.key)):
            rows[key] = _Row(key, _digest(body), {"body": body, "digest": _digest(body)})
    for record in files:
        key = file_key(record.path)
        data = zlib.compress(record.extraction.encode())
        values: dict[str, Any] = {"path": record.path, "sha256": record.sha256, "digest": _digest(record.sha256 + record.extraction)}
        if len(data) <= CHUNK_BYTES:
            values["extraction"] = data
        else:  # what a big file's parse left is kept in chunk rows beside it
            pieces = [data[i:i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)]
            values["chunks"] = len(pieces)
            for number, piece in enumerate(pieces):
                chunk, digest = chunk_key(record.path, number), hashlib.sha256(piece).hexdigest()[:32]
                rows[chunk] = _Row(chunk, digest, {"chunk": piece, "digest": digest})
        rows[key] = _Row(key, values["digest"], values)
    return rows


def _compare(found: Item) -> str:
    return str((found.get("digest") or found.get("sha256") or {}).get("S", ""))


class _Snapshot:
    """A graph's nodes at one published version. A version's rows never change, so it stays right as long as the
    graph item names that version; searches and neighbour lists then read no nodes."""

    def __init__(self, version: int, nodes: list[Node]) -> None:
        self.version = version
        self.nodes = nodes  # by id
        self.by_id = {n.id: n for n in nodes}
        self._index: NameIndex | None = None
        self._lock = threading.Lock()

    @property
    def index(self) -> NameIndex:
        with self._lock:
            if self._index is None:
                self._index = NameIndex(self.nodes)
            return self._index


class DynamoDBGraphStore:
    def __init__(self, client: Any, prefix: str) -> None:
        self._client = client
        self._tables = table_names(prefix)
        self._calls = BlockingCalls(client, "graphs")
        self._fan_out = ThreadPoolExecutor(max_workers=8, thread_name_prefix="dynamodb-graph-fan-out")
        self._snapshots: OrderedDict[str, _Snapshot] = OrderedDict()
        self._snapshots_lock = threading.Lock()

    def close(self) -> None:
        self._calls.close()
        self._fan_out.shutdown(wait=True)

    # Reading

    def _info(self, graph: str) -> Item | None:
        return self._client.get_item(TableName=self._tables["graphs"], Key=item({"name": graph}), ConsistentRead=True).get("Item")

    def _rows(self, graph: str, prefix: str, projection: str = "") -> Iterator[Item]:
        names = {"#g": "graph"}
        condition = "#g = :g"
        values = {":g": graph}
        if prefix:
            names["#s"] = "sk"
            condition += " AND begins_with(#s, :p)"
            values[":p"] = prefix
        extra: dict[str, Any] = {}
        if projection:
            fields = projection.split(",")
            names.update({f"#p{i}": f for i, f in enumerate(fields)})
            extra["ProjectionExpression"] = ", ".join(f"#p{i}" for i in range(len(fields)))
        return self._calls.query(
            TableName=self._tables["graph-items"], ConsistentRead=True,
            KeyConditionExpression=condition, ExpressionAttributeNames=names, ExpressionAttributeValues=item(values),
            **extra)

    def _stable(self, graph: str, read: Callable[[Item | None, set[int]], T]) -> T:
        """`read` given the graph item (None when the graph does not exist) and its chain, run again until no save
        was published while it ran."""
        info = self._info(graph)
        for _ in range(MAX_RETRIES):
            exists = info is not None and "root" in info
            chain = {int(v["N"]) for v in info["chain"]["L"]} if info is not None and exists else set()
            outcome: T | NotFound
            try:
                outcome = read(info if exists else None, chain)
            except NotFound as missing:
                outcome = missing
            again = self._info(graph)
            if _published(again) == _published(info):
                if isinstance(outcome, NotFound):
                    raise outcome
                return outcome
            info = again
        raise Unavailable(f"graph {graph!r} changed on every one of {MAX_RETRIES} reads", reason="GRAPH_BUSY")

    def _live(self, graph: str, prefix: str, chain: set[int], projection: str = "") -> list[Item]:
        return [found for found in visible(self._rows(graph, prefix, projection), chain).values() if not _dead(found)]

    def _node(self, graph: str, node_id: str, chain: set[int], snapshot: _Snapshot | None = None) -> Node | None:
        if snapshot is not None:
            return snapshot.by_id.get(node_id)
        found = self._live(graph, node_key(node_id) + "|", chain)
        return node_from_dict(_body(found[0])) if found else None

    def _cached(self, graph: str, info: Item) -> _Snapshot | None:
        """The graph's nodes when they were read at the version `info` names."""
        with self._snapshots_lock:
            found = self._snapshots.get(graph)
            if found is None or found.version != _published(info):
                return None
            self._snapshots.move_to_end(graph)
            return found

    def _snapshot(self, graph: str) -> _Snapshot | None:
        """Every node of the graph at its published version (from memory when read before); None: no graph."""

        def read(info: Item | None, chain: set[int]) -> _Snapshot | None:
            if info is None:
                return None
            found = self._cached(graph, info)
            if found is not None:
                return found
            nodes = [node_from_dict(_body(row)) for row in self._live(graph, "n|", chain, "sk,v,dead,body")]
            return _Snapshot(int(info["version"]["N"]), sorted(nodes, key=lambda n: n.id))

        snapshot = self._stable(graph, read)
        if snapshot is not None:  # read whole at this version: right for as long as it is the published one
            with self._snapshots_lock:
                self._snapshots[graph] = snapshot
                self._snapshots.move_to_end(graph)
                while len(self._snapshots) > CACHED_GRAPHS:
                    self._snapshots.popitem(last=False)
        return snapshot

    async def get_graph(self, graph: str) -> GraphInfo:
        found = await self._calls.call(lambda: self._info(graph))
        if found is None or "root" not in found:
            raise _graph_missing(graph)
        return _graph_info(found)

    async def list_graphs(self, offset: int, limit: int) -> tuple[list[GraphInfo], int]:
        def read() -> list[Item]:
            found = []
            for page in self._client.get_paginator("scan").paginate(TableName=self._tables["graphs"], ConsistentRead=True):
                found += [i for i in page.get("Items", []) if "root" in i]
            return sorted(found, key=lambda i: i["name"]["S"])

        graphs = await self._calls.call(read)
        return [_graph_info(i) for i in graphs[offset:offset + limit]], len(graphs)

    async def node(self, graph: str, node_id: str) -> Node:
        def read(info: Item | None, chain: set[int]) -> Node:
            if info is None:
                raise _graph_missing(graph)
            found = self._node(graph, node_id, chain, self._cached(graph, info))
            if found is None:
                raise _node_missing(graph, node_id)
            return found

        return await self._calls.call(lambda: self._stable(graph, read))

    async def neighbors(
        self, graph: str, node_id: str, direction: str, kinds: Sequence[str], offset: int, limit: int
    ) -> tuple[list[Neighbor], int]:
        if direction not in DIRECTIONS:
            raise InvalidArgument.field("direction", f"must be one of {', '.join(DIRECTIONS)}")
        wanted = set(kinds)

        def read(info: Item | None, chain: set[int]) -> tuple[list[Neighbor], int]:
            if info is None:
                raise _graph_missing(graph)
            snapshot = self._cached(graph, info)
            if self._node(graph, node_id, chain, snapshot) is None:
                raise _node_missing(graph, node_id)
            found: list[tuple[int, str, str, Edge]] = []
            for way, prefix in ((0, "o"), (1, "i")):
                if direction in (("out", "both") if way == 0 else ("in", "both")):
                    for row in self._live(graph, f"{prefix}|{_h(node_id)}|", chain, "sk,v,dead,body"):
                        edge = edge_from_dict(_body(row))
                        if not wanted or edge.kind in wanted:
                            found.append((way, edge.kind, edge.target if way == 0 else edge.source, edge))
            found.sort(key=lambda f: f[:3])
            page = found[offset:offset + limit]
            others = list(self._fan_out.map(lambda f: self._node(graph, f[2], chain, snapshot), page))
            # As the SQLite store's join: an edge whose other end is not stored is counted but not listed.
            return [Neighbor(f[3], other) for f, other in zip(page, others, strict=True) if other is not None], len(found)

        return await self._calls.call(lambda: self._stable(graph, read))

    async def search(self, graph: str, text: str, kinds: Sequence[str], offset: int, limit: int) -> tuple[list[Node], int]:
        query_words(text)  # a query without a word is refused before anything is read
        snapshot = await self._calls.call(lambda: self._snapshot(graph))
        if snapshot is None:
            raise _graph_missing(graph)
        return snapshot.index.search(text, kinds, offset, limit)

    async def nodes(self, graph: str) -> list[Node]:
        snapshot = await self._calls.call(lambda: self._snapshot(graph))
        return list(snapshot.nodes) if snapshot is not None else []

    async def edges(self, graph: str) -> list[Edge]:
        def read(info: Item | None, chain: set[int]) -> list[Edge]:
            edges = [edge_from_dict(_body(row)) for row in self._live(graph, "o|", chain, "sk,v,dead,body")]
            return sorted(edges, key=lambda e: e.key)

        return await self._calls.call(lambda: self._stable(graph, read))

    async def edge_keys(self, graph: str) -> list[tuple[str, str, str]]:
        return [edge.key for edge in await self.edges(graph)]

    async def edge(self, graph: str, key: tuple[str, str, str]) -> Edge:
        def read(info: Item | None, chain: set[int]) -> Edge:
            found = self._live(graph, out_key(*key) + "|", chain)
            if not found:
                raise NotFound(f"graph {graph!r} has no edge {key!r}", reason="GRAPH_EDGE_NOT_FOUND", metadata={"graph": graph})
            return edge_from_dict(_body(found[0]))

        return await self._calls.call(lambda: self._stable(graph, read))

    async def files(self, graph: str) -> dict[str, FileRecord]:
        def read(info: Item | None, chain: set[int]) -> dict[str, FileRecord]:
            records = {}
            rows = self._live(graph, "f|", chain)
            chunks = {r["sk"]["S"][:-_VERSION]: r["chunk"]["B"] for r in self._live(graph, "x|", chain)} if any(
                "chunks" in r for r in rows) else {}
            for row in rows:
                path = row["path"]["S"]
                if "chunks" in row:
                    data = b"".join(chunks[chunk_key(path, n)] for n in range(int(row["chunks"]["N"])))
                else:
                    data = row["extraction"]["B"]
                records[path] = FileRecord(path, row["sha256"]["S"], zlib.decompress(data).decode())
            return records

        return await self._calls.call(lambda: self._stable(graph, read))

    async def ping(self) -> None:
        await self._calls.call(lambda: self._client.describe_table(TableName=self._tables["graphs"]))

    # Writing

    def _reserve(self, graph: str) -> tuple[int, int | None, set[int], bool]:
        """A version number no other save will use; the published version and chain it is read against, and whether
        the graph exists (a deleted graph has a version but no rows)."""
        found = self._client.update_item(
            TableName=self._tables["graphs"], Key=item({"name": graph}), UpdateExpression="ADD #n :one",
            ExpressionAttributeNames={"#n": "next"}, ExpressionAttributeValues=item({":one": 1}), ReturnValues="ALL_NEW",
        )["Attributes"]
        chain = {int(v["N"]) for v in found.get("chain", {}).get("L", [])}
        return int(found["next"]["N"]), _published(found), chain, "root" in found

    def _publish(self, graph: str, base: int | None, sets: dict[str, Any], removes: Sequence[str] = ()) -> bool:
        """Makes `sets` (with the new version and chain) the graph's, when `base` is still its published version."""
        names = {f"#a{i}": name for i, name in enumerate(sets)} | {f"#r{i}": name for i, name in enumerate(removes)}
        names["#version"] = "version"
        expression = "SET " + ", ".join(f"#a{i} = :a{i}" for i in range(len(sets)))
        if removes:
            expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(removes)))
        values = {f":a{i}": value for i, value in enumerate(sets.values())}
        condition = "attribute_not_exists(#version)" if base is None else "#version = :base"
        if base is not None:
            values[":base"] = base
        try:
            self._client.update_item(TableName=self._tables["graphs"], Key=item({"name": graph}), UpdateExpression=expression,
                                     ConditionExpression=condition, ExpressionAttributeNames=names,
                                     ExpressionAttributeValues=item(values))
            return True
        except ClientError as error:
            if failed_condition(error):
                # Also when botocore sent the update again after a lost answer to the first, which was written.
                return _published(self._info(graph)) == sets["version"]
            raise

    def _write(self, requests: Sequence[dict[str, Any]]) -> None:
        """BatchWriteItem calls of 25 requests, several at a time."""
        chunks = [requests[i:i + 25] for i in range(0, len(requests), 25)]
        for _ in self._fan_out.map(lambda chunk: batch_write(self._client, self._tables["graph-items"], chunk), chunks):
            pass

    def _delete_items(self, graph: str, keys: Iterable[str]) -> None:
        self._write([{"DeleteRequest": {"Key": item({"graph": graph, "sk": key})}} for key in keys])

    def _save(self, info: GraphInfo, nodes: Sequence[Node], edges: Sequence[Edge], files: Sequence[FileRecord]) -> SaveCounts:
        graph = info.name
        wanted = _wanted(nodes, edges, files)
        graph_values = {"root": info.root, "node_count": len(nodes), "edge_count": len(edges),
                        "metrics": zlib.compress(_json(info.metrics).encode()), "updated": info.updated}
        for _ in range(MAX_RETRIES):
            version, base, chain, _exists = self._reserve(graph)
            stored = list(self._rows(graph, "", "sk,v,dead,digest,sha256"))
            shown = visible(stored, chain)
            suffix = f"|{version:012d}"
            puts: list[Item] = []
            written: set[str] = set()
            removed: list[str] = []
            changes = {"n": [0, 0, 0], "o": [0, 0, 0]}  # added, updated, removed
            for key, row in wanted.items():
                earlier = shown.get(key)
                alive = earlier is not None and not _dead(earlier)
                if alive and earlier is not None and _compare(earlier) == row.compare:
                    continue
                puts.append({"graph": graph, "sk": key + suffix, "v": version, **row.values})
                written.add(key)
                if key[0] in changes:
                    changes[key[0]][1 if alive else 0] += 1
            for key, earlier in shown.items():
                if key not in wanted and not _dead(earlier):
                    puts.append({"graph": graph, "sk": key + suffix, "v": version, "dead": True})
                    written.add(key)
                    removed.append(key)
                    if key[0] in changes:
                        changes[key[0]][2] += 1
            self._write([{"PutRequest": {"Item": item(p)}} for p in puts])
            # The graph is every row this save wrote and every row it kept, at the version each was written with.
            kept = {_version(found) for key, found in shown.items() if key not in written}
            published = self._publish(graph, base, {**graph_values, "version": version,
                                                    "chain": sorted(kept | ({version} if puts else set()))})
            if not published:  # another save was published since this one read: save again against it
                self._delete_items(graph, (p["sk"] for p in puts))
                continue
            # Now unseen by readers: items the chain does not name, older items of a row, rows this save replaced;
            # after them, the tombstones of removed rows (which then hide nothing). The save is done whatever
            # happens here: what is left is unseen, and the next save, which reads it all, removes it.
            replaced = [f["sk"]["S"] for f in stored if shown.get(f["sk"]["S"][:-_VERSION]) is not f or f["sk"]["S"][:-_VERSION] in written]
            tombstones = [f["sk"]["S"] for key, f in shown.items() if key not in written and _dead(f)]
            try:
                self._delete_items(graph, replaced)
                self._delete_items(graph, [key + suffix for key in removed] + tombstones)
            except (ClientError, RuntimeError) as error:
                log.warning("graph %s: version %d is saved, but its replaced rows were not all removed: %s", graph, version, error)
            (nodes_added, nodes_updated, nodes_removed), (edges_added, edges_updated, edges_removed) = changes["n"], changes["o"]
            return SaveCounts(nodes_added, nodes_updated, nodes_removed, edges_added, edges_updated, edges_removed)
        raise Unavailable(f"graph {graph!r}: another save was published first on each of {MAX_RETRIES} tries",
                          reason="GRAPH_BUSY")

    async def save(self, info: GraphInfo, nodes: Sequence[Node], edges: Sequence[Edge], files: Sequence[FileRecord]) -> SaveCounts:
        return await self._calls.call(lambda: self._save(info, nodes, edges, files))

    async def delete(self, graph: str) -> None:
        def work() -> None:
            if (self._info(graph) or {}).get("root") is None:
                return  # never saved, or deleted: no graph item is made for it
            for _ in range(MAX_RETRIES):
                version, base, _chain, exists = self._reserve(graph)
                if not exists:
                    return
                # An empty chain at a new version: readers see no graph, and saves read against the old one fail.
                if self._publish(graph, base, {"version": version, "chain": []},
                                 ("root", "node_count", "edge_count", "metrics", "updated")):
                    older = [f["sk"]["S"] for f in self._rows(graph, "", "sk,v") if _version(f) < version]
                    self._delete_items(graph, older)
                    return
            raise Unavailable(f"graph {graph!r}: another save was published first on each of {MAX_RETRIES} tries",
                              reason="GRAPH_BUSY")

        await self._calls.call(work)


def _published(found: Item | None) -> int | None:
    return int(found["version"]["N"]) if found is not None and "version" in found else None


def _graph_info(found: Item) -> GraphInfo:
    return GraphInfo(found["name"]["S"], found["root"]["S"], int(found["node_count"]["N"]), int(found["edge_count"]["N"]),
                     json.loads(zlib.decompress(found["metrics"]["B"])), found["updated"]["S"])
