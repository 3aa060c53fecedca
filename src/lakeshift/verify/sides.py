"""The two sides of a comparison: MySQL through the reader's pool, the target
through a session of its loader. Each runs the statements of queries.py."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from lakeshift.source.convert import ref, zero_date_test
from lakeshift.source.positions import from_sql
from lakeshift.verify import canonical as C
from lakeshift.verify import queries as Q

if TYPE_CHECKING:
    from lakeshift.load.session import Session
    from lakeshift.source import MySQLReader, TableDescription

FETCH_CHUNK = 4096  # windows per fetch statement (an IN list)
# PostgreSQL plans the window aggregate for as many groups as rows (it cannot estimate the
# distinct windows of an expression), so with the default 4 MB it spills the hash table to disk
# (2M rows: 129 batches, twice the time); JIT only adds compile time to these single scans.
# Session settings of verify's own sessions: the server, not lakeshift, holds this memory.
POSTGRES_SESSION = ("SET work_mem = '64MB'", "SET jit = off")


class SourceSide:
    """MySQL: `synced` is the SQL condition of the rows the target has loaded (None: all)."""

    def __init__(self, reader: MySQLReader, desc: TableDescription, synced: str | None) -> None:
        self.reader, self.desc, self.synced = reader, desc, synced
        self.where = f"MySQL {reader.label}: table {desc.full_name}"
        utf8mb4 = frozenset(i.name for i in desc.infos if (i.charset or "").lower() == "utf8mb4")
        self.all_rows = Q.Side(C.MYSQL, from_sql(desc), ref, zero_date_test, utf8mb4=utf8mb4)
        self.side = replace(self.all_rows, conds=(synced,) if synced else ())
        self._halves: dict[bool, list[Q.Side]] = {}

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """A scan of the table that answers only at its end: waits as a read does (pool.long_query)."""
        return self.reader.pool.long_query(sql, self.where)

    def estimate(self) -> int:
        """The catalogue's row estimate (sizes the windows; the counts come from the aggregate)."""
        rows = self.reader.pool.query("SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
                                      "AND TABLE_NAME = %s", (self.desc.schema, self.desc.table), self.where)
        return int(rows[0][0] or 0) if rows else 0

    def pending(self) -> int:
        """Rows beyond the loaded watermark (0 without one)."""
        if not self.synced:
            return 0
        (beyond,), = self.query(Q.count_sql(self.all_rows, [f"NOT COALESCE(({self.synced}), FALSE)"]))
        return int(beyond)

    def aggregate(self, shape: Q.Shape) -> dict[int, tuple[Any, ...]]:
        merged: dict[int, tuple[int, ...]] = {}
        for rows in self._on_halves(shape, Q.aggregate_sql):
            for r in rows:  # a window's count and sums are the sums of its halves' (all integers)
                b, values = int(r[0]), tuple(int(v) for v in r[1:])
                old = merged.get(b)
                merged[b] = values if old is None else tuple(x + y for x, y in zip(old, values))
        return merged

    def whole(self, shape: Q.Shape) -> tuple[Any, ...]:
        parts = [rows[0] for rows in self._on_halves(shape, Q.whole_sql)]
        if len(parts) == 1:
            return tuple(parts[0])
        return tuple(int(x or 0) + int(y or 0) for x, y in zip(*parts))  # a count and integer sums

    def _on_halves(self, shape: Q.Shape, statement: Any) -> list[list[tuple[Any, ...]]]:
        """`statement(side, shape)`'s rows, over the halves of the key range at the same time."""
        if shape.keys_only not in self._halves:  # the whole-table pass and the windows split alike
            self._halves[shape.keys_only] = self.halves(shape)
        halves = self._halves[shape.keys_only]
        if len(halves) == 1:
            return [self.query(statement(self.side, shape))]
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lakeshift-verify-half") as pool:
            upper = pool.submit(self.query, statement(halves[1], shape))
            return [self.query(statement(halves[0], shape)), upper.result()]

    def halves(self, shape: Q.Shape) -> list[Q.Side]:
        """--deep hashes every row in MySQL, one core's work for one statement: a key of one integer
        column leading the primary key splits it into two key ranges, run at the same time. Not keys
        only: MySQL then reads the smallest index that holds the key (a secondary index holds it too),
        which a range of the primary key cannot use (the bench's 2M keys: 0.55 s either way, 0.85 s
        against 0.8 s with PostgreSQL's pass beside them)."""
        key = shape.key[0].name if shape.integer_key and not shape.keys_only else None
        if key is None or self.desc.custom_sql or self.desc.primary_key[:1] != [key]:
            return [self.side]  # a custom SELECT has no index to find MIN/MAX or a range by
        col = self.side.ref(key)
        (lo, hi), = self.reader.pool.query(f"SELECT MIN({col}), MAX({col}) FROM {self.side.table_sql}", None,
                                           self.where)
        if lo is None or int(lo) == int(hi):
            return [self.side]
        mid = (int(lo) + int(hi)) // 2
        return [replace(self.side, conds=(*self.side.conds, f"{col} <= {mid}")),
                replace(self.side, conds=(*self.side.conds, f"{col} > {mid}"))]

    def lookup(self, shape: Q.Shape, values: Sequence[int]) -> list[tuple[Any, ...]]:
        """An integer key: the canonical keys (int_key) of those of `values` (key values) MySQL holds,
        through the key's index (verify/lookup.py)."""
        hk, _ = shape.hashes(self.all_rows)
        key = self.all_rows.ref(shape.key[0].name)
        return self.reader.pool.query(f"SELECT {hk} FROM {self.all_rows.table_sql} WHERE {key} IN "
                                      f"({', '.join(str(int(v)) for v in values)})", None, self.where)

    def fetch(self, shape: Q.Shape, buckets: Sequence[int]) -> list[tuple[Any, ...]]:
        """Keyed: every row of the windows, synced or not, with the synced flag when there is a watermark."""
        if not shape.key:
            return _chunked(lambda b: self.query(Q.fetch_sql(self.side, shape, b)), buckets)
        extra = [(f"CASE WHEN {self.synced} THEN 1 ELSE 0 END", "synced")] if self.synced else []
        return _chunked(lambda b: self.query(Q.fetch_sql(self.all_rows, shape, b, extra)), buckets)


class TargetSide:
    """The target table, through one session (`engine`: the loader dialect's name; `conds`: its live rows)."""

    def __init__(self, session: Session, engine: str, schema: str, table: str, conds: tuple[str, ...] = ()) -> None:
        self.session, self.engine = session, engine
        if engine == C.POSTGRES:
            for statement in POSTGRES_SESSION:
                session.execute(statement)
        self.side = Q.target_side(engine, schema, table, conds)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return self.session.query(sql)

    def fit_key(self, shape: Q.Shape) -> None:
        """A BIGINT UNSIGNED key (numeric(20,0) on PostgreSQL) whose largest value, found through its
        index, is below 2^63 is cast to bigint as it is (the two's complement CASE cost PostgreSQL a
        third of a keys-only aggregate)."""
        c = shape.key[0] if shape.integer_key else None
        if c is None or self.engine == C.MYSQL or not (c.data_type == "bigint" and "unsigned" in c.mysql_type):
            return
        r = self.side.ref(c.name)
        (top,), = self.query(f"SELECT MAX({r}) FROM {self.side.table_sql}{self.side.where()}")
        if top is None or int(top) <= C.I64_MAX:
            self.side = replace(self.side, key_below_2_63=True)

    def aggregate(self, shape: Q.Shape) -> dict[int, tuple[Any, ...]]:
        return {int(r[0]): tuple(r[1:]) for r in self.query(Q.aggregate_sql(self.side, shape))}

    def whole(self, shape: Q.Shape) -> tuple[Any, ...]:
        if not (self.engine == C.POSTGRES and shape.keys_only):
            return tuple(self.query(Q.whole_sql(self.side, shape))[0])
        # keys only, MySQL's side is one scan on one core and PostgreSQL's takes less (2M keys: 0.49 s
        # against 0.55 s): its parallel workers would end it no sooner than MySQL's, only take the
        # CPU of a MySQL on the same machine (0.77 s instead of 0.64 s for both)
        self.session.execute("SET max_parallel_workers_per_gather = 0")
        try:
            return tuple(self.query(Q.whole_sql(self.side, shape))[0])
        finally:
            self.session.execute("RESET max_parallel_workers_per_gather")

    def fetch(self, shape: Q.Shape, buckets: Sequence[int]) -> list[tuple[Any, ...]]:
        return _chunked(lambda b: self.query(Q.fetch_sql(self.side, shape, b)), buckets)


def _chunked(run: Any, buckets: Sequence[int]) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for i in range(0, len(buckets), FETCH_CHUNK):
        rows.extend(run(buckets[i:i + FETCH_CHUNK]))
    return rows
