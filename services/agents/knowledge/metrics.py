"""Graph metrics with networkx: fan-in and fan-out, import cycles, central modules, most called functions."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

import networkx as nx

from services.agents.knowledge.graph import EDGE_KINDS, NODE_KINDS, Edge, Node

TOP = 5  # how many central modules and most called functions are reported
MAX_CYCLES = 50  # import cycles listed in the figures; import_cycle_count has them all
_CALLABLE = ("function", "method", "test", "class")


def import_graph(nodes: list[Node], edges: list[Edge]) -> nx.DiGraph:
    """Project modules and the imports between them (external packages left out), in id order."""
    graph: nx.DiGraph = nx.DiGraph()
    graph.add_nodes_from(n.id for n in nodes if n.kind == "module")
    graph.add_edges_from((e.source, e.target) for e in edges if e.kind == "imports" and e.target.startswith("module/"))
    return graph


def _call_graph(nodes: list[Node], edges: list[Edge]) -> nx.DiGraph:
    graph: nx.DiGraph = nx.DiGraph()
    graph.add_nodes_from(n.id for n in nodes if n.kind in _CALLABLE)
    graph.add_edges_from((e.source, e.target) for e in edges if e.kind == "calls")
    return graph


def import_cycles(imports: nx.DiGraph) -> list[list[str]]:
    """Each group of modules that import each other (directly or round a loop): one cycle through it, smallest id first."""
    cycles: list[list[str]] = []
    for component in nx.strongly_connected_components(imports):
        if len(component) == 1 and not imports.has_edge(*(next(iter(component)),) * 2):
            continue
        start = min(component)
        loop = nx.find_cycle(imports.subgraph(component), source=start)
        cycles.append([edge[0] for edge in loop])
    return sorted(cycles)


def measure(nodes: list[Node], edges: list[Edge]) -> tuple[list[Node], dict[str, Any]]:
    """Nodes with fan_in/fan_out set (modules: imports; callables: calls) and the graph's own figures."""
    imports = import_graph(nodes, edges)
    calls = _call_graph(nodes, edges)
    measured: list[Node] = []
    for node in nodes:
        graph = imports if node.kind == "module" else calls if node.kind in _CALLABLE else None
        if graph is None:
            measured.append(node)
            continue
        fan = {"fan_in": graph.in_degree(node.id), "fan_out": graph.out_degree(node.id)}
        measured.append(replace(node, attributes={**node.attributes, **fan}))
    cycles = import_cycles(imports)
    betweenness = nx.betweenness_centrality(imports) if imports.number_of_nodes() else {}
    central = sorted(imports.nodes, key=lambda n: (-round(betweenness[n], 6), -imports.in_degree(n), n))[:TOP]
    called = sorted((n for n in calls.nodes if calls.in_degree(n)), key=lambda n: (-calls.in_degree(n), n))[:TOP]
    node_kinds = Counter(n.kind for n in nodes)
    edge_kinds = Counter(e.kind for e in edges)
    figures = {
        "nodes": len(nodes),
        "edges": len(edges),
        "nodes_by_kind": {k: node_kinds[k] for k in NODE_KINDS if node_kinds[k]},
        "edges_by_kind": {k: edge_kinds[k] for k in EDGE_KINDS if edge_kinds[k]},
        "import_cycles": cycles[:MAX_CYCLES],
        "import_cycle_count": len(cycles),
        "central_modules": [
            {"id": n, "betweenness": round(betweenness[n], 4), "fan_in": imports.in_degree(n), "fan_out": imports.out_degree(n)}
            for n in central
        ],
        "most_called": [{"id": n, "fan_in": calls.in_degree(n)} for n in called],
    }
    return measured, figures
