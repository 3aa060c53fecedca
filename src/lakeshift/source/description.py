"""A MySQL table as the catalogue describes it: columns with their exact
types, unique keys, and the lake columns a table's options make of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lakeshift.batch import Column
from lakeshift.config.models import TableConfig
from lakeshift.errors import IdentifierError, SourceError
from lakeshift.identifiers import check_identifier, split_table_name
from lakeshift.source.convert import HIDDEN
from lakeshift.source.types import COLUMNS_SQL, KEYS_SQL, ColumnInfo, column_info, to_column, unique_keys

if TYPE_CHECKING:
    from lakeshift.source.pool import MySQLPool


@dataclass
class TableDescription:
    schema: str
    table: str
    columns: list[Column]
    primary_key: list[str]
    infos: list[ColumnInfo] = field(default_factory=list, repr=False)
    unique_keys: list[tuple[str, list[str]]] = field(default_factory=list, repr=False)
    options: tuple[bool, str] | None = field(default=None, repr=False)
    custom_sql: str | None = field(default=None, repr=False)  # read from this SELECT (custom_sql.py)

    @property
    def full_name(self) -> str:
        return f"{self.schema}.{self.table}" + (" (custom_sql)" if self.custom_sql else "")

    def info(self, name: str) -> ColumnInfo:
        for i in self.infos:
            if i.name == name:
                return i
        raise SourceError(f"table {self.full_name} has no column {name!r} "
                          f"(columns: {', '.join(i.name for i in self.infos)})")

    def identifying_keys(self) -> list[tuple[str, list[str]]]:
        """(index, columns) of the unique keys that identify rows: every column
        NOT NULL (NULLs never compare equal), primary key first."""
        return [(index, cols) for index, cols in self.unique_keys
                if cols and all(not self.info(c).nullable for c in cols)]

    def apply(self, table: TableConfig | None) -> TableDescription:
        """Type the columns by the table's options (tinyint1_as_boolean,
        zero_dates). In place, so a description made without the table's
        configuration is right once plan_window has seen it."""
        options = (table.tinyint1_as_boolean, table.zero_dates) if table else (True, "null")
        if options != self.options:
            pk = set(self.primary_key)
            self.columns = [to_column(i, tinyint1_as_boolean=options[0], zero_dates=options[1], in_key=i.name in pk)
                            for i in self.infos]
            self.options = options
        return self


def check_column_names(infos: list[ColumnInfo], where: str, fix: str = "") -> list[ColumnInfo]:
    """The columns, when every name is one lakeshift takes (else one line naming it)."""
    for i in infos:
        try:
            check_identifier(i.name, "column")
        except IdentifierError as exc:
            raise SourceError(f"{where}: {exc}{fix}") from None
        if i.name.startswith(HIDDEN):
            raise SourceError(f"{where}: column {i.name!r} uses the prefix {HIDDEN!r} lakeshift reserves")
    return infos


def describe_table(pool: MySQLPool, database: str | None, label: str, full_name: str,
                   table: TableConfig | None = None) -> TableDescription:
    """Columns and keys of 'db.table' or 'table' (in `database`, the connection's)."""
    schema, name = split_table_name(full_name)
    schema = schema or database
    if not schema:
        raise SourceError(f"table {full_name!r} names no schema and MySQL {label} has no database; "
                          f"write it as schema.table")
    where = f"MySQL {label}: table {schema}.{name}"
    rows = pool.query(COLUMNS_SQL, (schema, name), where)
    if not rows:
        raise SourceError(f"{where} does not exist (or this user cannot see it)")
    infos = check_column_names([column_info(r) for r in rows], where)
    ukeys = unique_keys(pool.query(KEYS_SQL, (schema, name), where))
    pk = next((cols for index, cols in ukeys if index == "PRIMARY"), [])
    return TableDescription(schema, name, [], list(pk), infos=infos, unique_keys=ukeys).apply(table)
