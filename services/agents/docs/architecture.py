"""The architecture page: a Mermaid diagram of the import graph, import cycles, central modules and dependencies."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from services.agents.knowledge.graph import Edge, Node
from services.agents.knowledge.metrics import import_cycles, import_graph, measure

MAX_DIAGRAM_NODES = 40  # past this many modules the diagram shows packages instead, so it stays readable


def _group(module: str, depth: int) -> str:
    return ".".join(module.split(".")[:depth])


def import_diagram(nodes: Sequence[Node], edges: Sequence[Edge]) -> tuple[str, int]:
    """Mermaid flowchart of project modules and their imports, and the package depth it was drawn at (0 = modules)."""
    modules = sorted(n.qualified_name for n in nodes if n.kind == "module")
    pairs = sorted({(e.source.removeprefix("module/"), e.target.removeprefix("module/"))
                    for e in edges if e.kind == "imports" and e.target.startswith("module/")})
    depth = 0
    if len(modules) > MAX_DIAGRAM_NODES:
        depth = max(d for d in range(1, 6) if len({_group(m, d) for m in modules}) <= MAX_DIAGRAM_NODES or d == 1)
        modules = sorted({_group(m, depth) for m in modules})
        pairs = sorted({(_group(a, depth), _group(b, depth)) for a, b in pairs if _group(a, depth) != _group(b, depth)})
    ids = {m: f"m{i}" for i, m in enumerate(modules)}
    lines = ["flowchart LR"]
    lines += [f'    {ids[m]}["{m}"]' for m in modules]
    lines += [f"    {ids[a]} --> {ids[b]}" for a, b in pairs]
    return "\n".join(lines), depth


def architecture_page(project: str, nodes: Sequence[Node], edges: Sequence[Edge]) -> str:
    diagram, depth = import_diagram(nodes, edges)
    _, figures = measure(list(nodes), list(edges))
    cycles = import_cycles(import_graph(list(nodes), list(edges)))
    modules = [n for n in nodes if n.kind == "module"]
    lines = [
        f"# Architecture of {project}", "",
        f"{len(modules)} modules; an arrow goes from a module to a module it imports"
        + (f" (grouped by the first {depth} parts of their names, as there are more than {MAX_DIAGRAM_NODES} modules)." if depth else "."),
        "", "```mermaid", diagram, "```", "",
        "## Central modules", "",
        "Modules that most import paths go through (betweenness centrality), then the most imported.", "",
        "| module | betweenness | imported by | imports |", "|---|---|---|---|",
    ]
    for item in figures["central_modules"]:
        lines.append(f"| `{item['id'].removeprefix('module/')}` | {item['betweenness']:.4f} | {item['fan_in']} | {item['fan_out']} |")
    lines += ["", "## Import cycles", ""]
    if cycles:
        for cycle in cycles:
            names = [f"`{m.removeprefix('module/')}`" for m in [*cycle, cycle[0]]]
            lines.append("- " + " → ".join(names))
    else:
        lines.append("None.")
    imported = Counter(e.target.removeprefix("package/") for e in edges if e.kind == "imports" and e.target.startswith("package/"))
    stdlib = {n.name for n in nodes if n.kind == "package" and n.attributes.get("stdlib")}
    external = sorted(p for p in imported if p not in stdlib)
    lines += ["", "## External dependencies", ""]
    if external:
        lines += ["| package | imported by modules |", "|---|---|"] + [f"| `{p}` | {imported[p]} |" for p in external]
    else:
        lines.append("None beyond the standard library.")
    return "\n".join(lines).rstrip("\n") + "\n"
