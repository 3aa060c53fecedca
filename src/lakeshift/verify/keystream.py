"""hard_deletes' key comparison for a key of one integer column (verify.key_gaps), range by
range: MySQL streams its keys in key order (connectorx, through the key's index) in
chunks of CHUNK keys; each chunk closes a key range (the previous chunk's last key, this
chunk's last key], and the target is asked for its live keys of exactly that range
(PostgreSQL: one `string_agg` of their 8-byte binary forms through its key's index;
DuckDB: Arrow). The two sorted ranges are compared in Arrow (pyarrow.compute), and a
last range above MySQL's largest key holds the target's keys MySQL no longer has there.
Memory is about one range per side whatever the table's size, and no key becomes a
Python object (only the differences do).

Integer order is the same on every engine (text keys are not: their collations
differ, so they keep the hash windows of table.py). Window checksums cannot help here:
a few deletes spread over the table make nearly every window differ, and their keys
were fetched as Python tuples (228 MB at 2M rows)."""

from __future__ import annotations

import array
import queue
import sys
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from lakeshift.batch import Column
from lakeshift.errors import SourceError
from lakeshift.source.convert import ref
from lakeshift.source.positions import from_sql
from lakeshift.verify import canonical as C
from lakeshift.verify import prefetch as read_ahead
from lakeshift.verify.queries import Side

if TYPE_CHECKING:
    from lakeshift.load.session import Session
    from lakeshift.source import MySQLReader, TableDescription

I64_MAX = (1 << 63) - 1
CHUNK = 262_144  # MySQL keys per range (2 MB a side; a range compared takes about 10 times that)
ENGINES = (C.POSTGRES, C.DUCKDB)  # Redshift has no string_agg of bytea: the windows of table.py
# each range's keys through the key's index, in its order (the planner, without statistics of a
# table just loaded, would scan the table or sort a bitmap scan's rows); no ORDER BY in the
# aggregate (PostgreSQL 15 sorts its input again): the comparison needs no order, only ranges
PG_SESSION = ("SET enable_seqscan = off", "SET enable_bitmapscan = off", "SET work_mem = '64MB'", "SET jit = off")


def unsigned(c: Column) -> bool:
    """BIGINT UNSIGNED needs all 64 bits (uint64); every other integer fits int64."""
    return c.data_type == "bigint" and "unsigned" in c.mysql_type


def source_keys(reader: MySQLReader, desc: TableDescription, c: Column, after: int | None = None) -> Iterator[pa.Array]:
    """MySQL's keys in key order, chunk by chunk, above `after` (every row: no watermark condition;
    a NULL key, refused, comes first where there is no `after`)."""
    r = ref(c.name)
    where = f"MySQL {reader.label}: table {desc.full_name}"
    typ = pa.uint64() if unsigned(c) else pa.int64()
    above = f" WHERE {r} > {int(after)}" if after is not None else ""
    batches = reader.cx.stream(f"SELECT {r} AS k FROM {from_sql(desc)}{above} ORDER BY {r}", CHUNK, where)
    try:
        for b in batches:
            if b.num_rows:
                yield _checked(pc.cast(b.column(0), typ), desc, c, "MySQL")
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()


class TargetKeys:
    """The target's live keys (`side.conds`) of one key range at a time."""

    def __init__(self, session: Session, side: Side, desc: TableDescription, c: Column) -> None:
        self.session, self.side, self.desc, self.c = session, side, desc, c
        self.typ = pa.uint64() if unsigned(c) else pa.int64()
        if side.engine == C.POSTGRES:
            for statement in PG_SESSION:
                session.execute(statement)

    def between(self, lo: int | None, hi: int | None) -> pa.Array:
        """Keys k with lo < k <= hi (None: no bound); in key order from DuckDB, in the index's
        order (not relied on) from PostgreSQL."""
        r = self.side.ref(self.c.name)
        bounds = [f"{r} > {int(lo)}"] if lo is not None else []
        bounds += [f"{r} <= {int(hi)}"] if hi is not None else []
        if self.side.engine == C.DUCKDB:
            return self._duckdb(r, self.side.where(bounds))
        # a range below 2^63 needs no two's complement (the CASE cost PostgreSQL a quarter of the query)
        k = f"({r})::int8" if hi is not None and hi <= I64_MAX else C.int_key(self.c, self.side.engine, r)
        return self._postgres(k, self.side.where(bounds))

    def _duckdb(self, r: str, where: str) -> pa.Array:
        from lakeshift.load.session import translate_errors

        cast = "UBIGINT" if unsigned(self.c) else "BIGINT"
        with translate_errors(self.session.describe):
            table = self.session.conn.sql(f"SELECT CAST({r} AS {cast}) AS k FROM {self.side.table_sql}{where} "
                                          f"ORDER BY {r}").to_arrow_table()
        return _checked(table.column(0), self.desc, self.c, "the target")

    def _postgres(self, k: str, where: str) -> pa.Array:
        """`k`: the key as int8; its 8-byte big-endian forms, joined, read back as 64-bit integers
        (a BIGINT UNSIGNED above 2^63 - 1 came as its two's complement: the same 64 bits)."""
        from lakeshift.load.session import translate_errors

        with translate_errors(self.session.describe):
            with self.session.conn.cursor(binary=True) as cur:  # the bytea as its bytes, not hex text
                cur.execute(f"SELECT string_agg(int8send({k}), ''::bytea) FROM {self.side.table_sql}{where}")
                data, = cur.fetchone()
        values = array.array("q")
        values.frombytes(bytes(data or b""))
        if sys.byteorder == "little":
            values.byteswap()
        arr = pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])
        return pc.cast(arr, self.typ, safe=False) if unsigned(self.c) else arr

    def check_nulls(self) -> None:
        """A NULL key is in no range: refused rather than left out (through the key's index)."""
        r = self.side.ref(self.c.name)
        if self.session.query(f"SELECT 1 FROM {self.side.table_sql}{self.side.where([f'{r} IS NULL'])} LIMIT 1"):
            raise _nulls(self.desc, self.c, "the target")


def _nulls(desc: TableDescription, c: Column, where: str) -> SourceError:
    return SourceError(f"{desc.full_name}: key column {c.name!r} holds NULLs in {where}; "
                       f"hard_deletes needs a key without NULLs")


def _checked(arr: pa.Array | pa.ChunkedArray, desc: TableDescription, c: Column, where: str) -> pa.Array:
    if arr.null_count:
        raise _nulls(desc, c, where)
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def prefetch(reader: MySQLReader, desc: TableDescription, c: Column, ahead: int | None = None,
             reading: bool = False) -> read_ahead.ReadAhead:
    """MySQL's key chunks, read from now on in a thread (prefetch.py; `ahead`: its AHEAD). One
    statement: two key ranges read at once took a second connectorx child (its start cost more than
    the second MySQL thread saved: hard_deletes' bench run 1.46x -> 1.31x with one)."""
    return read_ahead.ReadAhead(lambda after: source_keys(reader, desc, c, after),
                                read_ahead.AHEAD if ahead is None else ahead, reading)


def gaps(reader: MySQLReader, desc: TableDescription, targets: Sequence[TargetKeys], c: Column,
         ahead: read_ahead.ReadAhead | None = None) -> tuple[pa.Array, pa.Array, int]:
    """(keys the target holds and MySQL not, keys MySQL holds and the target not, the target's
    live rows). MySQL streams in a thread (`ahead`: started earlier, or now) while the target
    answers for the ranges it closes, on each of `targets` (sessions) at once: both engines work at once."""
    keys = ahead or prefetch(reader, desc, c, 1, reading=True)
    free: queue.Queue[TargetKeys] = queue.Queue()
    for t in targets:
        free.put(t)

    def between(lo: int | None, hi: int | None) -> pa.Array:
        t = free.get()  # a session of its own for each range asked at once
        try:
            return t.between(lo, hi)
        finally:
            free.put(t)

    try:
        targets[0].check_nulls()
        gone, back, rows = compare_ranges(keys.chunks(), between, desc.full_name, len(targets))
    finally:
        keys.close()  # the reader ends (and closes its stream) before this returns
    return _joined(gone, targets[0].typ), _joined(back, targets[0].typ), rows


def compare_ranges(source: Iterator[pa.Array], between: Any, name: str, at_once: int = 1) -> tuple[
        list[pa.Array], list[pa.Array], int]:
    """(keys only the target holds, keys only MySQL holds, target keys) over ascending MySQL
    chunks; `between(lo, hi)`: the target's keys lo < k <= hi, in any order, asked for up to
    `at_once` ranges at the same time."""
    gone: list[pa.Array] = []
    back: list[pa.Array] = []
    rows, lo = 0, None
    # the target's ranges are asked for in threads: they answer while this one compares the range
    # before and waits for MySQL's next chunk
    with ThreadPoolExecutor(max_workers=at_once, thread_name_prefix="lakeshift-keys-target") as pool:
        waiting: deque[tuple[pa.Array, Future[pa.Array]]] = deque()
        for a in source:
            if _descends(a, pc.less_equal) or (lo is not None and a[0].as_py() <= lo):
                raise SourceError(f"{name}: MySQL's keys did not arrive in ascending order, each once")
            hi = a[-1].as_py()
            waiting.append((a, pool.submit(between, lo, hi)))
            lo = hi
            if len(waiting) > at_once:
                done, asked = waiting.popleft()
                rows += _one_range(done, asked.result(), gone, back)
        while waiting:
            done, asked = waiting.popleft()
            rows += _one_range(done, asked.result(), gone, back)
    rest = between(lo, None)
    return gone, back, rows + _one_range(rest.slice(0, 0), rest, gone, back)


def _one_range(a: pa.Array, b: pa.Array, gone: list[pa.Array], back: list[pa.Array]) -> int:
    g, k = _range_gaps(a, b, not _descends(b, pc.less_equal))  # ascending without repeats: distinct
    if len(g):
        gone.append(g)
    if len(k):
        back.append(k)
    return len(b)


def _joined(parts: list[pa.Array], typ: pa.DataType) -> pa.Array:
    return pa.concat_arrays(parts) if parts else pa.array([], typ)


def _descends(a: pa.Array, op: Any) -> bool:
    """Some key is `op` (less: below; less_equal: not above) the one before it."""
    return len(a) > 1 and bool(pc.any(op(a.slice(1), a.slice(0, len(a) - 1))).as_py())


def _range_gaps(a: pa.Array, b: pa.Array, distinct: bool) -> tuple[pa.Array, pa.Array]:
    """(b - a, a - b) of one range; `a` (MySQL's) ascends without repeats; `distinct`: `b`
    does too (else it may come in any order, with repeats). Equal ranges cost one comparison;
    else both are sorted together and a key with no equal neighbour is on one side only.
    No hash set: pyarrow's is_in took 120 MB for a set of 524,288 keys."""
    if len(a) == len(b) and distinct and (not len(a) or pc.all(pc.equal(a, b)).as_py()):
        return b.slice(0, 0), a.slice(0, 0)
    if not distinct:
        b = _sorted_unique(b)
    keys = pa.concat_arrays([a, b])
    order = pc.sort_indices(keys)
    keys = keys.take(order)
    in_target = pc.greater_equal(order, len(a))  # taken from b
    same = pc.equal(keys.slice(1), keys.slice(0, len(keys) - 1)) if len(keys) > 1 else pa.array([], pa.bool_())
    paired = pc.or_(pa.concat_arrays([pa.array([False]), same]), pa.concat_arrays([same, pa.array([False])]))
    alone = pc.invert(paired)
    return keys.filter(pc.and_(alone, in_target)), keys.filter(pc.and_(alone, pc.invert(in_target)))


def _sorted_unique(b: pa.Array) -> pa.Array:
    if not len(b):
        return b
    b = b.take(pc.sort_indices(b))
    first = pc.not_equal(b.slice(1), b.slice(0, len(b) - 1))
    return b.filter(pa.concat_arrays([pa.array([True]), first]))
