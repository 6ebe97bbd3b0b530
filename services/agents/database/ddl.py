"""Build the schema model from DDL statements (CREATE TABLE / INDEX, ALTER TABLE, DROP) parsed by sqlglot."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import replace

from sqlglot import exp

from services.agents.database.column_types import family_of
from services.agents.database.model import Check, Column, ForeignKey, Index, Schema, Source, Table
from services.agents.database.statements import ParseProblem, Statement

# Schemas every table is in when none is named; dropped so `public.orders` and `orders` are one table.
DEFAULT_SCHEMAS = frozenset({"public", "main", "dbo"})
_SERIALS = {"INT": "serial", "INTEGER": "serial", "BIGINT": "bigserial", "SMALLINT": "smallserial"}
_ADD_IDENTITY = re.compile(r"(?is)^ALTER\s+TABLE\s+(?:ONLY\s+)?(?P<table>\S+)\s+ALTER\s+COLUMN\s+(?P<column>\S+)\s+"
                           r"ADD\s+GENERATED\s+(?:ALWAYS|BY\s+DEFAULT)\s+AS\s+IDENTITY")
# ALTER TABLE forms that change nothing the schema model holds (ownership, security, storage, partitions).
_IRRELEVANT_ALTER = re.compile(r"\b(OWNER TO|ENABLE|DISABLE|REPLICA IDENTITY|CLUSTER ON|SET WITH|SET WITHOUT|SET \(|RESET \("
                               r"|SET LOGGED|SET UNLOGGED|SET TABLESPACE|SET SCHEMA|ATTACH PARTITION|DETACH PARTITION|INHERIT"
                               r"|FORCE ROW|NO FORCE|SET ACCESS METHOD|VALIDATE CONSTRAINT)\b")


def identifier(node: exp.Expr | str | None, dialect: str) -> str:
    """An identifier as the database stores it: PostgreSQL folds unquoted names to lower case."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node.lower() if dialect == "postgres" else node
    if isinstance(node, exp.Identifier):
        return node.this if node.quoted or dialect != "postgres" else node.this.lower()
    if isinstance(node, exp.Ordered | exp.ColumnPrefix | exp.Column):
        return identifier(node.this, dialect)
    return node.sql(dialect=dialect)


def table_name(node: exp.Table, dialect: str) -> str:
    """`schema.table`, or just `table` in the default schema."""
    schema = identifier(node.args.get("db"), dialect)
    name = identifier(node.this, dialect)
    return name if not schema or schema.lower() in DEFAULT_SCHEMAS else f"{schema}.{name}"


def _line(node: exp.Expr | None, fallback: int) -> int:
    """The line of the first token sqlglot kept a position for inside `node` (identifiers and literals have one)."""
    if node is None:
        return fallback
    for part in node.walk():
        line = part.meta.get("line")
        if line:
            return int(line)
    return fallback


def _key(node: exp.Expr, dialect: str) -> tuple[str, bool]:
    """(key text, is an expression) of one index or constraint part."""
    while isinstance(node, exp.Ordered | exp.Opclass):
        node = node.this
    if isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Identifier | exp.Column | exp.ColumnPrefix):
        return identifier(node, dialect), False
    return node.sql(dialect=dialect), True


def _names(nodes: Iterable[exp.Expr], dialect: str) -> tuple[str, ...]:
    return tuple(_key(n, dialect)[0] for n in nodes)


def _on_delete(reference: exp.Reference) -> str | None:
    for option in reference.args.get("options") or []:
        text = str(option).upper()
        if text.startswith("ON DELETE "):
            return text.removeprefix("ON DELETE ")
    return None


class SchemaBuilder:
    """Applies statements in order to one schema; what it cannot place becomes a ParseProblem."""

    def __init__(self, dialect: str, origin: str = "") -> None:
        self.schema = Schema(dialect, origin=origin)
        self.problems: list[ParseProblem] = []
        self._pending_indexes: list[Index] = []

    @property
    def dialect(self) -> str:
        return self.schema.dialect

    def _key(self, name: str) -> str:
        # PostgreSQL names are stored exactly (unquoted ones already folded): "Users" and users are two tables.
        return name if self.dialect == "postgres" else name.lower()

    def apply_all(self, statements: Iterable[Statement]) -> None:
        for statement in statements:
            self.apply(statement)

    def apply(self, statement: Statement) -> None:
        node = statement.expression
        if isinstance(node, exp.Create) and str(node.args.get("kind", "")).upper() == "TABLE":
            self._create_table(node, statement)
        elif isinstance(node, exp.Create) and str(node.args.get("kind", "")).upper() == "INDEX":
            self._create_index(node, statement)
        elif isinstance(node, exp.Alter) and str(node.args.get("kind", "")).upper() == "TABLE":
            self._alter_table(node, statement)
        elif isinstance(node, exp.Drop):
            self._drop(node)
        elif isinstance(node, exp.Command) and str(node.this).upper() in ("CREATE", "ALTER"):
            self._command(node, statement)

    def finish(self) -> Schema:
        """Attaches indexes declared before their table, fills implied referenced columns."""
        for index in self._pending_indexes:
            table = self.schema.table(index.table)
            if table is None:
                self.problems.append(ParseProblem(index.source.file, index.source.line, f"index {index.name} is on table {index.table}, which the input does not define"))
            else:
                table.indexes.append(replace(index, table=table.name))
        for table in self.schema.tables:
            table.foreign_keys = [self._resolve_reference(fk) for fk in table.foreign_keys]
            if self.dialect == "mysql":
                self._mysql_foreign_key_indexes(table)
        return self.schema

    def _resolve_reference(self, fk: ForeignKey) -> ForeignKey:
        # `REFERENCES parent` without columns means the parent's primary key.
        if fk.ref_columns:
            return fk
        parent = self.schema.table(fk.ref_table)
        return replace(fk, ref_columns=parent.primary_key if parent else ())

    def _mysql_foreign_key_indexes(self, table: Table) -> None:
        # InnoDB creates an index for a foreign key that no index leads with, under the constraint's name.
        for fk in table.foreign_keys:
            wanted = tuple(c.lower() for c in fk.columns)
            covered = any(tuple(k.lower() for k in ix.keys[: len(wanted)]) == wanted and not ix.has_expressions
                          for ix in table.indexes)
            if not covered:
                name = fk.name or f"{table.name}_ibfk_{fk.columns[0]}"
                table.indexes.append(Index(name, table.name, fk.columns, origin="foreign_key", expression_keys=(False,) * len(fk.columns), source=fk.source))

    # CREATE TABLE ---------------------------------------------------------------------------------------------

    def _create_table(self, node: exp.Create, statement: Statement) -> None:
        target = node.this
        elements = target.expressions if isinstance(target, exp.Schema) else []
        table_node = target.this if isinstance(target, exp.Schema) else target
        if not isinstance(table_node, exp.Table):
            return
        name = table_name(table_node, self.dialect)
        if node.args.get("exists") and self.schema.table(name) is not None:
            return  # CREATE TABLE IF NOT EXISTS on an existing table changes nothing
        table = Table(name, source=Source(statement.file, statement.line))
        self.schema.tables = [t for t in self.schema.tables if self._key(t.name) != self._key(name)] + [table]
        for element in elements:
            self._table_element(table, element, None, statement)

    def _table_element(self, table: Table, element: exp.Expr, constraint_name: str | None, statement: Statement) -> None:
        line = _line(element, statement.line)
        source = Source(statement.file, line)
        if isinstance(element, exp.ColumnDef):
            self._add_column(table, element, statement)
        elif isinstance(element, exp.Constraint):
            for part in element.expressions:
                self._table_element(table, part, identifier(element.this, self.dialect), statement)
        elif isinstance(element, exp.PrimaryKey):
            self._set_primary_key(table, _names(element.expressions, self.dialect), constraint_name, source)
        elif isinstance(element, exp.ForeignKey):
            self._add_foreign_key(table, _names(element.expressions, self.dialect), element.args.get("reference"), constraint_name, source)
        elif isinstance(element, exp.UniqueColumnConstraint):
            columns = element.this
            keys = columns.expressions if isinstance(columns, exp.Schema) else []
            name = constraint_name or (identifier(columns.this, self.dialect) if isinstance(columns, exp.Schema) and columns.this else None)
            self._add_unique(table, keys, name, bool(element.args.get("nulls")), source)
        elif isinstance(element, exp.IndexColumnConstraint):
            kind = str(element.args.get("kind") or "").upper()
            parts = [_key(e, self.dialect) for e in element.expressions]
            name = identifier(element.this, self.dialect) if element.this else f"{table.name}_{'_'.join(k for k, _ in parts)}_idx"
            table.indexes.append(Index(name, table.name, tuple(k for k, _ in parts), unique=kind == "UNIQUE",
                                       method=kind.lower() if kind in ("FULLTEXT", "SPATIAL") else "btree",
                                       expression_keys=tuple(e for _, e in parts), source=source))
        elif isinstance(element, exp.CheckColumnConstraint):
            table.checks.append(Check(constraint_name, element.this.sql(dialect=self.dialect)))

    def _add_column(self, table: Table, node: exp.ColumnDef, statement: Statement) -> None:
        name = identifier(node.this, self.dialect)
        data_type = node.args.get("kind")
        family = family_of(data_type)
        source = Source(statement.file, _line(node.this, statement.line))
        nullable, default, identity = family != "serial", None, family == "serial"
        for constraint in node.constraints:
            kind = constraint.kind
            if isinstance(kind, exp.NotNullColumnConstraint):
                nullable = bool(kind.args.get("allow_null"))
            elif isinstance(kind, exp.PrimaryKeyColumnConstraint):
                self._set_primary_key(table, (name,), None, source)
                nullable = False
            elif isinstance(kind, exp.UniqueColumnConstraint):
                self._add_unique(table, [node.this], None, bool(kind.args.get("nulls")), source)
            elif isinstance(kind, exp.DefaultColumnConstraint):
                default = kind.this.sql(dialect=self.dialect)
            elif isinstance(kind, exp.GeneratedAsIdentityColumnConstraint | exp.AutoIncrementColumnConstraint):
                identity, nullable = True, False
            elif isinstance(kind, exp.Reference):
                self._add_foreign_key(table, (name,), kind, None, source)
            elif isinstance(kind, exp.CheckColumnConstraint):
                table.checks.append(Check(None, kind.this.sql(dialect=self.dialect)))
        type_sql = data_type.sql(dialect=self.dialect) if data_type is not None else ""
        column = Column(name, type_sql, family, nullable=nullable, default=default, identity=identity, source=source)
        table.columns = [c for c in table.columns if self._key(c.name) != self._key(name)] + [column]
        if name in table.primary_key and column.nullable:
            self._not_null(table, (name,))

    def _set_primary_key(self, table: Table, columns: tuple[str, ...], name: str | None, source: Source) -> None:
        table.primary_key = columns
        self._not_null(table, columns)
        index_name = name or f"{table.name.split('.')[-1]}_pkey"
        table.indexes = [ix for ix in table.indexes if ix.origin != "primary_key"]
        table.indexes.append(Index(index_name, table.name, columns, unique=True, origin="primary_key",
                                   expression_keys=(False,) * len(columns), source=source))

    def _not_null(self, table: Table, columns: tuple[str, ...]) -> None:
        wanted = {self._key(c) for c in columns}
        table.columns = [replace(c, nullable=False) if self._key(c.name) in wanted else c for c in table.columns]

    def _add_unique(self, table: Table, keys: list[exp.Expr], name: str | None, nulls_not_distinct: bool, source: Source) -> None:
        parts = [_key(k, self.dialect) for k in keys]
        columns = tuple(k for k, _ in parts)
        index_name = name or f"{table.name.split('.')[-1]}_{'_'.join(columns)}_key"
        table.indexes.append(Index(index_name, table.name, columns, unique=True, origin="unique",
                                   expression_keys=tuple(e for _, e in parts), nulls_not_distinct=nulls_not_distinct, source=source))

    def _add_foreign_key(self, table: Table, columns: tuple[str, ...], reference: exp.Reference | None,
                         name: str | None, source: Source) -> None:
        if reference is None:
            return
        target = reference.this
        ref_table = target.this if isinstance(target, exp.Schema) else target
        ref_columns = _names(target.expressions, self.dialect) if isinstance(target, exp.Schema) else ()
        if not isinstance(ref_table, exp.Table):
            return
        table.foreign_keys.append(ForeignKey(name, table.name, columns, table_name(ref_table, self.dialect), ref_columns,
                                             on_delete=_on_delete(reference), source=source))

    # CREATE INDEX, ALTER, DROP ----------------------------------------------------------------------------------

    def _create_index(self, node: exp.Create, statement: Statement) -> None:
        index = node.this
        if not isinstance(index, exp.Index) or not isinstance(index.args.get("table"), exp.Table):
            return
        table = table_name(index.args["table"], self.dialect)
        params = index.args.get("params")
        columns = params.args.get("columns") or [] if params else []
        parts = [_key(c, self.dialect) for c in columns]
        using = params.args.get("using") if params else None
        where = params.args.get("where") if params else None
        keys = tuple(k for k, _ in parts)
        name = identifier(index.this, self.dialect) if index.this else f"{table.split('.')[-1]}_{'_'.join(keys)}_idx"
        created = Index(
            name, table, keys, unique=bool(node.args.get("unique")), method=using.name.lower() if using else "btree",
            where=where.this.sql(dialect=self.dialect) if isinstance(where, exp.Where) else None,
            expression_keys=tuple(e for _, e in parts), source=Source(statement.file, statement.line))
        owner = self.schema.table(table)
        if owner is None:
            self._pending_indexes.append(created)  # a later file may create the table
        else:
            owner.indexes.append(replace(created, table=owner.name))

    def _alter_table(self, node: exp.Alter, statement: Statement) -> None:
        if not isinstance(node.this, exp.Table):
            return
        table = self.schema.table(table_name(node.this, self.dialect))
        if table is None:
            self.problems.append(ParseProblem(statement.file, statement.line, f"ALTER TABLE on {node.this.sql()}, which the input does not define"))
            return
        for action in node.args.get("actions") or []:
            if isinstance(action, exp.ColumnDef):
                self._add_column(table, action, statement)
            elif isinstance(action, exp.AddConstraint):
                for part in action.expressions:
                    self._table_element(table, part, None, statement)
            elif isinstance(action, exp.AlterColumn):
                self._alter_column(table, action)
            elif isinstance(action, exp.RenameColumn):
                self._rename_column(table, identifier(action.this, self.dialect), identifier(action.args.get("to"), self.dialect))
            elif isinstance(action, exp.AlterRename) and isinstance(action.this, exp.Table):
                self._rename_table(table, table_name(action.this, self.dialect))
            elif isinstance(action, exp.Drop) and str(action.args.get("kind", "")).upper() == "COLUMN":
                dropped = {self._key(identifier(c, self.dialect)) for c in action.args.get("tables") or []}
                table.columns = [c for c in table.columns if self._key(c.name) not in dropped]
                table.indexes = [ix for ix in table.indexes if not dropped & {self._key(k) for k in ix.keys}]

    def _alter_column(self, table: Table, action: exp.AlterColumn) -> None:
        name = self._key(identifier(action.this, self.dialect))
        column = table.column(name)
        if column is None:
            return
        if action.args.get("allow_null") is not None:
            column = replace(column, nullable=bool(action.args.get("allow_null")))
        elif action.args.get("drop"):
            column = replace(column, default=None)
        if isinstance(action.args.get("default"), exp.Expr):
            default = action.args["default"].sql(dialect=self.dialect)
            column = replace(column, default=default)
            if column.family == "integer" and default.lower().startswith("nextval("):
                # How pg_dump writes a serial column: an integer whose default draws from its own sequence.
                column = replace(column, family="serial", type=_SERIALS.get(column.type.upper(), "serial"))
        if isinstance(action.args.get("dtype"), exp.DataType):
            data_type = action.args["dtype"]
            column = replace(column, type=data_type.sql(dialect=self.dialect), family=family_of(data_type))
        table.columns = [column if self._key(c.name) == name else c for c in table.columns]

    def _rename_column(self, table: Table, old: str, new: str) -> None:
        def renamed(names: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(new if self._key(n) == self._key(old) else n for n in names)

        table.columns = [replace(c, name=new) if self._key(c.name) == self._key(old) else c for c in table.columns]
        table.primary_key = renamed(table.primary_key)
        table.indexes = [replace(ix, keys=renamed(ix.keys)) for ix in table.indexes]
        table.foreign_keys = [replace(fk, columns=renamed(fk.columns)) for fk in table.foreign_keys]
        for other in self.schema.tables:
            other.foreign_keys = [replace(fk, ref_columns=renamed(fk.ref_columns)) if self._key(fk.ref_table) == self._key(table.name)
                                  else fk for fk in other.foreign_keys]

    def _rename_table(self, table: Table, new: str) -> None:
        old = table.name
        table.name = new
        table.indexes = [replace(ix, table=new) for ix in table.indexes]
        for other in self.schema.tables:
            other.foreign_keys = [replace(fk, table=other.name, ref_table=new if self._key(fk.ref_table) == self._key(old) else fk.ref_table)
                                  for fk in other.foreign_keys]

    def _command(self, node: exp.Command, statement: Statement) -> None:
        """Statements sqlglot kept as text: identity added by ALTER (pg_dump writes it so), else report what matters."""
        text = f"{node.this} {node.expression or ''}"
        identity = _ADD_IDENTITY.match(text)
        if identity:
            table = self.schema.table(table_name(exp.to_table(identity.group("table"), dialect=self.dialect), self.dialect))
            column = identifier(exp.to_identifier(identity.group("column").strip('"')), self.dialect) if table else ""
            if table is not None and table.column(column) is not None:
                table.columns = [replace(c, identity=True, nullable=False) if self._key(c.name) == self._key(column) else c
                                 for c in table.columns]
                return
        upper = " ".join(text.split()).upper()
        if upper.startswith(("CREATE TABLE", "CREATE UNIQUE INDEX", "CREATE INDEX")) or (
                upper.startswith("ALTER TABLE") and not _IRRELEVANT_ALTER.search(upper)):
            self.problems.append(ParseProblem(statement.file, statement.line, f"unsupported syntax, statement skipped: {upper[:80]}"))

    def _drop(self, node: exp.Drop) -> None:
        kind = str(node.args.get("kind", "")).upper()
        names = {self._key(table_name(t, self.dialect)) for t in node.args.get("tables") or [] if isinstance(t, exp.Table)}
        if kind == "TABLE":
            self.schema.tables = [t for t in self.schema.tables if self._key(t.name) not in names]
        elif kind == "INDEX":
            bare = {n.split(".")[-1] for n in names}
            for table in self.schema.tables:
                table.indexes = [ix for ix in table.indexes if self._key(ix.name) not in bare]
            self._pending_indexes = [ix for ix in self._pending_indexes if self._key(ix.name) not in bare]


def schema_from_ddl(sources: Iterable[tuple[str, str]], dialect: str,
                    check: Callable[[], None] = lambda: None) -> tuple[Schema, list[ParseProblem]]:
    """The schema that (file name, SQL text) pairs build when applied in order, and what could not be read.

    `check` runs before each file: a run's cancellation or deadline stops the reading there."""
    from services.agents.database.statements import split_statements

    names: list[str] = []
    builder = SchemaBuilder(dialect)
    problems: list[ParseProblem] = []
    for file, text in sources:
        check()
        names.append(file)
        statements, unreadable = split_statements(text, dialect, file)
        problems += unreadable
        builder.apply_all(statements)
    schema = builder.finish()
    schema.origin = ", ".join(names)
    return schema, problems + builder.problems
