"""Single positions looked up in a table, each one short query: the greatest
row by a key (a window's upper bound), the n-th row of an order (a --limit on
a read without a unique key) and the checksum of a tie (ties.py). The window
planner and the row reader both ask here, and share its SQL helpers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lakeshift.identifiers import quote_mysql
from lakeshift.source import keys as K
from lakeshift.source.convert import ALIAS, HIDDEN
from lakeshift.source.ties import tie_sum

if TYPE_CHECKING:
    from lakeshift.source.pool import MySQLPool
    from lakeshift.source.cx import Connectorx
    from lakeshift.source.description import TableDescription


def from_sql(desc: TableDescription) -> str:
    if desc.custom_sql:  # a derived table: every condition and order applies to the query's output
        return f"({desc.custom_sql}) AS {ALIAS}"
    return f"{quote_mysql(desc.schema)}.{quote_mysql(desc.table)} AS {ALIAS}"


def select_sql(desc: TableDescription, select: str, conds: list[str]) -> str:
    return f"SELECT {select} FROM {from_sql(desc)}" + (" WHERE " + " AND ".join(conds) if conds else "")


class PositionQueries:
    """Position look-ups on one source (`label`: how errors name it)."""

    def __init__(self, pool: MySQLPool, cx: Connectorx, label: str) -> None:
        self.pool, self.cx, self.label = pool, cx, label

    def where(self, desc: TableDescription) -> str:
        """How errors name the table."""
        return f"MySQL {self.label}: table {desc.full_name}"

    def greatest(self, desc: TableDescription, keys: list[K.KeyCol]) -> list[Any] | None:
        """The greatest position by `keys` among rows where none of them is NULL (None: no such row)."""
        selects = ", ".join(k.select(i) for i, k in enumerate(keys))
        sql = (f"SELECT {selects} FROM {from_sql(desc)} WHERE "
               + " AND ".join(f"{k.sql} IS NOT NULL" for k in keys)
               + " ORDER BY " + ", ".join(f"{k.sql} DESC" for k in keys) + " LIMIT 1")
        return self._one(desc, sql, len(keys))

    def nth(self, desc: TableDescription, conds: list[str], order: list[K.KeyCol], n: int) -> list[Any] | None:
        """The position of the n-th row in `order` (None: fewer rows)."""
        selects = ", ".join(k.select(i) for i, k in enumerate(order))
        sql = (select_sql(desc, selects, conds) + " ORDER BY " + ", ".join(k.sql for k in order)
               + f" LIMIT 1 OFFSET {int(n) - 1}")
        return self._one(desc, sql, len(order))

    def tie_sum(self, desc: TableDescription, ts: K.KeyCol, value: Any,
                upto: tuple[list[K.KeyCol], list[Any]] | None) -> str:
        """Checksum of the rows at `ts` = `value` (and up to `upto`), see ties.py."""
        return tie_sum(self.pool, desc, from_sql(desc), ts, value, upto, self.where(desc))

    def _one(self, desc: TableDescription, sql: str, n: int) -> list[Any] | None:
        where = self.where(desc)
        batches = self.pool.retry(lambda: self.cx.fetch(sql, 1, where), where)
        rows = pa.Table.from_batches(batches).to_pylist() if batches else []
        if not rows:
            return None
        return [rows[0][f"{HIDDEN}k{i}"] for i in range(n)]
