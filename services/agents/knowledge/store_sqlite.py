"""The graph store in SQLite: tables for graphs, nodes, edges and file records, and an FTS5 index of node names."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from typing import Any

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
from services.agents.knowledge.store import DIRECTIONS, Neighbor, SaveCounts, query_words, search_terms
from services.runtime.errors import InvalidArgument, NotFound
from services.runtime.state import SqliteDatabase

SCHEMA = """
CREATE TABLE IF NOT EXISTS graphs (
    name TEXT PRIMARY KEY, root TEXT NOT NULL, node_count INTEGER NOT NULL, edge_count INTEGER NOT NULL,
    metrics TEXT NOT NULL, updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS graph_nodes (
    rowid INTEGER PRIMARY KEY, graph TEXT NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    body TEXT NOT NULL, digest TEXT NOT NULL, UNIQUE (graph, id)
);
CREATE TABLE IF NOT EXISTS graph_edges (
    graph TEXT NOT NULL, source TEXT NOT NULL, kind TEXT NOT NULL, target TEXT NOT NULL, body TEXT NOT NULL,
    digest TEXT NOT NULL, PRIMARY KEY (graph, source, kind, target)
);
CREATE INDEX IF NOT EXISTS graph_edges_by_target ON graph_edges (graph, target, kind);
CREATE TABLE IF NOT EXISTS graph_files (
    graph TEXT NOT NULL, path TEXT NOT NULL, sha256 TEXT NOT NULL, extraction TEXT NOT NULL, PRIMARY KEY (graph, path)
);
CREATE VIRTUAL TABLE IF NOT EXISTS graph_search USING fts5 (name, qualified_name, terms, tokenize = 'unicode61');
"""

def fts_query(text: str) -> str:
    """Each word of `text` as a prefix query on the name columns; InvalidArgument when there is no word."""
    return " AND ".join(f'{{name qualified_name terms}} : "{w}"*' for w in query_words(text))


def _digest(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()[:32]


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _info(row: sqlite3.Row) -> GraphInfo:
    return GraphInfo(row["name"], row["root"], row["node_count"], row["edge_count"], json.loads(row["metrics"]), row["updated"])


class SqliteGraphStore:
    def __init__(self, database: SqliteDatabase) -> None:
        self._db = database

    async def save(self, info: GraphInfo, nodes: Sequence[Node], edges: Sequence[Edge], files: Sequence[FileRecord]) -> SaveCounts:
        def work(db: sqlite3.Connection) -> SaveCounts:
            graph = info.name
            db.execute(
                "INSERT INTO graphs (name, root, node_count, edge_count, metrics, updated) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET root = excluded.root, node_count = excluded.node_count, "
                "edge_count = excluded.edge_count, metrics = excluded.metrics, updated = excluded.updated",
                (graph, info.root, len(nodes), len(edges), _json(info.metrics), info.updated),
            )
            old_nodes = {r["id"]: (r["rowid"], r["digest"]) for r in db.execute("SELECT rowid, id, digest FROM graph_nodes WHERE graph = ?", (graph,))}
            added = updated = 0
            for node in nodes:
                body = _json(node_to_dict(node))
                digest = _digest(body)
                earlier = old_nodes.pop(node.id, None)
                if earlier is not None and earlier[1] == digest:
                    continue
                if earlier is None:
                    rowid = db.execute(
                        "INSERT INTO graph_nodes (graph, id, kind, name, body, digest) VALUES (?, ?, ?, ?, ?, ?)",
                        (graph, node.id, node.kind, node.name, body, digest),
                    ).lastrowid
                    added += 1
                else:
                    rowid = earlier[0]
                    db.execute("UPDATE graph_nodes SET kind = ?, name = ?, body = ?, digest = ? WHERE rowid = ?",
                               (node.kind, node.name, body, digest, rowid))
                    db.execute("DELETE FROM graph_search WHERE rowid = ?", (rowid,))
                    updated += 1
                db.execute("INSERT INTO graph_search (rowid, name, qualified_name, terms) VALUES (?, ?, ?, ?)",
                           (rowid, node.name, node.qualified_name, search_terms(node)))
            for rowid, _ in old_nodes.values():
                db.execute("DELETE FROM graph_nodes WHERE rowid = ?", (rowid,))
                db.execute("DELETE FROM graph_search WHERE rowid = ?", (rowid,))
            old_edges = {(r["source"], r["kind"], r["target"]): r["digest"]
                         for r in db.execute("SELECT source, kind, target, digest FROM graph_edges WHERE graph = ?", (graph,))}
            edges_added = edges_updated = 0
            for edge in edges:
                body = _json(edge_to_dict(edge))
                digest = _digest(body)
                earlier_digest = old_edges.pop(edge.key, None)
                if earlier_digest == digest:
                    continue
                edges_added += earlier_digest is None
                edges_updated += earlier_digest is not None
                db.execute(
                    "INSERT OR REPLACE INTO graph_edges (graph, source, kind, target, body, digest) VALUES (?, ?, ?, ?, ?, ?)",
                    (graph, *edge.key, body, digest),
                )
            db.executemany("DELETE FROM graph_edges WHERE graph = ? AND source = ? AND kind = ? AND target = ?",
                           [(graph, *key) for key in old_edges])
            old_files = {r["path"]: r["sha256"] for r in db.execute("SELECT path, sha256 FROM graph_files WHERE graph = ?", (graph,))}
            for record in files:
                if old_files.pop(record.path, None) != record.sha256:
                    db.execute("INSERT OR REPLACE INTO graph_files (graph, path, sha256, extraction) VALUES (?, ?, ?, ?)",
                               (graph, record.path, record.sha256, record.extraction))
            db.executemany("DELETE FROM graph_files WHERE graph = ? AND path = ?", [(graph, p) for p in old_files])
            return SaveCounts(added, updated, len(old_nodes), edges_added, edges_updated, len(old_edges))

        return await self._db.transaction(work)

    async def files(self, graph: str) -> dict[str, FileRecord]:
        def work(db: sqlite3.Connection) -> dict[str, FileRecord]:
            rows = db.execute("SELECT path, sha256, extraction FROM graph_files WHERE graph = ?", (graph,))
            return {r["path"]: FileRecord(r["path"], r["sha256"], r["extraction"]) for r in rows}

        return await self._db.run(work)

    async def get_graph(self, graph: str) -> GraphInfo:
        row = await self._db.run(lambda db: db.execute("SELECT * FROM graphs WHERE name = ?", (graph,)).fetchone())
        if row is None:
            raise NotFound(f"graph {graph!r} does not exist", reason="GRAPH_NOT_FOUND", metadata={"graph": graph})
        return _info(row)

    async def list_graphs(self, offset: int, limit: int) -> tuple[list[GraphInfo], int]:
        def work(db: sqlite3.Connection) -> tuple[list[GraphInfo], int]:
            total = db.execute("SELECT COUNT(*) FROM graphs").fetchone()[0]
            rows = db.execute("SELECT * FROM graphs ORDER BY name LIMIT ? OFFSET ?", (limit, offset)).fetchall()
            return [_info(r) for r in rows], total

        return await self._db.run(work)

    async def node(self, graph: str, node_id: str) -> Node:
        def work(db: sqlite3.Connection) -> Node:
            return self._node(db, graph, node_id)

        return await self._db.run(work)

    def _node(self, db: sqlite3.Connection, graph: str, node_id: str) -> Node:
        row = db.execute("SELECT body FROM graph_nodes WHERE graph = ? AND id = ?", (graph, node_id)).fetchone()
        if row is None:
            if db.execute("SELECT 1 FROM graphs WHERE name = ?", (graph,)).fetchone() is None:
                raise NotFound(f"graph {graph!r} does not exist", reason="GRAPH_NOT_FOUND", metadata={"graph": graph})
            raise NotFound(f"graph {graph!r} has no node {node_id!r}", reason="GRAPH_NODE_NOT_FOUND",
                           metadata={"graph": graph, "node": node_id})
        return node_from_dict(json.loads(row["body"]))

    async def neighbors(
        self, graph: str, node_id: str, direction: str, kinds: Sequence[str], offset: int, limit: int
    ) -> tuple[list[Neighbor], int]:
        if direction not in DIRECTIONS:
            raise InvalidArgument.field("direction", f"must be one of {', '.join(DIRECTIONS)}")

        def work(db: sqlite3.Connection) -> tuple[list[Neighbor], int]:
            self._node(db, graph, node_id)
            kind_filter = f" AND e.kind IN ({','.join('?' * len(kinds))})" if kinds else ""
            parts: list[str] = []
            params: list[object] = []
            if direction in ("out", "both"):
                parts.append("SELECT 0 AS way, e.kind, e.target AS other, e.body FROM graph_edges e WHERE e.graph = ? AND e.source = ?" + kind_filter)
                params += [graph, node_id, *kinds]
            if direction in ("in", "both"):
                parts.append("SELECT 1 AS way, e.kind, e.source AS other, e.body FROM graph_edges e WHERE e.graph = ? AND e.target = ?" + kind_filter)
                params += [graph, node_id, *kinds]
            union = " UNION ALL ".join(parts)
            total = db.execute(f"SELECT COUNT(*) FROM ({union})", params).fetchone()[0]
            rows = db.execute(
                f"SELECT u.body AS edge, n.body AS node FROM ({union}) u JOIN graph_nodes n ON n.graph = ? AND n.id = u.other "
                "ORDER BY u.way, u.kind, u.other LIMIT ? OFFSET ?",
                [*params, graph, limit, offset],
            ).fetchall()
            found = [Neighbor(edge_from_dict(json.loads(r["edge"])), node_from_dict(json.loads(r["node"]))) for r in rows]
            return found, total

        return await self._db.run(work)

    async def search(self, graph: str, text: str, kinds: Sequence[str], offset: int, limit: int) -> tuple[list[Node], int]:
        query = fts_query(text)

        def work(db: sqlite3.Connection) -> tuple[list[Node], int]:
            if db.execute("SELECT 1 FROM graphs WHERE name = ?", (graph,)).fetchone() is None:
                raise NotFound(f"graph {graph!r} does not exist", reason="GRAPH_NOT_FOUND", metadata={"graph": graph})
            kind_filter = f" AND n.kind IN ({','.join('?' * len(kinds))})" if kinds else ""
            # The full-text match runs once, first: joined the other way round, SQLite would run it once per node.
            hits = ("WITH hits AS MATERIALIZED (SELECT rowid AS hit, bm25(graph_search, 10.0, 5.0, 1.0) AS score "
                    "FROM graph_search WHERE graph_search MATCH ?) ")
            base = "FROM hits JOIN graph_nodes n ON n.rowid = hits.hit WHERE n.graph = ?" + kind_filter
            params = [query, graph, *kinds]
            total = db.execute(f"{hits}SELECT COUNT(*) {base}", params).fetchone()[0]
            rows = db.execute(
                f"{hits}SELECT n.body {base} ORDER BY lower(n.name) = lower(?) DESC, hits.score, n.id LIMIT ? OFFSET ?",
                [*params, text.strip(), limit, offset],
            ).fetchall()
            return [node_from_dict(json.loads(r["body"])) for r in rows], total

        return await self._db.run(work)

    async def nodes(self, graph: str) -> list[Node]:
        rows = await self._db.run(lambda db: db.execute("SELECT body FROM graph_nodes WHERE graph = ? ORDER BY id", (graph,)).fetchall())
        return [node_from_dict(json.loads(r["body"])) for r in rows]

    async def edges(self, graph: str) -> list[Edge]:
        rows = await self._db.run(
            lambda db: db.execute("SELECT body FROM graph_edges WHERE graph = ? ORDER BY source, kind, target", (graph,)).fetchall()
        )
        return [edge_from_dict(json.loads(r["body"])) for r in rows]

    async def edge_keys(self, graph: str) -> list[tuple[str, str, str]]:
        rows = await self._db.run(
            lambda db: db.execute("SELECT source, kind, target FROM graph_edges WHERE graph = ? ORDER BY source, kind, target",
                                  (graph,)).fetchall()
        )
        return [(r[0], r[1], r[2]) for r in rows]

    async def edge(self, graph: str, key: tuple[str, str, str]) -> Edge:
        row = await self._db.run(lambda db: db.execute(
            "SELECT body FROM graph_edges WHERE graph = ? AND source = ? AND kind = ? AND target = ?", (graph, *key)).fetchone())
        if row is None:
            raise NotFound(f"graph {graph!r} has no edge {key!r}", reason="GRAPH_EDGE_NOT_FOUND", metadata={"graph": graph})
        return edge_from_dict(json.loads(row["body"]))

    async def delete(self, graph: str) -> None:
        def work(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM graph_search WHERE rowid IN (SELECT rowid FROM graph_nodes WHERE graph = ?)", (graph,))
            for table in ("graph_nodes", "graph_edges", "graph_files"):
                db.execute(f"DELETE FROM {table} WHERE graph = ?", (graph,))
            db.execute("DELETE FROM graphs WHERE name = ?", (graph,))

        await self._db.transaction(work)

    async def ping(self) -> None:
        await self._db.ping()
