"""MySQLReader: describe a table, fix a run's window, and stream its rows as
Arrow batches in the exact lake schema (see window.py for the CDC rules,
types.py/convert.py for the type rules). A read returns where it stopped
(row_stream.py); the window it was given is never changed."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from lakeshift.batch import Cursor
from lakeshift.config.models import ConnectionSettings, MySQLSource, TableConfig
from lakeshift.errors import SourceError, TransientSourceError
from lakeshift.source import keys as K
from lakeshift.source.client import label
from lakeshift.source.convert import HIDDEN, Converter
from lakeshift.source.cx import Connectorx, RowTooLarge
from lakeshift.source.description import TableDescription, describe_table
from lakeshift.source.locks import HeldLock, named_lock
from lakeshift.source.pool import MySQLPool
from lakeshift.source.positions import PositionQueries, select_sql
from lakeshift.source.row_stream import ReadProgress, ReadResult, RowStream
from lakeshift.source.types import lake_schema, large_columns
from lakeshift.source.window import Window
from lakeshift.source.window_plan import plan_window

log = logging.getLogger("lakeshift.source")
# A page (one SELECT ... LIMIT batch_size) is streamed in Arrow batches of at
# most this many rows, so memory is bounded by this, not by the page.
STREAM_BATCH_ROWS = 16_384
MAX_RESUMES = 20  # a page broken off after some rows is resumed after the last row read, at most this often


@dataclass(frozen=True)
class _Query:
    """One read's statement parts: the window's conditions and the select list
    (the lake columns, then the hidden key columns that track the position)."""

    desc: TableDescription
    conv: Converter
    select: str
    conds: list[str]
    progress: ReadProgress
    where: str


class MySQLReader:
    def __init__(self, src: MySQLSource, settings: ConnectionSettings, pool: MySQLPool | None = None, *,
                 read_sql: Callable[..., Any] | None = None, sleep: Callable[[float], None] | None = None) -> None:
        self.src, self.settings = src, settings
        self._own_pool = pool is None
        self.pool = pool or MySQLPool(src, settings, sleep=time.sleep if sleep is None else sleep)
        self.cx = Connectorx(src, settings, self.pool, read_sql)
        self.positions = PositionQueries(self.pool, self.cx, self.label)

    @property
    def label(self) -> str:
        return label(self.src)

    def close(self) -> None:
        self.cx.close()
        if self._own_pool:
            self.pool.close()

    def describe(self, full_name: str, table: TableConfig | None = None) -> TableDescription:
        """Columns and keys of 'db.table' or 'table' (in the connection's database), or
        of the table's custom_sql (named by its lake name, `full_name`)."""
        if table is not None and table.custom_sql:
            from lakeshift.source.custom_sql import describe_query

            return describe_query(self.pool, self.src.database, self.label, full_name, table)
        return describe_table(self.pool, self.src.database, self.label, full_name, table)

    def estimated_rows(self, full_name: str) -> int | None:
        """The catalogue's row count of 'db.table' (information_schema.TABLES.TABLE_ROWS:
        an estimate for InnoDB, read without touching the table); None when it has none or says 0."""
        from lakeshift.identifiers import split_table_name

        schema, name = split_table_name(full_name)
        rows = self.pool.query("SELECT TABLE_ROWS FROM information_schema.TABLES "
                               "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
                               (schema or self.src.database, name), f"MySQL {self.label}: table {full_name}")
        n = int(rows[0][0]) if rows and rows[0][0] is not None else 0
        return n or None  # 0: a table InnoDB has not analysed yet, as likely as an empty one

    def lake_schema(self, desc: TableDescription, table: TableConfig | None = None) -> pa.Schema:
        if table is not None:
            desc.apply(table)
        return lake_schema(desc.columns)

    def plan_window(self, table: TableConfig, desc: TableDescription, low: Cursor | None) -> Window:
        """Fix this run's range now: the upper bound is read from the table."""
        return plan_window(self.positions, table, desc, low)

    # --------------------------------------------------------------- read
    def read(self, table: TableConfig, desc: TableDescription, window: Window, batch_size: int,
             limit: int | None = None) -> RowStream:
        """The window's rows as batches in the exact lake schema; the stream's
        `result` says where the read stopped (the next watermark)."""
        return RowStream(self._rows(table, desc, window, batch_size, limit))

    def _rows(self, table: TableConfig, desc: TableDescription, window: Window, batch_size: int,
              limit: int | None) -> Generator[pa.RecordBatch, None, ReadResult]:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        desc.apply(table)
        conv = Converter(desc.full_name, desc.columns, lake_schema(desc.columns), table.zero_dates)
        if window.empty or (limit is not None and limit <= 0):
            return ReadResult(0, None)
        hidden = list(dict.fromkeys(window.page_columns + window.bound_columns + window.high_columns))
        keys = [K.KeyCol.of(desc.info(c)) for c in hidden]
        by_name = {k.name: (i, k) for i, k in enumerate(keys) if k is not None}
        select = ", ".join(conv.select_list() + [k.select(i) for i, k in enumerate(keys) if k is not None])
        conds = self._window_conds(window, [by_name[c][1] for c in window.bound_columns],
                                   [by_name[c][1] for c in window.high_columns])
        progress = ReadProgress(window, [by_name[c] for c in window.bound_columns])
        q = _Query(desc, conv, select, conds, progress, self.positions.where(desc))
        try:
            if window.page_columns:
                yield from self._paged(q, [by_name[c] for c in window.page_columns], batch_size, limit)
            else:
                yield from self._streamed(q, [by_name[c][1] for c in window.bound_columns], batch_size, limit)
        except RowTooLarge as exc:
            raise SourceError(f"{exc}; column(s) that can hold such values: {large_columns(desc.infos)}; "
                              f"lakeshift cannot read this row until its values are smaller") from None
        return progress.result(limit)

    def _paged(self, q: _Query, page: list[tuple[int, K.KeyCol]], batch_size: int,
               limit: int | None) -> Iterator[pa.RecordBatch]:
        page_keys = [k for _, k in page]
        order = ", ".join(k.sql for k in page_keys)
        position: list[Any] | None = None
        remaining = limit
        resumes = 0
        while True:
            n = batch_size if remaining is None else min(batch_size, remaining)
            page_conds = q.conds + ([K.after(page_keys, position)] if position is not None else [])
            sql = select_sql(q.desc, q.select, page_conds) + f" ORDER BY {order} LIMIT {n}"
            # Streamed, not fetched whole: a page of any size costs one Arrow batch of memory.
            # Each page is a connectorx call (a new connection; in 0.4 also 3 threads the
            # worker process keeps until it is replaced), so few large pages read fastest.
            it = self._start(sql, min(n, STREAM_BATCH_ROWS), q.where)
            got = 0
            try:
                for b in it:
                    if b.num_rows == 0:
                        continue
                    out = q.conv.convert(b)
                    got += b.num_rows
                    position = [b.column(f"{HIDDEN}k{i}")[-1].as_py() for i, _ in page]
                    q.progress.advance(b)
                    yield out
            except TransientSourceError as exc:
                if got == 0 or resumes >= MAX_RESUMES:
                    raise
                resumes += 1  # keyset: go on right after the last row handed out
                log.warning("%s: page broken off after %d rows (%s); resuming after the last row read", q.where,
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

    def _start(self, sql: str, batch_rows: int, where: str) -> Generator[pa.RecordBatch, None, None]:
        """A started stream: the query runs and its first batch arrived (retried until then)."""
        def start() -> tuple[Iterator[pa.RecordBatch], pa.RecordBatch | None]:
            it = self.cx.stream(sql, batch_rows, where)
            return it, next(it, None)

        it, first = self.pool.retry(start, where)

        def chained() -> Generator[pa.RecordBatch, None, None]:
            try:
                if first is not None:
                    yield first
                    yield from it
            finally:
                if isinstance(it, Generator):
                    it.close()

        return chained()

    def _streamed(self, q: _Query, order: list[K.KeyCol], batch_size: int,
                  limit: int | None) -> Iterator[pa.RecordBatch]:
        """One query (no unique key to page by). Retried until its first batch;
        a failure after rows were handed out fails the read (no resume point).
        A --limit on an ordered read takes whole values of the order: rows
        without a key are replaced by window in the target (load/base.py), so a
        window must hold every row up to its last value (at least `limit` rows)."""
        conds = q.conds
        if limit is not None and order:
            nth = self.positions.nth(q.desc, conds, order, limit)
            limit = None
            if nth is not None:
                conds = conds + [K.upto(order, nth)]
        sql = select_sql(q.desc, q.select, conds)
        if order:
            sql += " ORDER BY " + ", ".join(k.sql for k in order)
        if limit is not None:
            sql += f" LIMIT {int(limit)}"

        it = self._start(sql, min(batch_size, STREAM_BATCH_ROWS), q.where)
        try:
            for batch in it:
                if batch.num_rows:
                    out = q.conv.convert(batch)
                    q.progress.advance(batch)
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
