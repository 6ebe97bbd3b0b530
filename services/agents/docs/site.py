"""The whole docs site as files: mkdocs.yml and docs/*.md, the same bytes for the same input."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from services.agents.docs.api_model import ApiObject, LoadProblem, load_api
from services.agents.docs.architecture import architecture_page
from services.agents.docs.render import Coverage, coverage, coverage_page, module_page, schema_page
from services.agents.knowledge.builder import build_graph
from services.agents.knowledge.graph import FileRecord
from services.agents.knowledge.schema import Table

MKDOCS_EXTENSIONS = """markdown_extensions:
  - tables
  - pymdownx.superfences:
      custom_fences:
        - name: mermaid
          class: mermaid
          format: !!python/name:pymdownx.superfences.fence_code_format
"""


@dataclass
class Site:
    """Files by path (`mkdocs.yml`, `docs/index.md`, `docs/api/shop.models.md`, ...) and what they cover."""

    files: dict[str, str]
    coverage: Coverage
    modules: int
    problems: list[LoadProblem] = field(default_factory=list)
    truncated: bool = False
    places: dict[str, tuple[str, int]] = field(default_factory=dict)  # dotted path -> (file, line) of each object
    files_reused: int = 0  # Python files whose cached reading (from the Knowledge Builder) was reused


def _places(objects: Sequence[ApiObject], into: dict[str, tuple[str, int]]) -> dict[str, tuple[str, int]]:
    for obj in objects:
        into[obj.path] = (obj.file, max(obj.line, 1))
        _places(obj.members, into)
    return into


def _yaml_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def generate_site(
    root: Path,
    *,
    project: str = "",
    tables: Sequence[Table] = (),
    schema_origin: str = "",
    max_files: int = 20000,
    previous: Mapping[str, FileRecord] | None = None,
    check: Callable[[], None] = lambda: None,
) -> Site:
    """Reads `root` statically (griffe for the API, the Knowledge Builder's graph for imports) and writes the site.
    `previous` are the Knowledge Builder's stored file records: files unchanged since its last run are not parsed."""
    project = project or root.name
    modules, problems, truncated = load_api(root, max_files=max_files, check=check)
    graph = build_graph(root, previous=previous, max_files=max_files, check=check)
    result = coverage(modules)
    files: dict[str, str] = {}
    for module in modules:
        files[f"docs/api/{module.path}.md"] = module_page(module)
    files["docs/coverage.md"] = coverage_page(result, problems)
    files["docs/architecture.md"] = architecture_page(project, graph.nodes, graph.edges)
    if tables:
        files["docs/schema.md"] = schema_page(tables, schema_origin or "schema")
    index = [
        f"# {project}", "",
        "Reference documentation generated from the source code, read statically (griffe): the code was not imported "
        "or run. No language model wrote any of it.", "",
        f"- [Architecture](architecture.md): the import graph of {sum(1 for n in graph.nodes if n.kind == 'module')} modules, "
        "import cycles and central modules",
        f"- [Docstring coverage](coverage.md): {result.percent:.1f} % of {result.total} public objects",
    ]
    if tables:
        index.append(f"- [Database schema](schema.md): {len(tables)} tables and their ER diagram")
    index += ["", "## API reference", "", "| module | summary |", "|---|---|"]
    for module in modules:
        summary = module.docstring.split("\n\n")[0].replace("\n", " ").replace("|", "\\|")
        index.append(f"| [`{module.path}`](api/{module.path}.md) | {summary} |")
    files["docs/index.md"] = "\n".join(index) + "\n"
    nav = ["nav:", "  - Home: index.md", "  - Architecture: architecture.md", "  - Coverage: coverage.md"]
    if tables:
        nav.append("  - Database schema: schema.md")
    nav.append("  - API reference:")
    nav += [f"      - {module.path}: api/{module.path}.md" for module in modules]
    files["mkdocs.yml"] = f"site_name: {_yaml_text(project)}\ndocs_dir: docs\n" + "\n".join(nav) + "\n" + MKDOCS_EXTENSIONS
    return Site(dict(sorted(files.items())), result, len(modules), problems, truncated or graph.stats.truncated, _places(modules, {}),
                graph.stats.files_reused)
