"""The Knowledge Builder agent: builds (or updates) the code graph of a folder and stores it in the graph store."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from services.agents.base import AgentSpec, Artifact, FileSpan, Finding, NamedObject, RunContext, RunResult
from services.agents.knowledge.builder import build_graph
from services.agents.knowledge.describe import describe_entities
from services.agents.knowledge.graph import GraphInfo, graph_name
from services.agents.knowledge.metrics import import_cycles, import_graph, measure
from services.agents.knowledge.schema_input import SCHEMA_PROPERTIES, read_tables
from services.agents.knowledge.store import GraphStore
from services.runtime.clock import utcnow
from services.runtime.workspace import path_input_schema

NAME = "knowledge-builder"


def parameters() -> dict[str, Any]:
    schema = path_input_schema("Folder whose code graph is built, inside a workspace root.")
    schema["properties"] = {**schema["properties"], **SCHEMA_PROPERTIES}  # type: ignore[dict-item]
    return schema


def _findings(cycles: list[list[str]], syntax_errors: list[str]) -> list[Finding]:
    found = [
        Finding("import-cycle", NAME, "medium", "modules import each other in a cycle: " + " -> ".join(
            n.removeprefix("module/") for n in [*cycle, cycle[0]]), NamedObject("node", cycle[0]), category="architecture",
                fix_hint="move what both modules need into a third module, or import inside the function that needs it")
        for cycle in cycles
    ]
    found += [
        Finding("syntax-error", NAME, "low", "the file does not parse; it is in the graph without its contents",
                FileSpan(path, 1), category="syntax")
        for path in syntax_errors
    ]
    return sorted(found, key=Finding.sort_key)


def _report(info: GraphInfo, figures: dict[str, Any], summary: str) -> str:
    lines = [f"# Knowledge graph `{info.name}`", "", summary, "", "| kind | nodes |", "|---|---|"]
    lines += [f"| {k} | {n} |" for k, n in figures["nodes_by_kind"].items()]
    lines += ["", "| kind | edges |", "|---|---|"] + [f"| {k} | {n} |" for k, n in figures["edges_by_kind"].items()]
    lines += ["", "## Central modules", "", "| module | betweenness | fan-in | fan-out |", "|---|---|---|---|"]
    lines += [f"| `{m['id']}` | {m['betweenness']} | {m['fan_in']} | {m['fan_out']} |" for m in figures["central_modules"]]
    lines += ["", "## Import cycles", ""] + ([" -> ".join(c) for c in figures["import_cycles"]] or ["None."])
    return "\n".join(lines) + "\n"


def spec(graphs: GraphStore) -> AgentSpec:
    """The agent, writing to `graphs`; the runner calls it in a worker thread, so store calls get their own loop."""

    def run(arguments: dict[str, Any], context: RunContext) -> RunResult:
        root = context.folder(arguments)
        tables, _ = read_tables(root, arguments, max_files=context.limits.max_files)
        name = graph_name(root)
        previous = asyncio.run(graphs.files(name))
        context.progress("reading files", 0.1)
        build = build_graph(root, previous=previous, max_files=context.limits.max_files,
                            max_file_bytes=context.limits.max_file_bytes, tables=tables, check=context.check)
        context.progress("measuring", 0.7)
        nodes, figures = measure(build.nodes, build.edges)
        llm_status, tokens = context.model_status, (0, 0)
        if context.model is not None:
            nodes, llm_status, tokens = describe_entities(nodes, context.model)
        info = GraphInfo(name, str(root), len(nodes), len(build.edges), figures, utcnow().isoformat())
        context.check()
        saved = asyncio.run(graphs.save(info, nodes, build.edges, build.files))
        stats = build.stats
        kinds = Counter(n.kind for n in nodes)
        summary = (
            f"Graph {name}: {len(nodes)} nodes ({kinds['module']} modules, {kinds['class']} classes, "
            f"{kinds['function'] + kinds['method']} functions and methods, {kinds['entity']} entities) and {len(build.edges)} "
            f"edges; {stats.files_parsed} files parsed, {stats.files_reused} unchanged; "
            f"{figures['import_cycle_count']} import cycles."
        )
        return RunResult(
            findings=_findings(import_cycles(import_graph(nodes, build.edges)), stats.syntax_errors),
            artifacts=[Artifact("graph.md", "text/markdown", _report(info, figures, summary))],
            metrics={
                "graph": name, **figures,
                "files_parsed": stats.files_parsed, "files_reused": stats.files_reused,
                "nodes_added": saved.nodes_added, "nodes_updated": saved.nodes_updated, "nodes_removed": saved.nodes_removed,
                "edges_added": saved.edges_added, "edges_updated": saved.edges_updated, "edges_removed": saved.edges_removed,
                "tables": len(tables),
            },
            summary=summary,
            files_analyzed=stats.files_parsed + stats.files_reused,
            files_skipped=stats.files_skipped,
            lines_analyzed=stats.lines,
            input_tokens=tokens[0],
            output_tokens=tokens[1],
            llm_status=llm_status,
            truncated=stats.truncated,
        )

    return AgentSpec(
        name=NAME,
        display_name="Knowledge Builder",
        description="Builds a graph of a code base in Python, JavaScript, TypeScript and Go (repository, modules, classes, "
        "functions, tests, packages, database tables; contains, defines, imports, calls, inherits, references, mentions) "
        "with entities from READMEs and docstrings and graph metrics; stored for queries (node, neighbours, path, search) "
        "and export as JSON or GraphML.",
        parameters=parameters(),
        run=run,
        capabilities=("python", "javascript", "typescript", "go", "graph", "entities", "metrics", "graphml"),
        uses_model=True,
    )

