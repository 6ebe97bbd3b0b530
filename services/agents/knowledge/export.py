"""The graph as a file: JSON (this project's own form) or GraphML (networkx's writer, read by Gephi, yEd, Neo4j)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict

import networkx as nx

from services.agents.knowledge.graph import Edge, GraphInfo, Node, Span, edge_to_dict, node_to_dict
from services.runtime.errors import InvalidArgument

FORMATS = {"json": "application/json", "graphml": "application/graphml+xml"}


def _where(span: Span | None) -> str:
    return "" if span is None else f"{span.file}:{span.start_line}:{span.start_column}-{span.end_line}:{span.end_column}"


def to_json(info: GraphInfo, nodes: Sequence[Node], edges: Sequence[Edge]) -> str:
    body = {"graph": asdict(info), "nodes": [node_to_dict(n) for n in nodes], "edges": [edge_to_dict(e) for e in edges]}
    return json.dumps(body, indent=2, sort_keys=True) + "\n"


def to_graphml(info: GraphInfo, nodes: Sequence[Node], edges: Sequence[Edge]) -> str:
    """Every attribute is a string or a number, as GraphML wants; nested attributes travel as one JSON string."""
    graph: nx.MultiDiGraph = nx.MultiDiGraph(name=info.name, root=info.root)
    for node in nodes:
        graph.add_node(node.id, kind=node.kind, name=node.name, qualified_name=node.qualified_name,
                       span=_where(node.span), attributes=json.dumps(node.attributes, sort_keys=True))
    for edge in edges:
        graph.add_edge(edge.source, edge.target, key=edge.kind, kind=edge.kind, span=_where(edge.span),
                       attributes=json.dumps(edge.attributes, sort_keys=True))
    return "\n".join(nx.generate_graphml(graph, prettyprint=True)) + "\n"


def export(info: GraphInfo, nodes: Sequence[Node], edges: Sequence[Edge], fmt: str) -> tuple[str, str]:
    """(content, media type) of the graph in `fmt`, "json" or "graphml"."""
    if fmt not in FORMATS:
        raise InvalidArgument.field("format", f"must be one of {', '.join(FORMATS)}")
    content = to_json(info, nodes, edges) if fmt == "json" else to_graphml(info, nodes, edges)
    return content, FORMATS[fmt]
