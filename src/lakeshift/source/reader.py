"""MySQLReader: describe a table, fix a run's window, and stream its rows as
Arrow batches in the exact lake schema (see window.py for the CDC rules,
types.py/convert.py for the type rules)."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from lakeshift.batch import Column, Cursor
from lakeshift.config.models import ConnectionSettings, MySQLSource, TableConfig
from lakeshift.errors import IdentifierError, SourceError, TransientSourceError
from lakeshift.identifiers import check_identifier, quote_mysql, split_table_name
from lakeshift.source import keys as K
from lakeshift.source.client import label
from lakeshift.source.convert import ALIAS, HIDDEN, Converter
from lakeshift.source.cx import Connectorx, RowTooLarge
from lakeshift.source.locks import HeldLock, named_lock
from lakeshift.source.pool import MySQLPool
from lakeshift.source.ties import tie_sum
from lakeshift.source.types import (COLUMNS_SQL, KEYS_SQL, ColumnInfo, column_info, lake_schema, large_columns,
                                    to_column, unique_keys)
from lakeshift.source.window import Window

log = logging.getLogger("lakeshift.source")
# A page (one SELECT ... LIMIT batch_size) is streamed in Arrow batches of at
# most this many rows, so memory is bounded by this, not by the page.
STREAM_BATCH_ROWS = 16_384
MAX_RESUMES = 20  # a page broken off after some rows is resumed after the last row read, at most this often

_CURSOR_KINDS = {"ts": {"temporal", "int", "decimal", "string"}, "id": {"int", "decimal", "string", "temporal"}}


@dataclass
class TableDescription:
    schema: str
    table: str
    columns: list[Column]
    primary_key: list[str]
    infos: list[ColumnInfo] = field(default_factory=list, repr=False)
    unique_keys: list[tuple[str, list[str]]] = field(default_factory=list, repr=False)
    options: tuple[bool, str] | None = field(default=None, repr=False)

    @property
    def full_name(self) -> str:
        return f"{self.schema}.{self.table}"

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


class MySQLReader:
    def __init__(self, src: MySQLSource, settings: ConnectionSettings, pool: MySQLPool | None = None, *,
                 read_sql: Callable[..., Any] | None = None, sleep: Callable[[float], None] | None = None) -> None:
        self.src, self.settings = src, settings
        self._own_pool = pool is None
        self.pool = pool or MySQLPool(src, settings, sleep=time.sleep if sleep is None else sleep)
        self.cx = Connectorx(src, settings, self.pool, read_sql)

    @property
    def label(self) -> str:
        return label(self.src)

    def close(self) -> None:
        self.cx.close()
        if self._own_pool:
            self.pool.close()

    # ------------------------------------------------------------ describe
    def describe(self, full_name: str, table: TableConfig | None = None) -> TableDescription:
        """Columns and keys of 'db.table' or 'table' (in the connection's database)."""
        schema, name = split_table_name(full_name)
        schema = schema or self.src.database
        if not schema:
            raise SourceError(f"table {full_name!r} names no schema and MySQL {self.label} has no database; "
                              f"write it as schema.table")
        where = f"MySQL {self.label}: table {schema}.{name}"
        rows = self.pool.query(COLUMNS_SQL, (schema, name), where)
        if not rows:
            raise SourceError(f"{where} does not exist (or this user cannot see it)")
        infos = [column_info(r) for r in rows]
        for i in infos:
            try:
                check_identifier(i.name, "column")
            except IdentifierError as exc:
                raise SourceError(f"{where}: {exc}") from None
            if i.name.startswith(HIDDEN):
                raise SourceError(f"{where}: column {i.name!r} uses the prefix {HIDDEN!r} lakeshift reserves")
        ukeys = unique_keys(self.pool.query(KEYS_SQL, (schema, name), where))
        pk = next((cols for index, cols in ukeys if index == "PRIMARY"), [])
        return TableDescription(schema, name, [], list(pk), infos=infos, unique_keys=ukeys).apply(table)

    def lake_schema(self, desc: TableDescription, table: TableConfig | None = None) -> pa.Schema:
        if table is not None:
            desc.apply(table)
        return lake_schema(desc.columns)

    # ------------------------------------------------------------- window
    def plan_window(self, table: TableConfig, desc: TableDescription, low: Cursor | None) -> Window:
        """Fix this run's range now: the upper bound is read from the table."""
        desc.apply(table)
        strategy = table.cdc_strategy
        ts, idc = table.cdc_timestamp_column, table.cdc_id_column
        bound: list[str] = {"hybrid": [ts, idc], "timestamp_only": [ts], "id_only": [idc], "full_sync": []}[strategy]
        missing = [n for n, c in (("cdc_timestamp_column", ts), ("cdc_id_column", idc))
                   if c is None and n in {"hybrid": ("cdc_timestamp_column", "cdc_id_column"),
                                          "timestamp_only": ("cdc_timestamp_column",),
                                          "id_only": ("cdc_id_column",), "full_sync": ()}[strategy]]
        if missing:
            raise SourceError(f"{desc.full_name}: cdc_strategy {strategy} needs {' and '.join(missing)}")
        keys = {c: self._cursor_key(desc, c, "ts" if c == ts and strategy != "id_only" else "id") for c in bound}
        lookback = table.lookback if strategy in ("hybrid", "timestamp_only") else None
        if lookback and keys[ts].kind != "temporal":
            raise SourceError(f"{desc.full_name}: lookback needs a DATE/DATETIME/TIMESTAMP cdc_timestamp_column; "
                              f"{ts!r} is {keys[ts].info.column_type}")
        w = Window(strategy=strategy, low=low, high=None, bound_columns=list(bound),  # type: ignore[arg-type]
                   page_columns=self._page_columns(desc, list(bound)), watermark=low, lookback=lookback)
        if strategy == "full_sync":
            w.low = w.watermark = None
            return w
        bkeys = [keys[c] for c in bound]
        # The upper bound is the greatest row by the whole paging key, so that
        # even rows tying with it on the cursor wait for the next run.
        w.high_columns = w.page_columns or list(bound)
        high = self._greatest(desc, [self._key(desc, c) for c in w.high_columns])
        if high is None:
            w.empty = True
            return w
        w.high_values = high
        w.high = self._cursor(strategy, bkeys, high[:len(bound)])
        if self._checks_ties(w):  # before any row is read (see ties.py)
            hkeys = [self._key(desc, c) for c in w.high_columns]
            w.high_ties = self._tie_sum(desc, bkeys[0], high[0], (hkeys, high))
        if low is not None:
            self._set_low(w, desc, strategy, bkeys, low, lookback)
        return w

    @staticmethod
    def _checks_ties(w: Window) -> bool:
        """hybrid whose (ts, id) is a unique position, and timestamp_only: a run
        may start right after its watermark when the tie there is unchanged."""
        if w.lookback:
            return False
        return w.strategy == "timestamp_only" or (w.strategy == "hybrid" and w.page_columns == w.bound_columns)

    def _tie_sum(self, desc: TableDescription, ts: K.KeyCol, value: Any,
                 upto: tuple[list[K.KeyCol], list[Any]] | None) -> str:
        return tie_sum(self.pool, desc, self._from(desc), ts, value, upto,
                       f"MySQL {self.label}: table {desc.full_name}")

    def _set_low(self, w: Window, desc: TableDescription, strategy: str, bkeys: list[K.KeyCol],
                 low: Cursor, lookback: Any) -> None:
        if strategy == "id_only":
            if low.id is None:
                raise SourceError(f"{desc.full_name}: the watermark has no id; set one with `lakeshift watermark set`")
            w.low_values = [bkeys[0].from_cursor(low.id)]
            # An id that is a unique key by itself: every row at the watermark was read. Otherwise
            # (the order id of order lines) a run may have stopped inside its rows: read them again.
            w.low_inclusive = [bkeys[0].name] not in [cols for _, cols in desc.identifying_keys()]
            return
        if low.timestamp is None:
            raise SourceError(f"{desc.full_name}: the watermark has no timestamp; "
                              f"set one with `lakeshift watermark set`")
        # hybrid and timestamp_only restart AT the watermark's timestamp: rows there that were not
        # read (a --limit inside a tie, a row written later in the same second) are read now, and
        # those read before are merged again by key -- unless the tie there is exactly the one
        # the watermark was taken on (ties.py): then right after it.
        start = K.shift_iso(low.timestamp, lookback) if lookback else low.timestamp
        w.low_values = [bkeys[0].from_cursor(start)]
        if lookback:
            w.low = Cursor(timestamp=start, id=None)
        elif self._checks_ties(w) and low.ties is not None and (strategy == "timestamp_only" or low.id is not None):
            position = w.low_values + ([bkeys[1].from_cursor(low.id)] if strategy == "hybrid" else [])
            upto = (bkeys, position) if strategy == "hybrid" else None
            if self._tie_sum(desc, bkeys[0], w.low_values[0], upto) == low.ties:
                w.low_values = position
                return
        w.low_inclusive = True

    def _cursor_key(self, desc: TableDescription, name: str, role: str) -> K.KeyCol:
        info = desc.info(name)
        key = K.KeyCol.of(info)
        if key is None or key.kind not in _CURSOR_KINDS[role]:
            what = "cdc_timestamp_column" if role == "ts" else "cdc_id_column"
            raise SourceError(f"{desc.full_name}: {what} {name!r} is {info.column_type}, which cannot order a CDC "
                              f"read; use a DATETIME/TIMESTAMP/integer column")
        return key

    @staticmethod
    def _key(desc: TableDescription, name: str) -> K.KeyCol:
        key = K.KeyCol.of(desc.info(name))
        if key is None:
            raise SourceError(f"{desc.full_name}: column {name!r} cannot order a keyset read")
        return key

    @staticmethod
    def _page_columns(desc: TableDescription, bound: list[str]) -> list[str]:
        """Keyset order: the cursor columns, then the rest of a unique NOT NULL key."""
        usable = [cols for _, cols in desc.identifying_keys()
                  if all(K.KeyCol.of(desc.info(c)) is not None for c in cols)]
        for cols in usable:
            if bound and set(cols) <= set(bound):
                return bound
        if usable:
            return bound + [c for c in usable[0] if c not in bound]
        return []

    def _greatest(self, desc: TableDescription, bkeys: list[K.KeyCol]) -> list[Any] | None:
        selects = ", ".join(k.select(i) for i, k in enumerate(bkeys))
        sql = (f"SELECT {selects} FROM {self._from(desc)} WHERE "
               + " AND ".join(f"{k.sql} IS NOT NULL" for k in bkeys)
               + " ORDER BY " + ", ".join(f"{k.sql} DESC" for k in bkeys) + " LIMIT 1")
        return self._one_position(desc, sql, len(bkeys))

    def _nth(self, desc: TableDescription, conds: list[str], order: list[K.KeyCol], n: int,
             where: str) -> list[Any] | None:
        """The position of the n-th row in `order` (None: fewer rows)."""
        selects = ", ".join(k.select(i) for i, k in enumerate(order))
        sql = (self._select(desc, selects, conds) + " ORDER BY " + ", ".join(k.sql for k in order)
               + f" LIMIT 1 OFFSET {int(n) - 1}")
        return self._one_position(desc, sql, len(order))

    def _one_position(self, desc: TableDescription, sql: str, n: int) -> list[Any] | None:
        where = f"MySQL {self.label}: table {desc.full_name}"
        batches = self.pool.retry(lambda: self.cx.fetch(sql, 1, where), where)
        rows = pa.Table.from_batches(batches).to_pylist() if batches else []
        if not rows:
            return None
        return [rows[0][f"{HIDDEN}k{i}"] for i in range(n)]

    @staticmethod
    def _cursor(strategy: str, bkeys: list[K.KeyCol], values: list[Any]) -> Cursor:
        if strategy == "id_only":
            return Cursor(timestamp=None, id=bkeys[0].to_cursor(values[0]))
        ts = bkeys[0].to_cursor(values[0], as_timestamp=True)
        ident = bkeys[1].to_cursor(values[1]) if strategy == "hybrid" else None
        return Cursor(timestamp=None if ts is None else str(ts), id=ident)

    # --------------------------------------------------------------- read
    def read(self, table: TableConfig, desc: TableDescription, window: Window, batch_size: int,
             limit: int | None = None) -> Iterator[pa.RecordBatch]:
        """Batches in the exact lake schema; window.last/rows follow the rows read."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        desc.apply(table)
        conv = Converter(desc.full_name, desc.columns, lake_schema(desc.columns), table.zero_dates)
        if window.empty or (limit is not None and limit <= 0):
            return
        hidden = list(dict.fromkeys(window.page_columns + window.bound_columns + window.high_columns))
        keys = [K.KeyCol.of(desc.info(c)) for c in hidden]
        by_name = {k.name: (i, k) for i, k in enumerate(keys) if k is not None}
        select = ", ".join(conv.select_list() + [k.select(i) for i, k in enumerate(keys) if k is not None])
        conds = self._window_conds(window, [by_name[c][1] for c in window.bound_columns],
                                   [by_name[c][1] for c in window.high_columns])
        reading = _Progress(window, [by_name[c] for c in window.bound_columns])
        where = f"MySQL {self.label}: table {desc.full_name}"
        try:
            if window.page_columns:
                yield from self._paged(desc, conv, select, conds, [by_name[c] for c in window.page_columns],
                                       reading, batch_size, limit, where)
            else:
                yield from self._streamed(desc, conv, select, conds, [by_name[c][1] for c in window.bound_columns],
                                          reading, batch_size, limit, where)
        except RowTooLarge as exc:
            raise SourceError(f"{exc}; column(s) that can hold such values: {large_columns(desc.infos)}; "
                              f"lakeshift cannot read this row until its values are smaller") from None
        reading.finish(limit)

    def _paged(self, desc: TableDescription, conv: Converter, select: str, conds: list[str],
               page: list[tuple[int, K.KeyCol]], reading: _Progress, batch_size: int, limit: int | None,
               where: str) -> Iterator[pa.RecordBatch]:
        page_keys = [k for _, k in page]
        order = ", ".join(k.sql for k in page_keys)
        position: list[Any] | None = None
        remaining = limit
        resumes = 0
        while True:
            n = batch_size if remaining is None else min(batch_size, remaining)
            page_conds = conds + ([K.after(page_keys, position)] if position is not None else [])
            sql = self._select(desc, select, page_conds) + f" ORDER BY {order} LIMIT {n}"
            # Streamed, not fetched whole: a page of any size costs one Arrow batch of memory.
            # Each page is a connectorx call (a new connection; in 0.4 also 3 threads the
            # worker process keeps until it is replaced), so few large pages read fastest.
            it = self._start(sql, min(n, STREAM_BATCH_ROWS), where)
            got = 0
            try:
                for b in it:
                    if b.num_rows == 0:
                        continue
                    out = conv.convert(b)
                    got += b.num_rows
                    position = [b.column(f"{HIDDEN}k{i}")[-1].as_py() for i, _ in page]
                    reading.advance(b)
                    yield out
            except TransientSourceError as exc:
                if got == 0 or resumes >= MAX_RESUMES:
                    raise
                resumes += 1  # keyset: go on right after the last row handed out
                log.warning("%s: page broken off after %d rows (%s); resuming after the last row read", where,
                            got, exc)
                if remaining is not None:
                    remaining -= got
                continue
            finally:
                it.close()
            if remaining is not None:
                remaining -= got
                if remaining <= 0:
                    return
            if got < n:
                return

    def _start(self, sql: str, batch_rows: int, where: str) -> Iterator[pa.RecordBatch]:
        """A started stream: the query runs and its first batch arrived (retried until then)."""
        def start() -> tuple[Iterator[pa.RecordBatch], pa.RecordBatch | None]:
            it = self.cx.stream(sql, batch_rows, where)
            return it, next(it, None)

        it, first = self.pool.retry(start, where)

        def chained() -> Iterator[pa.RecordBatch]:
            try:
                if first is not None:
                    yield first
                    yield from it
            finally:
                close = getattr(it, "close", None)
                if close is not None:
                    close()

        return chained()

    def _streamed(self, desc: TableDescription, conv: Converter, select: str, conds: list[str],
                  order: list[K.KeyCol], reading: _Progress, batch_size: int, limit: int | None,
                  where: str) -> Iterator[pa.RecordBatch]:
        """One query (no unique key to page by). Retried until its first batch;
        a failure after rows were handed out fails the read (no resume point).
        A --limit on an ordered read takes whole values of the order: rows
        without a key are replaced by window in the target (load/base.py), so a
        window must hold every row up to its last value (at least `limit` rows)."""
        if limit is not None and order:
            nth = self._nth(desc, conds, order, limit, where)
            limit = None
            if nth is not None:
                conds = conds + [K.upto(order, nth)]
        sql = self._select(desc, select, conds)
        if order:
            sql += " ORDER BY " + ", ".join(k.sql for k in order)
        if limit is not None:
            sql += f" LIMIT {int(limit)}"

        it = self._start(sql, min(batch_size, STREAM_BATCH_ROWS), where)
        try:
            for batch in it:
                if batch.num_rows:
                    out = conv.convert(batch)
                    reading.advance(batch)
                    yield out
        finally:
            it.close()

    @staticmethod
    def _window_conds(window: Window, bkeys: list[K.KeyCol], hkeys: list[K.KeyCol]) -> list[str]:
        conds = [f"{k.sql} IS NOT NULL" for k in bkeys]
        if window.low_values is not None:
            if window.low_inclusive:
                conds.append(f"{bkeys[0].sql} >= {bkeys[0].literal(window.low_values[0])}")
            else:
                conds.append(K.after(bkeys, window.low_values))
        if window.high_values is not None:
            conds.append(K.upto(hkeys, window.high_values))
        return conds

    @staticmethod
    def _from(desc: TableDescription) -> str:
        return f"{quote_mysql(desc.schema)}.{quote_mysql(desc.table)} AS {ALIAS}"

    def _select(self, desc: TableDescription, select: str, conds: list[str]) -> str:
        return f"SELECT {select} FROM {self._from(desc)}" + (" WHERE " + " AND ".join(conds) if conds else "")

    # --------------------------------------------------------------- lock
    @contextmanager
    def table_lock(self, pipeline: str, table: str, timeout: float = 0, scope: str = "") -> Iterator[HeldLock]:
        """Serialise runs of one pipeline table (MySQL GET_LOCK on a connection
        of its own, held for the block). GET_LOCK names are server-wide, so
        `scope` (the table's lake folder: where its batches and watermark live)
        keeps same-named pipelines of other databases or lakes apart."""
        name = "lakeshift:" + hashlib.sha1(f"{pipeline}\0{table}\0{scope}".encode()).hexdigest()[:40]
        with self.pool.dedicated() as conn, named_lock(conn, name, timeout, what=f"{pipeline}.{table}") as held:
            yield held


class _Progress:
    """Keeps window.last (the next watermark) and window.rows up to date."""

    def __init__(self, window: Window, bound: list[tuple[int, K.KeyCol]]) -> None:
        self.window, self.bound = window, bound

    def advance(self, batch: pa.RecordBatch) -> None:
        w = self.window
        w.rows += batch.num_rows
        if not self.bound or w.strategy == "full_sync":
            return
        values = [batch.column(f"{HIDDEN}k{i}")[-1].as_py() for i, _ in self.bound]
        cur = MySQLReader._cursor(w.strategy, [k for _, k in self.bound], values)
        w.last = _not_before(cur, w.watermark) if w.lookback else cur

    def finish(self, limit: int | None) -> None:
        """A read that went to its upper bound ends on the tie whose checksum
        was taken before it began: the watermark keeps that checksum."""
        w = self.window
        if w.high_ties and w.last is not None and w.last == w.high and (limit is None or w.rows < limit):
            w.last = Cursor(w.last.timestamp, w.last.id, w.high_ties)


def _not_before(cur: Cursor, floor: Cursor | None) -> Cursor:
    """A lookback run re-reads older rows; the watermark never moves back."""
    if floor is None or floor.timestamp is None or cur.timestamp is None:
        return cur
    return floor if K.iso_key(cur.timestamp) < K.iso_key(floor.timestamp) else cur
