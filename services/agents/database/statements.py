"""Split SQL text into statements with their first line, parsing each on its own so one bad statement costs only itself."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError
from sqlglot.tokens import Token, TokenType

# sqlglot logs a warning for each statement it keeps as raw text; the analyzer reports the ones that matter itself.
logging.getLogger("sqlglot").setLevel(logging.ERROR)
# SQLite table options sqlglot does not parse; they change storage, not the schema model.
_SQLITE_TABLE_OPTIONS = frozenset({"WITHOUT", "ROWID", "STRICT"})
MAX_NESTING = 32  # parentheses in one statement; sqlglot's parser recurses some twenty frames per level


@dataclass(frozen=True)
class Statement:
    """One parsed statement and the file and 1-based line it starts on."""

    expression: exp.Expr
    file: str
    line: int


@dataclass(frozen=True)
class ParseProblem:
    """A statement (or a whole file) that could not be read."""

    file: str
    line: int
    message: str


def _chunks(tokens: list[Token]) -> list[list[Token]]:
    chunks: list[list[Token]] = [[]]
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            chunks.append([])
        else:
            chunks[-1].append(token)
    return [c for c in chunks if c]


def _strip_sqlite_options(chunk: list[Token]) -> list[Token]:
    """Drop a trailing `WITHOUT ROWID` / `STRICT` list after the closing parenthesis of a CREATE TABLE."""
    end = len(chunk)
    while end > 0 and (chunk[end - 1].text.upper() in _SQLITE_TABLE_OPTIONS or chunk[end - 1].token_type == TokenType.COMMA):
        end -= 1
    if end < len(chunk) and end > 0 and chunk[end - 1].token_type == TokenType.R_PAREN:
        return chunk[:end]
    return chunk


def _depth(chunk: list[Token]) -> int:
    depth = deepest = 0
    for token in chunk:
        if token.token_type == TokenType.L_PAREN:
            depth += 1
            deepest = max(deepest, depth)
        elif token.token_type == TokenType.R_PAREN:
            depth -= 1
    return deepest


def split_statements(sql: str, dialect: str, file: str) -> tuple[list[Statement], list[ParseProblem]]:
    """Every statement of `sql` that parses, and a problem (with its line) for each that does not."""
    engine = Dialect.get_or_raise(dialect)
    if dialect == "postgres":
        # psql meta-commands (\connect, \restrict in pg_dump output) are not SQL; blanked, so lines keep their numbers.
        sql = "".join("\n" if line.lstrip().startswith("\\") else line for line in sql.splitlines(keepends=True))
    try:
        tokens = engine.tokenize(sql)
    except SqlglotError as exc:
        return [], [ParseProblem(file, 1, f"cannot tokenize: {exc}")]
    statements: list[Statement] = []
    problems: list[ParseProblem] = []
    for chunk in _chunks(tokens):
        if dialect == "sqlite":
            chunk = _strip_sqlite_options(chunk)
        line = chunk[0].line
        if _depth(chunk) > MAX_NESTING:
            # The parser and the SQL generator recurse per level: refuse before they exhaust the stack.
            problems.append(ParseProblem(file, line, f"nested deeper than {MAX_NESTING} parentheses, statement skipped"))
            continue
        try:
            parsed = engine.parser().parse(chunk, sql)
        except Exception as exc:  # sqlglot raises ParseError, and on odd input sometimes others: one statement is lost
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            problems.append(ParseProblem(file, line, message))
            continue
        statements += [Statement(e, file, line) for e in parsed if e is not None]
    return statements, problems
