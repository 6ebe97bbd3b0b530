"""The code graph's records: nodes with their source spans, typed edges, and how node ids are made."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Node kinds and edge kinds, each list in the order documents and exports show them.
NODE_KINDS = ("repository", "file", "module", "class", "function", "method", "test", "package", "table", "entity")
EDGE_KINDS = ("contains", "defines", "imports", "calls", "inherits", "references", "mentions")

Attributes = dict[str, Any]  # JSON values only (str, int, float, bool, lists of those)


@dataclass(frozen=True)
class Span:
    """Where a node or edge is in the source: a path relative to the repository, lines 1-based, columns 0-based."""

    file: str
    start_line: int
    start_column: int
    end_line: int
    end_column: int


@dataclass(frozen=True)
class Node:
    """One thing in the code base. `id` is made from its kind and qualified name, so it is the same on every run."""

    id: str
    kind: str
    name: str  # short name, such as "place_order"
    qualified_name: str  # such as "shop.service.place_order"; a path for files
    span: Span | None = None  # None for the repository, external packages, tables and entities
    attributes: Attributes = field(default_factory=dict)


@dataclass(frozen=True)
class Edge:
    """A typed, directed relation; one edge per (source, kind, target), at the first place it was seen."""

    source: str
    kind: str
    target: str
    span: Span | None = None
    attributes: Attributes = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.source, self.kind, self.target)


@dataclass(frozen=True)
class GraphInfo:
    """A stored graph: one per analysed folder, named by `graph_name(root)`."""

    name: str
    root: str  # the folder it was built from
    node_count: int = 0
    edge_count: int = 0
    metrics: Attributes = field(default_factory=dict)
    updated: str = ""  # ISO 8601 time of the last build


@dataclass(frozen=True)
class FileRecord:
    """One source file as last parsed: its content hash and what was extracted from it (JSON), reused when unchanged."""

    path: str
    sha256: str
    extraction: str


def node_id(kind: str, qualified_name: str) -> str:
    """`module/shop.service`, `method/shop.models.Order.total`, `file/README.md`: readable, stable, no colons."""
    return f"{kind}/{qualified_name}" if qualified_name else kind


REPOSITORY_ID = node_id("repository", "")


def graph_name(root: Path) -> str:
    """A stable graph name for a folder: its base name (letters, digits, '-') and a short hash of its real path."""
    base = "".join(c if c.isalnum() else "-" for c in root.name.lower()).strip("-") or "root"
    return f"{base[:40]}-{hashlib.sha256(str(root).encode()).hexdigest()[:8]}"


def span_to_list(span: Span | None) -> list[object] | None:
    return None if span is None else [span.file, span.start_line, span.start_column, span.end_line, span.end_column]


def span_from_list(value: list[object] | None) -> Span | None:
    if value is None:
        return None
    file, start_line, start_column, end_line, end_column = value
    return Span(str(file), int(str(start_line)), int(str(start_column)), int(str(end_line)), int(str(end_column)))


def node_to_dict(node: Node) -> dict[str, Any]:
    return {"id": node.id, "kind": node.kind, "name": node.name, "qualified_name": node.qualified_name,
            "span": span_to_list(node.span), "attributes": node.attributes}


def node_from_dict(body: dict[str, Any]) -> Node:
    return Node(body["id"], body["kind"], body["name"], body["qualified_name"], span_from_list(body["span"]), body["attributes"])


def edge_to_dict(edge: Edge) -> dict[str, Any]:
    return {"source": edge.source, "kind": edge.kind, "target": edge.target, "span": span_to_list(edge.span),
            "attributes": edge.attributes}


def edge_from_dict(body: dict[str, Any]) -> Edge:
    return Edge(body["source"], body["kind"], body["target"], span_from_list(body["span"]), body["attributes"])
