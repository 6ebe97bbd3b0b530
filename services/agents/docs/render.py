"""Markdown pages of the docs site: API reference per module, docstring coverage, architecture, database schema."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.agents.docs.api_model import ApiObject, LoadProblem
from services.agents.knowledge.schema import Table


def _cell(text: str) -> str:
    """Table cells hold one line; a pipe would end the cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _code(text: str) -> str:
    return f"`{text}`" if text else ""


def _params_table(params: Sequence[object]) -> list[str]:
    lines = ["| name | type | default | description |", "|---|---|---|---|"]
    for p in params:
        lines.append(f"| `{p.name}` | {_code(_cell(p.annotation))} | {_code(_cell(p.default))} | {_cell(p.description)} |")  # type: ignore[attr-defined]
    return lines


def _function(obj: ApiObject, level: int, owner: str = "") -> list[str]:
    title = f"{owner}.{obj.name}" if owner else obj.name
    lines = [f"{'#' * level} `{title}`", "", "```python", obj.signature, "```", ""]
    if obj.docstring:
        lines += [obj.docstring, ""]
    if obj.parameters:
        lines += ["**Parameters**", "", *_params_table(obj.parameters), ""]
    if obj.returns:
        lines += ["**Returns**", "", "| type | description |", "|---|---|"]
        lines += [f"| {_code(_cell(r.annotation))} | {_cell(r.description)} |" for r in obj.returns] + [""]
    if obj.raises:
        lines += ["**Raises**", "", "| exception | when |", "|---|---|"]
        lines += [f"| {_code(_cell(r.annotation))} | {_cell(r.description)} |" for r in obj.raises] + [""]
    lines += [f"*Defined in `{obj.file}`, line {obj.line}.*", ""]
    return lines


def _attributes(attributes: Sequence[ApiObject]) -> list[str]:
    lines = ["| name | type | value | description |", "|---|---|---|---|"]
    for a in attributes:
        lines.append(f"| `{a.name}` | {_code(_cell(a.signature))} | {_code(_cell(a.value)[:80])} | {_cell(a.docstring)} |")
    return [*lines, ""]


def _class(obj: ApiObject, level: int) -> list[str]:
    lines = [f"{'#' * level} `{obj.name}`", ""]
    if obj.signature:
        lines += ["```python", obj.signature, "```", ""]
    if obj.bases:
        lines += ["Bases: " + ", ".join(f"`{b}`" for b in obj.bases), ""]
    if obj.docstring:
        lines += [obj.docstring, ""]
    if obj.parameters:
        lines += ["**Parameters**", "", *_params_table(obj.parameters), ""]
    attributes = [m for m in obj.members if m.kind == "attribute"]
    if attributes:
        lines += ["**Attributes**", "", *_attributes(attributes)]
    lines += [f"*Defined in `{obj.file}`, line {obj.line}.*", ""]
    for member in obj.members:
        if member.kind == "method":
            lines += _function(member, level + 1, obj.name)
        elif member.kind == "class":
            lines += _class(member, level + 1)
    return lines


def module_page(module: ApiObject) -> str:
    lines = [f"# `{module.path}`", ""]
    if module.docstring:
        lines += [module.docstring, ""]
    lines += [f"Source: `{module.file}`", ""]
    attributes = [m for m in module.members if m.kind == "attribute"]
    classes = [m for m in module.members if m.kind == "class"]
    functions = [m for m in module.members if m.kind == "function"]
    if attributes:
        lines += ["## Attributes", "", *_attributes(attributes)]
    if classes:
        lines += ["## Classes", ""]
        for cls in classes:
            lines += _class(cls, 3)
    if functions:
        lines += ["## Functions", ""]
        for function in functions:
            lines += _function(function, 3)
    if not module.members:
        lines += ["This module has no public members.", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


@dataclass(frozen=True)
class Coverage:
    """Docstring coverage of public modules, classes, functions and methods (attributes are not counted)."""

    documented: int
    total: int
    by_module: list[tuple[str, int, int]]  # (module, documented, total)
    missing: list[str]  # dotted paths of public objects without a docstring

    @property
    def percent(self) -> float:
        return round(100.0 * self.documented / self.total, 1) if self.total else 100.0


def coverage(modules: Sequence[ApiObject]) -> Coverage:
    by_module: list[tuple[str, int, int]] = []
    missing: list[str] = []

    def visit(obj: ApiObject, counts: list[int]) -> None:
        if obj.kind != "attribute":
            counts[1] += 1
            if obj.documented:
                counts[0] += 1
            else:
                missing.append(obj.path)
        for member in obj.members:
            visit(member, counts)

    for module in modules:
        counts = [0, 0]
        visit(module, counts)
        by_module.append((module.path, counts[0], counts[1]))
    return Coverage(sum(d for _, d, _ in by_module), sum(t for _, _, t in by_module), by_module, missing)


def coverage_page(result: Coverage, problems: Sequence[LoadProblem]) -> str:
    lines = ["# Docstring coverage", "",
             f"{result.documented} of {result.total} public modules, classes, functions and methods have a docstring "
             f"({result.percent:.1f} %).", "",
             "| module | documented | total | coverage |", "|---|---|---|---|"]
    for module, documented, total in result.by_module:
        share = 100.0 * documented / total if total else 100.0
        lines.append(f"| [`{module}`](api/{module}.md) | {documented} | {total} | {share:.1f} % |")
    lines.append("")
    if result.missing:
        lines += ["## Without a docstring", ""] + [f"- `{path}`" for path in result.missing] + [""]
    if problems:
        lines += ["## Not read", ""] + [f"- `{p.module}`: {_cell(p.message)}" for p in problems] + [""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _mermaid_id(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def er_diagram(tables: Sequence[Table]) -> str:
    """A Mermaid erDiagram: every table with its columns (type, PK, FK), and one relation per foreign key."""
    lines = ["erDiagram"]
    for table in tables:
        references = {c for key in table.foreign_keys for c in key.columns}
        lines.append(f"    {_mermaid_id(table.name)} {{")
        for column in table.columns:
            marks = ",".join(m for m, on in (("PK", column.primary_key), ("FK", column.name in references)) if on)
            kind = _mermaid_id(column.type or "unknown")
            lines.append(f"        {kind} {_mermaid_id(column.name)}{' ' + marks if marks else ''}")
        lines.append("    }")
    for table in tables:
        for key in table.foreign_keys:
            # Parent side: exactly one, or zero or one when the key may be null; child side: a parent row may
            # have any number of children, none included (the Database Analyzer's er_diagram draws the same).
            nullable = any(c.nullable for c in table.columns if c.name in key.columns)
            relation = f'{"|o" if nullable else "||"}--o{{'
            lines.append(f'    {_mermaid_id(key.table)} {relation} {_mermaid_id(table.name)} : "{", ".join(key.columns)}"')
    return "\n".join(lines)


def schema_page(tables: Sequence[Table], origin: str) -> str:
    lines = ["# Database schema", "", f"Read from `{origin}`: {len(tables)} tables.", "", "```mermaid", er_diagram(tables), "```", ""]
    for table in tables:
        lines += [f"## `{table.name}`", "", "| column | type | nullable | key |", "|---|---|---|---|"]
        references = {c: key for key in table.foreign_keys for c in key.columns}
        for column in table.columns:
            key = "primary" if column.primary_key else ""
            if column.name in references:
                target = references[column.name]
                key = (key + ", " if key else "") + f"→ `{target.table}`({', '.join(target.referenced_columns)})"
            lines.append(f"| `{column.name}` | {_code(column.type)} | {'yes' if column.nullable else 'no'} | {key} |")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"
