"""What the reader selects for each column, and how connectorx's Arrow data
becomes the exact lake type. Measured on connectorx 0.4.6 / MariaDB 10.11:

  integers, unsigned (BIGINT UNSIGNED max), FLOAT, DOUBLE, YEAR: exact as selected;
                 unsigned ones are cast to the lake profile's wider signed type / decimal128(20,0)
  TINYINT(1)  -> int8; checked for 0/1 and cast to bool here
  DECIMAL     -> decimal128(38,10) via rust_decimal (scale cut to 10, panics on
                 other scales and on > 28 digits): selected as CAST(.. AS CHAR),
                 then cast to decimal128(p,s) by Arrow (exact, fails on loss)
  DATE/DATETIME/TIMESTAMP: exact, but zero dates panic: a CASE maps them to NULL
  TIMESTAMP   -> naive timestamp in the session zone (UTC, set per query): labelled UTC here
  TIME        -> panics beyond 00:00..23:59: selected as CAST(.. AS CHAR)
  BIT         -> big-endian bytes: selected as CAST(.. AS UNSIGNED), cast to decimal128(20,0)
  GEOMETRY    -> panics (unsupported): selected as ST_AsBinary() (WKB)
  BLOB/BINARY -> large_binary, cast to binary; text/ENUM/SET -> string: exact
  JSON        -> selected as CAST(.. AS CHAR) so MySQL 8's binary JSON arrives as text
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from lakeshift.batch import Column
from lakeshift.errors import SourceError
from lakeshift.identifiers import quote_mysql
from lakeshift.source.types import GEOMETRIES, TEMPORALS

ALIAS = "`_ls`"  # the table alias; qualified names keep ORDER BY off the select aliases
HIDDEN = "__lakeshift_"  # prefix of helper columns that never reach the lake


def ref(name: str) -> str:
    return f"{ALIAS}.{quote_mysql(name)}"


def zero_date_test(column: str) -> str:
    # MONTH/DAYOFMONTH are 0 for '0000-00-00' and for partial zero dates like '2020-00-00'
    return f"(MONTH({ref(column)}) = 0 OR DAYOFMONTH({ref(column)}) = 0)"


def select_expr(c: Column) -> str:
    """The SQL expression whose connectorx result converts exactly to c's lake type."""
    r = ref(c.name)
    dt = c.data_type
    if dt in ("decimal", "numeric", "time") or c.lake_encoding == "text":
        return f"CAST({r} AS CHAR)"
    if dt == "json":
        return f"CAST({r} AS CHAR CHARACTER SET utf8mb4)"
    if dt == "bit":
        return f"CAST({r} AS UNSIGNED)"
    if dt in GEOMETRIES:
        return f"ST_AsBinary({r})"
    if dt in TEMPORALS:
        return f"CASE WHEN {zero_date_test(c.name)} THEN NULL ELSE {r} END"
    return r


@dataclass(frozen=True)
class Converter:
    """Turns one connectorx batch into a lake batch for one table."""

    table: str  # 'db.table', for messages
    columns: list[Column]
    schema: pa.Schema
    zero_dates: str = "null"

    def select_list(self) -> list[str]:
        items = [f"{select_expr(c)} AS {quote_mysql(c.name)}" for c in self.columns]
        if self.zero_dates == "error":
            for i, c in enumerate(self.columns):
                if c.data_type in TEMPORALS:
                    items.append(f"{zero_date_test(c.name)} AS `{HIDDEN}z{i}`")
        return items

    def convert(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if self.zero_dates == "error":
            self._check_zero_dates(batch)
        arrays = [self._column(c, batch.column(i), field.type)
                  for i, (c, field) in enumerate(zip(self.columns, self.schema))]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def _column(self, c: Column, arr: pa.Array, target: pa.DataType) -> pa.Array:
        if pa.types.is_boolean(target) and not pa.types.is_boolean(arr.type):
            self._check_boolean(c, arr)
        try:
            return arr if arr.type == target else pc.cast(arr, target, safe=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise SourceError(f"{self.table}: column {c.name!r} ({c.mysql_type}): cannot hold its values "
                              f"exactly as {target}: {exc}") from None

    def _check_boolean(self, c: Column, arr: pa.Array) -> None:
        bad = pc.filter(arr, pc.and_(pc.not_equal(arr, 0), pc.not_equal(arr, 1)))
        if len(bad):
            raise SourceError(
                f"{self.table}: column {c.name!r} is {c.mysql_type} but holds {bad[0].as_py()}, which is not "
                f"a boolean; set `tinyint1_as_boolean: false` for this table to keep it as an integer")

    def _check_zero_dates(self, batch: pa.RecordBatch) -> None:
        for i, c in enumerate(self.columns):
            flag = f"{HIDDEN}z{i}"
            if c.data_type in TEMPORALS and flag in batch.schema.names:
                if pc.any(pc.equal(batch.column(flag), 1)).as_py():
                    raise SourceError(
                        f"{self.table}: column {c.name!r} ({c.mysql_type}) holds a zero date such as "
                        f"'0000-00-00' and zero_dates is 'error'; set `zero_dates: null` to read them as NULL")
