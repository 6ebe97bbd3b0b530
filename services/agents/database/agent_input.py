"""The Database Analyzer's input: checked field by field, read from the workspace or a configured connection."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg

from services.agents.base import RunContext
from services.agents.database.analysis import DatabaseAnalysis, analyse_ddl, analyse_postgres, analyse_sqlite
from services.agents.database.folder import discover
from services.agents.database.inputs import connection_dsn, read_sql_sources, resolve_input_path
from services.agents.database.model import DIALECTS
from services.agents.database.postgres_catalog import UnknownSchema
from services.agents.database.sqlite_file import NotASqliteDatabase
from services.runtime.config import Config
from services.runtime.errors import InvalidArgument, Unavailable
from services.runtime.file_walk import open_file
from services.runtime.workspace import resolve_in_roots

SOURCES = ("ddl", "sqlite_database", "connection")
FOLDER_EXCLUDES = (*SOURCES, "queries", "schemas")  # a folder is read whole: it names its own sources


def _strings(arguments: dict[str, Any], name: str) -> list[str]:
    value = arguments.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidArgument.field(f"input.{name}", "must be a list of non-empty strings")
    return value


def configured_connections() -> dict[str, str]:
    # SPEC is listed without its setting (the catalog passes none), so it reads MCPMESH_DATABASE_CONNECTIONS here.
    return dict(Config.from_env("agents").database_connections)


@dataclass
class Read:
    """What one run read and what came of it."""

    analysis: DatabaseAnalysis
    texts: dict[str, str]  # file name -> SQL text, for snippets and line counts
    skipped: list[str] = field(default_factory=list)  # files of a folder that could not be read
    unused_databases: list[str] = field(default_factory=list)  # SQLite databases of a folder not analysed
    truncated: bool = False
    databases: int = 0  # SQLite database files read (0 or 1)


def analyse_arguments(arguments: dict[str, Any], context: RunContext,
                      connections: Callable[[], Mapping[str, str]] = configured_connections) -> Read:
    """Checks the input (fields named `input.*`), reads the one schema source and the queries, and analyses them."""
    if "path" in arguments:
        return _analyse_folder(arguments, context)
    given = [name for name in SOURCES if name in arguments]
    if len(given) > 1:
        raise InvalidArgument.field(f"input.{given[1]}", f"give one schema source, not both {given[0]} and {given[1]}")
    if not given and "queries" not in arguments:
        raise InvalidArgument.field("input.ddl", "give a schema source (ddl, sqlite_database or connection), or queries")
    dialect = arguments.get("dialect", "postgres")
    if dialect not in DIALECTS:
        raise InvalidArgument.field("input.dialect", f"must be one of {', '.join(DIALECTS)}")
    if "schemas" in arguments and given != ["connection"]:
        raise InvalidArgument.field("input.schemas", "applies only with input.connection")
    limits = context.limits
    queries = read_sql_sources(_strings(arguments, "queries"), context.roots, "input.queries", max_files=limits.max_files,
                               max_bytes=limits.max_file_bytes) if "queries" in arguments else []
    context.check()
    texts = dict(queries)
    if given == ["connection"]:
        if "dialect" in arguments and dialect != "postgres":
            raise InvalidArgument.field("input.dialect", "must be postgres with input.connection")
        name = arguments["connection"]
        dsn = connection_dsn(name, connections(), "input.connection")
        try:
            analysis = analyse_postgres(dsn, name, _strings(arguments, "schemas"), queries, check=context.check)
        except UnknownSchema as exc:
            raise InvalidArgument.field(f"input.schemas[{exc.position}]", str(exc), reason="SCHEMA_NOT_FOUND") from None
        except psycopg.Error as exc:  # refused, authentication, timeout, a server older than PostgreSQL 11
            # The server's reason (refused, authentication) without the DSN, which may hold a password.
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise Unavailable(f"cannot read PostgreSQL connection {name!r}: {reason}", reason="DATABASE_UNAVAILABLE") from None
    elif given == ["sqlite_database"]:
        if "dialect" in arguments and dialect != "sqlite":
            raise InvalidArgument.field("input.dialect", "must be sqlite with input.sqlite_database")
        path, label = resolve_input_path(arguments["sqlite_database"], context.roots, "input.sqlite_database", kind="file")
        try:
            os.close(open_file(path)[0])  # the same refusals as for files read: symlinked components, hard links
        except OSError as exc:
            raise InvalidArgument.field("input.sqlite_database", f"cannot be opened ({exc.strerror or type(exc).__name__})",
                                        reason="PATH_NOT_READABLE") from None
        try:
            analysis = analyse_sqlite(path, label, queries, check=context.check)
        except NotASqliteDatabase as exc:
            raise InvalidArgument.field("input.sqlite_database", str(exc), reason="NOT_A_SQLITE_DATABASE") from None
        return Read(analysis, texts, databases=1)
    else:
        sources = read_sql_sources(_strings(arguments, "ddl"), context.roots, "input.ddl", max_files=limits.max_files,
                                   max_bytes=limits.max_file_bytes) if "ddl" in arguments else []
        texts.update(sources)
        analysis = analyse_ddl(sources, dialect, queries, check=context.check)
    return Read(analysis, texts)


def _analyse_folder(arguments: dict[str, Any], context: RunContext) -> Read:
    """Everything a folder holds: its DDL files as the schema (else its first SQLite database), its other SQL as queries."""
    if clash := next((name for name in FOLDER_EXCLUDES if name in arguments), None):
        raise InvalidArgument.field(f"input.{clash}", "cannot be given with input.path, which is searched for every source")
    dialect = arguments.get("dialect")
    if dialect is not None and dialect not in DIALECTS:
        raise InvalidArgument.field("input.dialect", f"must be one of {', '.join(DIALECTS)}")
    folder = resolve_in_roots(arguments["path"], context.roots, "input.path", kind="folder")
    limits = context.limits
    found = discover(folder, dialect, max_files=limits.max_files, max_bytes=limits.max_file_bytes)
    context.check()
    texts = dict(found.schema_sources + found.queries)
    if found.schema_sources or not found.sqlite_files:
        if not texts:
            raise InvalidArgument.field("input.path", "holds no .sql or .ddl files and no SQLite database", reason="NOTHING_TO_ANALYSE")
        analysis = analyse_ddl(found.schema_sources, found.dialect, found.queries, check=context.check)
    else:
        path, label = found.sqlite_files[0]
        try:
            analysis = analyse_sqlite(path, label, found.queries, check=context.check)
        except NotASqliteDatabase as exc:
            raise InvalidArgument.field("input.path", str(exc), reason="NOT_A_SQLITE_DATABASE") from None
    used = 0 if found.schema_sources else min(1, len(found.sqlite_files))
    unused = [label for _, label in found.sqlite_files[used:]]
    return Read(analysis, texts, skipped=found.skipped, unused_databases=unused, truncated=found.truncated, databases=used)
