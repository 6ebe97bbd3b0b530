"""Built-in tools shipped with the tools service."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from services.runtime.errors import InvalidArgument
from services.runtime.workspace import resolve_in_roots
from services.tools.file_inventory import inventory
from services.tools.file_tools import (
    FILE_STATS_SCHEMA,
    LIST_FILES_SCHEMA,
    READ_FILE_SCHEMA,
    SEARCH_FILES_SCHEMA,
    FileTools,
)
from services.tools.registry import ToolAnnotations, ToolDefinition, run_in_thread

# Built-in file tools only read inside the workspace: safe to cache and to repeat.
READ_ONLY = ToolAnnotations(read_only=True, idempotent=True, destructive=False, open_world=False)

FILE_INVENTORY_SCHEMA = {
    "type": "object",
    "properties": {
        "path": {"type": "string", "description": "Folder to inventory, inside a workspace root."},
        "max_files": {"type": "integer", "minimum": 0, "description": "Most files to list; 0 means the server's limit."},
    },
    "required": ["path"],
    "additionalProperties": False,
}


def file_inventory_tool(roots: Sequence[Path], max_files: int) -> ToolDefinition:
    def run(arguments: dict[str, Any]) -> dict[str, Any]:
        root = resolve_in_roots(arguments.get("path"), roots, "arguments.path", kind="folder")
        limit = int(arguments.get("max_files") or max_files)
        if limit < 0:
            raise InvalidArgument.field("arguments.max_files", "must not be negative")
        found = inventory(root, max_files=min(limit, max_files))
        return {
            "root": str(root),
            "total_files": found.total_files,
            "total_lines": found.total_lines,
            "total_bytes": found.total_bytes,
            "truncated": found.truncated,
            "languages": [asdict(language) for language in found.languages],
            "files": [asdict(entry) for entry in found.files],
        }

    return ToolDefinition(
        name="file_inventory",
        description="Lists the files under a folder with their language, lines and bytes, and totals per language.",
        input_schema=FILE_INVENTORY_SCHEMA,
        run=run_in_thread(run),
        annotations=READ_ONLY,
    )


def file_tools(roots: Sequence[Path], max_files: int) -> list[ToolDefinition]:
    tools = FileTools(roots, max_files)
    described = [
        ("list_files", "Lists files under a folder (optionally matching a glob), one page at a time.", LIST_FILES_SCHEMA, tools.list_files),
        ("read_file", "Reads a text file, or a range of its lines, up to a size limit.", READ_FILE_SCHEMA, tools.read_file),
        ("search_files", "Searches file contents line by line with a regular expression, with time and result limits.", SEARCH_FILES_SCHEMA, tools.search_files),
        ("file_stats", "Size, lines and dates of a file; counts, size, largest files and extensions of a folder.", FILE_STATS_SCHEMA, tools.file_stats),
    ]
    return [
        ToolDefinition(name=name, description=text, input_schema=schema, run=run_in_thread(function), annotations=READ_ONLY)
        for name, text, schema, function in described
    ]


def builtin_tools(roots: Sequence[Path], max_files: int) -> list[ToolDefinition]:
    return [file_inventory_tool(roots, max_files), *file_tools(roots, max_files)]
