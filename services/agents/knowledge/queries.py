"""Questions asked of a stored graph: a node, its neighbours, a path between two nodes, a search, an export."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from services.agents.knowledge.export import export
from services.agents.knowledge.graph import EDGE_KINDS, NODE_KINDS, Edge, GraphInfo, Node
from services.agents.knowledge.store import DIRECTIONS, GraphStore, Neighbor
from services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound

MAX_PATH_EDGES = 50  # a path query looks this far at most
MAX_EXPORT_BYTES = 30 * 2**20  # below the servers' 32 MiB message limit, with room for the envelope
Key = tuple[str, str, str]  # (source, kind, target)


@dataclass(frozen=True)
class GraphPath:
    """Nodes from source to target and the edges between them; each edge keeps its own direction."""

    nodes: list[Node]
    edges: list[Edge]


def _required(value: str, field: str) -> str:
    if not value:
        raise InvalidArgument.field(field, "is required")
    return value


def _kinds(kinds: Sequence[str], known: tuple[str, ...], field: str) -> list[str]:
    unknown = sorted(set(kinds) - set(known))
    if unknown:
        raise InvalidArgument.field(field, f"unknown kind {unknown[0]!r}; expected one of {', '.join(known)}")
    return sorted(set(kinds))


class GraphQueries:
    """Checks each question's arguments (errors name the field) and asks the store."""

    def __init__(self, store: GraphStore) -> None:
        self._store = store

    async def list_graphs(self, offset: int, limit: int) -> tuple[list[GraphInfo], int]:
        return await self._store.list_graphs(offset, limit)

    async def node(self, graph: str, node_id: str) -> Node:
        return await self._store.node(_required(graph, "graph"), _required(node_id, "node"))

    async def neighbors(self, graph: str, node_id: str, direction: str, kinds: Sequence[str], offset: int, limit: int) -> tuple[list[Neighbor], int]:
        if direction and direction not in DIRECTIONS:
            raise InvalidArgument.field("direction", f"must be one of {', '.join(DIRECTIONS)}")
        return await self._store.neighbors(
            _required(graph, "graph"), _required(node_id, "node"), direction or "both", _kinds(kinds, EDGE_KINDS, "edge_kinds"), offset, limit
        )

    async def search(self, graph: str, text: str, kinds: Sequence[str], offset: int, limit: int) -> tuple[list[Node], int]:
        return await self._store.search(_required(graph, "graph"), _required(text.strip(), "query"), _kinds(kinds, NODE_KINDS, "kinds"), offset, limit)

    async def path(self, graph: str, source: str, target: str) -> GraphPath:
        """A shortest path, edges followed either way (a caller of a caller is related too); NotFound when none."""
        _required(graph, "graph")
        start = await self._store.node(graph, _required(source, "source"))
        end = await self._store.node(graph, _required(target, "target"))
        adjacent: dict[str, list[tuple[str, Key]]] = {}
        for key in await self._store.edge_keys(graph):  # sorted, so the path found is the same on every call
            adjacent.setdefault(key[0], []).append((key[2], key))
            adjacent.setdefault(key[2], []).append((key[0], key))
        came: dict[str, tuple[str, Key] | None] = {start.id: None}
        queue = deque([(start.id, 0)])
        while queue and end.id not in came:
            current, depth = queue.popleft()
            if depth >= MAX_PATH_EDGES:
                continue
            for other, edge in adjacent.get(current, []):
                if other not in came:
                    came[other] = (current, edge)
                    queue.append((other, depth + 1))
        if end.id not in came:
            raise NotFound(f"no path from {source!r} to {target!r}", reason="GRAPH_PATH_NOT_FOUND",
                           metadata={"graph": graph, "source": source, "target": target})
        ids, keys = [end.id], []
        step = came[end.id]
        while step is not None:
            previous, key = step
            ids.append(previous)
            keys.append(key)
            step = came[previous]
        ids.reverse()
        keys.reverse()
        nodes = [start] + [await self._store.node(graph, i) for i in ids[1:-1]] + ([end] if end.id != start.id else [])
        return GraphPath(nodes, [await self._store.edge(graph, key) for key in keys])

    async def export(self, graph: str, fmt: str) -> tuple[str, str]:
        info = await self._store.get_graph(_required(graph, "graph"))
        content, media_type = export(info, await self._store.nodes(graph), await self._store.edges(graph), fmt or "json")
        size = len(content.encode())
        if size > MAX_EXPORT_BYTES:
            # A gRPC response carries at most 32 MiB here; say so rather than fail in the transport.
            raise FailedPrecondition(
                f"graph {graph!r} exports to {size // 2**20} MiB, more than the {MAX_EXPORT_BYTES // 2**20} MiB one "
                "response may carry", reason="GRAPH_EXPORT_TOO_LARGE", metadata={"graph": graph, "bytes": str(size)},
            )
        return content, media_type
