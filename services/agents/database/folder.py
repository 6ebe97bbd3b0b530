"""What a folder holds for the Database Analyzer: schema files, query files and SQLite databases, and their dialect."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from services.agents.database.inputs import MAX_TOTAL_BYTES, SQL_SUFFIXES, natural_order
from services.agents.database.sqlite_file import SQLITE_HEADER
from services.runtime.file_walk import open_file, read_file_capped, walk_files

SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3", ".db3")
# A file that creates or alters tables or indexes is schema; any other .sql file holds queries.
_SCHEMA_STATEMENT = re.compile(r"(?im)^\s*(?:CREATE\s+(?:OR\s+REPLACE\s+)?(?:UNLOGGED\s+|TEMP(?:ORARY)?\s+)?TABLE"
                               r"|CREATE\s+(?:UNIQUE\s+)?INDEX|ALTER\s+TABLE)\b")
_MYSQL = re.compile(r"`|\bENGINE\s*=|\bAUTO_INCREMENT\b", re.IGNORECASE)
_SQLITE = re.compile(r"\bAUTOINCREMENT\b|\bWITHOUT\s+ROWID\b|\bPRAGMA\b", re.IGNORECASE)


@dataclass
class FolderContents:
    """Files found under a folder, named relative to it, in natural order (V2 before V10)."""

    dialect: str
    schema_sources: list[tuple[str, str]] = field(default_factory=list)
    queries: list[tuple[str, str]] = field(default_factory=list)
    sqlite_files: list[tuple[Path, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # too large, not UTF-8, or unreadable
    truncated: bool = False  # the folder had more files than max_files


def guess_dialect(text: str) -> str:
    """MySQL when backticks or ENGINE= show it, SQLite when AUTOINCREMENT or WITHOUT ROWID do, else PostgreSQL."""
    if _MYSQL.search(text):
        return "mysql"
    if _SQLITE.search(text):
        return "sqlite"
    return "postgres"


def _is_sqlite(path: Path) -> bool:
    """Whether the file starts with SQLite's header; only those bytes are read (a database may be large)."""
    try:
        fd, _ = open_file(path)
    except OSError:
        return False
    try:
        return os.read(fd, len(SQLITE_HEADER)) == SQLITE_HEADER
    finally:
        os.close(fd)


def discover(folder: Path, dialect: str | None, *, max_files: int, max_bytes: int) -> FolderContents:
    """Reads every .sql/.ddl file (up to the limits) and finds SQLite databases by their header."""
    files, truncated = walk_files(folder, max_files=max_files)
    texts: list[tuple[str, str]] = []
    databases: list[tuple[Path, str]] = []
    skipped: list[str] = []
    total = 0
    for path in sorted(files, key=natural_order):
        label = path.relative_to(folder).as_posix()
        suffix = path.suffix.lower()
        if (suffix not in SQL_SUFFIXES and suffix not in SQLITE_SUFFIXES) or path.name.lower().endswith(".down.sql"):
            continue  # a down migration undoes its up migration: applying both in file order would lose tables
        if suffix in SQLITE_SUFFIXES:
            if _is_sqlite(path):
                databases.append((path, label))
            continue
        try:
            _, data = read_file_capped(path, max_bytes)
        except OSError:
            skipped.append(label)
            continue
        if data is None or total + len(data) > MAX_TOTAL_BYTES:
            skipped.append(label)
            continue
        try:
            texts.append((label, data.decode("utf-8-sig")))
        except UnicodeDecodeError:
            skipped.append(label)
            continue
        total += len(data)
    chosen = dialect or ("sqlite" if databases and not texts else guess_dialect("\n".join(t for _, t in texts)))
    contents = FolderContents(chosen, sqlite_files=databases, skipped=skipped, truncated=truncated)
    for label, text in texts:
        (contents.schema_sources if _SCHEMA_STATEMENT.search(text) else contents.queries).append((label, text))
    return contents
