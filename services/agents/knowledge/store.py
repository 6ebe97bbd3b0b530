"""The graph store port: where code graphs live (SQLite by default), written whole and read a node at a time."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from services.agents.knowledge.graph import Edge, FileRecord, GraphInfo, Node
from services.runtime.errors import InvalidArgument

DIRECTIONS = ("out", "in", "both")
_CAMEL_PARTS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def _words(text: str) -> list[str]:
    """Lower-case words of a name or a search, each once: `OrderRepository.save_all` gives order repository save all."""
    return list(dict.fromkeys(w.lower() for part in re.split(r"[^A-Za-z0-9]+", text) for w in _CAMEL_PARTS.findall(part)))


def search_terms(node: Node) -> str:
    """Words of a node's names as people type them, what `search` matches a query's words against."""
    return " ".join(_words(node.qualified_name))


def query_words(text: str) -> list[str]:
    """The words of a search as the names' words are made, each once; InvalidArgument when there is no word."""
    words = _words(text)
    if not words:
        raise InvalidArgument.field("query", "must contain a letter or a digit")
    return words


@dataclass(frozen=True)
class SaveCounts:
    """What one save changed, so a rebuild of an unchanged tree shows it wrote nothing."""

    nodes_added: int = 0
    nodes_updated: int = 0
    nodes_removed: int = 0
    edges_added: int = 0
    edges_updated: int = 0
    edges_removed: int = 0


@dataclass(frozen=True)
class Neighbor:
    """A node next to the one asked about, and the edge between them (its direction is the edge's own)."""

    edge: Edge
    node: Node


class GraphStore(Protocol):
    async def save(self, info: GraphInfo, nodes: Sequence[Node], edges: Sequence[Edge], files: Sequence[FileRecord]) -> SaveCounts:
        """Makes the stored graph `info.name` exactly these nodes, edges and file records, in one transaction,
        writing only the rows that changed."""
        ...

    async def files(self, graph: str) -> dict[str, FileRecord]:
        """The file records of the last save, by path; empty for a graph never saved."""
        ...

    async def get_graph(self, graph: str) -> GraphInfo:
        """NotFound when there is no such graph."""
        ...

    async def list_graphs(self, offset: int, limit: int) -> tuple[list[GraphInfo], int]:
        """Graphs by name, one slice, and how many there are."""
        ...

    async def node(self, graph: str, node_id: str) -> Node:
        """NotFound when the graph or the node does not exist."""
        ...

    async def neighbors(
        self, graph: str, node_id: str, direction: str, kinds: Sequence[str], offset: int, limit: int
    ) -> tuple[list[Neighbor], int]:
        """Edges leaving ("out"), entering ("in") or touching ("both") a node, of `kinds` (all when empty), with the
        node at their other end; ordered by (direction, kind, other node id). NotFound when the node does not exist."""
        ...

    async def search(self, graph: str, text: str, kinds: Sequence[str], offset: int, limit: int) -> tuple[list[Node], int]:
        """Nodes whose name or qualified name has words starting with each word of `text` (full-text search);
        exact name matches first, then by relevance and id."""
        ...

    async def nodes(self, graph: str) -> list[Node]:
        """Every node of a graph by id."""
        ...

    async def edges(self, graph: str) -> list[Edge]:
        """Every edge of a graph by (source, kind, target)."""
        ...

    async def edge_keys(self, graph: str) -> list[tuple[str, str, str]]:
        """(source, kind, target) of every edge, sorted: the graph's shape without its bodies, for path searches."""
        ...

    async def edge(self, graph: str, key: tuple[str, str, str]) -> Edge:
        """One edge by (source, kind, target); NotFound when there is none."""
        ...

    async def delete(self, graph: str) -> None:
        """Removes a graph and everything in it; nothing happens when it does not exist."""
        ...

    async def ping(self) -> None:
        """Raises when the store cannot be reached."""
        ...
