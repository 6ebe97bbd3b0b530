"""Files the Database Analyzer reads, confined to the workspace roots, and the PostgreSQL connections it may use."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from services.runtime.errors import InvalidArgument
from services.runtime.file_walk import read_file_capped, walk_files
from services.runtime.workspace import real_roots, resolve_in_roots

SQL_SUFFIXES = (".sql", ".ddl")
MAX_TOTAL_BYTES = 64_000_000  # all SQL one run reads: parsing takes seconds per megabyte, and a run has 120 s


def natural_order(path: Path) -> list[object]:
    # Migrations named V2__, V10__ apply in numeric order, not in string order.
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.as_posix())]


def resolve_input_path(value: object, roots: Sequence[Path], field: str, *, kind: str = "any") -> tuple[Path, str]:
    """(real path, name relative to its workspace root) of an existing file or folder inside a root."""
    resolved = resolve_in_roots(value, roots, field, kind=kind)
    root = next(r for r in real_roots(roots) if resolved.is_relative_to(r))
    relative = resolved.relative_to(root).as_posix()
    return resolved, relative if relative != "." else resolved.name


def read_sql_sources(values: object, roots: Sequence[Path], field: str, *, max_files: int,
                     max_bytes: int) -> list[tuple[str, str]]:
    """(name, text) of each .sql file named, or found in a folder named, in the order given (folders: natural order)."""
    if not isinstance(values, list) or not values:
        raise InvalidArgument.field(field, "must be a non-empty list of paths")
    sources: list[tuple[str, str]] = []
    total = 0
    for position, value in enumerate(values):
        item = f"{field}[{position}]"
        path, label = resolve_input_path(value, roots, item)
        if path.is_dir():
            files, _ = walk_files(path, max_files=max_files)
            found = sorted((f for f in files if f.suffix.lower() in SQL_SUFFIXES), key=natural_order)
            if not found:
                raise InvalidArgument.field(item, f"folder {value} holds no {' or '.join(SQL_SUFFIXES)} files")
            named = [(f, f"{label}/{f.relative_to(path).as_posix()}") for f in found]
        else:
            named = [(path, label)]
        for file, name in named:
            if len(sources) >= max_files:
                raise InvalidArgument.field(field, f"names more than {max_files} files")
            sources.append((name, _read_text(file, item, max_bytes)))
            total += len(sources[-1][1])
            if total > MAX_TOTAL_BYTES:
                raise InvalidArgument.field(field, f"names more than {MAX_TOTAL_BYTES} bytes of SQL in all")
    return sources


def _read_text(path: Path, field: str, max_bytes: int) -> str:
    try:
        size, data = read_file_capped(path, max_bytes)  # no symlink in the path, no hard link to elsewhere
    except OSError as exc:
        raise InvalidArgument.field(field, f"{path.name} cannot be read ({exc.strerror or type(exc).__name__})",
                                    reason="PATH_NOT_READABLE") from None
    if data is None:
        raise InvalidArgument.field(field, f"{path.name} is {size} bytes, more than the {max_bytes} allowed")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidArgument.field(field, f"{path.name} is not UTF-8 text") from None


def parse_connections(raw: str) -> dict[str, str]:
    """MCPMESH_DATABASE_CONNECTIONS: a JSON object of name -> PostgreSQL URL. Callers name a connection, never a DSN."""
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValueError('expected a JSON object of name -> URL, such as {"shop": "postgresql://user@host/db"}')
    for name, url in value.items():
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
            raise ValueError(f"connection name {name!r}: use letters, digits, '_', '.' or '-'")
        if not url.startswith(("postgresql://", "postgres://")):
            raise ValueError(f"connection {name!r}: expected a postgresql:// URL")
    return dict(value)


def connection_dsn(value: object, connections: Mapping[str, str], field: str) -> str:
    """The DSN of the configured connection named `value`; the error lists names, never a DSN (it may hold a password)."""
    if not isinstance(value, str) or not value:
        raise InvalidArgument.field(field, "is required and must be the name of a configured connection")
    if value not in connections:
        known = ", ".join(sorted(connections)) or "none (set MCPMESH_DATABASE_CONNECTIONS)"
        # The value is not echoed: a caller who pasted a DSN here would see its password in errors and logs.
        raise InvalidArgument.field(field, f"is not the name of a configured connection; configured: {known}",
                                    reason="CONNECTION_NOT_CONFIGURED")
    return connections[value]
