"""The Documentation Generator agent: writes the docs site of a folder into the artifact store."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

from services.agents.base import AgentSpec, Artifact, FileSpan, Finding, RunContext, RunResult
from services.agents.docs.site import generate_site
from services.agents.knowledge.graph import graph_name
from services.agents.knowledge.schema_input import SCHEMA_PROPERTIES, read_tables
from services.agents.knowledge.store import GraphStore
from services.runtime.artifacts import ArtifactStore
from services.runtime.workspace import path_input_schema

NAME = "documentation-generator"
PARALLEL_WRITES = 8  # pages written at once: S3 round trips overlap, a local folder does not mind


def parameters() -> dict[str, Any]:
    schema = path_input_schema("Folder to document, inside a workspace root.")
    schema["properties"] = {
        **schema["properties"],  # type: ignore[dict-item]
        **SCHEMA_PROPERTIES,
        "project": {"type": "string", "minLength": 1, "maxLength": 100, "description": "Site title; default the folder's name."},
    }
    return schema


def artifact_prefix(graph: str) -> str:
    """Where a folder's docs site lives in the artifact store; the same folder always writes to the same place."""
    return f"docs/{graph}/"


def _missing_docstrings(site_missing: list[str], where: dict[str, tuple[str, int]]) -> list[Finding]:
    return [
        Finding("missing-docstring", NAME, "info", f"public object `{path}` has no docstring", FileSpan(*where[path]),
                category="documentation", fix_hint="add a docstring: the API reference shows it")
        for path in site_missing if path in where
    ]


def spec(artifacts: ArtifactStore, graphs: GraphStore | None = None) -> AgentSpec:
    """The agent, writing pages to `artifacts` and reading what the Knowledge Builder cached in `graphs` (files it
    parsed and that have not changed since are not parsed again); the runner calls it in a worker thread, so store
    calls get their own loop."""

    def run(arguments: dict[str, Any], context: RunContext) -> RunResult:
        root = context.folder(arguments)
        tables, origin = read_tables(root, arguments, max_files=context.limits.max_files)
        context.progress("reading code", 0.1)
        graph = graph_name(root)
        previous = asyncio.run(graphs.files(graph)) if graphs is not None else {}
        site = generate_site(root, project=str(arguments.get("project") or root.name), tables=tables,
                             schema_origin=origin, max_files=context.limits.max_files, previous=previous,
                             check=context.check)
        prefix = artifact_prefix(graph)
        manifest = {name: hashlib.sha256(text.encode()).hexdigest() for name, text in site.files.items()}

        async def store() -> None:
            # Pages from an earlier run that this run did not write (a module that was removed) go away.
            old, after = [], ""
            while True:
                page, more = await artifacts.list(prefix, after, 100)
                old += [a.name for a in page]
                if not more or not page:
                    break
                after = page[-1].name
            for name in sorted(set(old) - {prefix + n for n in site.files} - {prefix + "manifest.json"}):
                await artifacts.delete(name)
            slots = asyncio.Semaphore(PARALLEL_WRITES)

            async def put(name: str, text: str) -> None:
                async with slots:
                    context.check()
                    await artifacts.put(prefix + name, text.encode())

            await asyncio.gather(*(put(name, text) for name, text in site.files.items()))
            await artifacts.put(prefix + "manifest.json", (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())

        context.progress("storing pages", 0.8)
        asyncio.run(store())
        where = site.places
        coverage = site.coverage
        summary = (
            f"Documented {site.modules} modules in {len(site.files)} files under {prefix}; docstring coverage "
            f"{coverage.percent:.1f} % ({coverage.documented} of {coverage.total} public objects)"
            + (f"; {len(site.problems)} modules could not be read." if site.problems else ".")
        )
        return RunResult(
            findings=sorted(_missing_docstrings(coverage.missing, where), key=Finding.sort_key),
            artifacts=[Artifact("index.md", "text/markdown", site.files["docs/index.md"])],
            metrics={
                "artifact_prefix": prefix,
                "files": sorted(prefix + n for n in site.files),
                "modules": site.modules,
                "docstring_coverage": coverage.percent,
                "documented": coverage.documented,
                "public_objects": coverage.total,
                "unreadable_modules": [p.module for p in site.problems],
                "tables": len(tables),
                "files_reused": site.files_reused,
            },
            summary=summary,
            files_analyzed=site.modules,
            llm_status=context.model_status,
            truncated=site.truncated,
        )

    return AgentSpec(
        name=NAME,
        display_name="Documentation Generator",
        description="Writes an MkDocs site for a folder, reading the code statically with griffe (never importing it): "
        "API reference per module with signatures, parameters, returns and raises, docstring coverage, an architecture "
        "overview with a Mermaid import diagram, and the database schema with its ER diagram. Stored as artifacts.",
        parameters=parameters(),
        run=run,
        capabilities=("python", "markdown", "mkdocs", "mermaid"),
    )

