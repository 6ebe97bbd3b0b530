"""Write identifiers and fix statements (CREATE INDEX and the like) that the target database runs as given."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

_PLAIN = re.compile(r"[a-z_][a-z0-9_]*")
# PostgreSQL's reserved key words (also the SQL standard's core) and MySQL's most common ones: quoted when used as names.
_RESERVED = frozenset(re.findall(r"\w+", """
all analyse analyze and any array as asc asymmetric authorization binary both case cast check collate collation column
concurrently constraint create cross current_catalog current_date current_role current_schema current_time
current_timestamp current_user default deferrable desc distinct do else end except false fetch for foreign freeze from
full grant group having ilike in initially inner intersect into is isnull join key lateral leading left like limit
localtime localtimestamp natural not notnull null offset on only or order outer overlaps placing primary references
returning right select session_user similar some symmetric system_user table tablesample then to trailing true union
unique user using variadic verbose when where window with index range rank rows row interval div mod read write
"""))
MAX_NAME = 63  # PostgreSQL truncates longer identifiers


def quote(name: str, dialect: str) -> str:
    """`name` as an identifier, quoted only when it must be (case, characters or a reserved word)."""
    if _PLAIN.fullmatch(name) and name not in _RESERVED:
        return name
    if dialect == "mysql":
        return "`" + name.replace("`", "``") + "`"
    return '"' + name.replace('"', '""') + '"'


def qualified(table: str, dialect: str) -> str:
    """`schema.table` with each part quoted as needed."""
    return ".".join(quote(part, dialect) for part in table.split(".", 1))


def index_name(table: str, keys: Sequence[str]) -> str:
    """A readable index name that fits PostgreSQL's 63 characters; long ones end in a short hash."""
    words = [re.sub(r"[^a-z0-9]+", "_", k.lower()).strip("_") for k in keys]
    base = f"{table.split('.')[-1].lower()}_{'_'.join(w for w in words if w)}_idx"
    base = re.sub(r"[^a-z0-9_]+", "_", base)
    if len(base) <= MAX_NAME:
        return base
    digest = hashlib.sha1(base.encode(), usedforsecurity=False).hexdigest()[:8]
    return f"{base[: MAX_NAME - 9]}_{digest}"


def create_index(table: str, keys: Sequence[str], dialect: str, *, expressions: Sequence[bool] = (), method: str = "",
                 name: str = "") -> str:
    """A CREATE INDEX statement: plain keys are quoted columns, expression keys go as given (parenthesised for btree)."""
    parts = []
    for position, key in enumerate(keys):
        is_expression = position < len(expressions) and expressions[position]
        parts.append((key if method else f"({key})") if is_expression else quote(key, dialect))
    if_not_exists = "" if dialect == "mysql" else "IF NOT EXISTS "  # MySQL has no IF NOT EXISTS for indexes
    name = name or index_name(table, keys)
    using = f" USING {method}" if method else ""
    return f"CREATE INDEX {if_not_exists}{quote(name, dialect)} ON {qualified(table, dialect)}{using} ({', '.join(parts)});"


def drop_index(name: str, table: str, dialect: str) -> str:
    """A DROP INDEX statement for `name` on `table` (MySQL needs the table, the others the schema)."""
    if dialect == "mysql":
        return f"DROP INDEX {quote(name, dialect)} ON {qualified(table, dialect)};"
    schema = table.split(".")[0] + "." if "." in table else ""
    return f"DROP INDEX {qualified(schema + name, dialect) if schema else quote(name, dialect)};"


def index_hint(dialect: str) -> str:
    """What to know before running a suggested CREATE INDEX on a live table."""
    if dialect == "postgres":
        return "On a busy table, run it as CREATE INDEX CONCURRENTLY, outside a transaction, so writes are not blocked."
    if dialect == "mysql":
        return "InnoDB builds it online (ALGORITHM=INPLACE, LOCK=NONE) on MySQL 5.6 and later."
    return "SQLite locks the database while it builds the index."
