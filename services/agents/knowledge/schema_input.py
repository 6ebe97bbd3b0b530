"""The optional `schema` input (a DDL file, read by the Database Analyzer's loader) of two agents."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from services.agents.database.ddl import schema_from_ddl
from services.agents.database.folder import discover
from services.agents.database.model import DIALECTS
from services.agents.knowledge.schema import Table, tables_from_model
from services.runtime.errors import InvalidArgument

MAX_SCHEMA_BYTES = 5_000_000

SCHEMA_PROPERTIES: dict[str, Any] = {
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": 4096,
        "description": "A DDL file (relative to path) whose tables and foreign keys join the result; by default the "
        ".sql files under path that create or alter tables (in natural order, down migrations left out).",
    },
    "discover_schema": {"type": "boolean", "description": "Look for schema files when `schema` is not given; default true."},
    "dialect": {"enum": list(DIALECTS), "description": "SQL dialect of the schema file; default postgres."},
}


def read_tables(root: Path, arguments: Mapping[str, Any], *, max_files: int = 20000) -> tuple[list[Table], str]:
    """The tables of `input.schema`, or of the schema files found under `root`, and where they came from (file names,
    comma-separated; "" when there are none); errors name `input.schema`."""
    name = arguments.get("schema")
    if not name:
        return _discovered(root, arguments, max_files) if arguments.get("discover_schema", True) else ([], "")
    file = (root / str(name)).resolve()
    if not file.is_relative_to(root):
        raise InvalidArgument.field("input.schema", "must be a file inside input.path", reason="PATH_OUTSIDE_WORKSPACE")
    if not file.is_file():
        raise InvalidArgument.field("input.schema", f"is not a file: {name}", reason="PATH_NOT_FOUND")
    if file.stat().st_size > MAX_SCHEMA_BYTES:
        raise InvalidArgument.field("input.schema", f"is larger than {MAX_SCHEMA_BYTES} bytes")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgument.field("input.schema", f"cannot be read: {exc}") from None
    relative = file.relative_to(root).as_posix()
    schema, _ = schema_from_ddl([(relative, text)], str(arguments.get("dialect") or "postgres"))
    return tables_from_model(schema.tables), relative


def _discovered(root: Path, arguments: Mapping[str, Any], max_files: int) -> tuple[list[Table], str]:
    """Schema files under `root`, as the Database Analyzer's folder mode finds them; none when they add up to more than
    MAX_SCHEMA_BYTES (a data dump is not a schema, and parsing one would take the whole run)."""
    dialect = arguments.get("dialect")
    contents = discover(root, str(dialect) if dialect else None, max_files=max_files, max_bytes=MAX_SCHEMA_BYTES)
    sources = contents.schema_sources
    if not sources or sum(len(text) for _, text in sources) > MAX_SCHEMA_BYTES:
        return [], ""
    schema, _ = schema_from_ddl(sources, contents.dialect)
    return tables_from_model(schema.tables), ", ".join(label for label, _ in sources)
