"""hard_deletes' key comparison for a key of one integer column (verify.key_gaps), by
streaming: both sides send their keys in key order (MySQL through connectorx and
its key's index, PostgreSQL through ADBC, DuckDB as Arrow), in chunks of
about CHUNK keys, and the two sorted streams
are merged range by range in Arrow (pyarrow.compute):
a range ends at the smaller of the two chunks' last key, so each side holds
about one chunk whatever the table's size, and no key becomes a Python object
(only the differences do).

Integer order is the same on every engine (text keys are not: their collations
differ, so they keep the hash windows of table.py). The window checksums
cannot help here: a few deletes spread over the table make nearly every window
differ, and their keys were fetched as Python tuples (228 MB at 2M rows)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import closing, suppress
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from lakeshift.batch import Column
from lakeshift.errors import LakeshiftError, LoadError, SourceError, one_line
from lakeshift.redact import redact
from lakeshift.source.convert import ref
from lakeshift.source.positions import from_sql
from lakeshift.verify import canonical as C
from lakeshift.verify.queries import Side

if TYPE_CHECKING:
    from lakeshift.source import MySQLReader, TableDescription

CHUNK = 262_144  # keys per chunk of each side's stream
ENGINES = (C.POSTGRES, C.DUCKDB)  # Redshift: no ADBC driver here, the windows of table.py


def unsigned(c: Column) -> bool:
    """BIGINT UNSIGNED needs all 64 bits (uint64); every other integer fits int64."""
    return c.data_type == "bigint" and "unsigned" in c.mysql_type


def source_keys(reader: MySQLReader, desc: TableDescription, c: Column) -> Iterator[pa.Array]:
    """MySQL's keys in key order, chunk by chunk (every row: no watermark condition)."""
    r = ref(c.name)
    where = f"MySQL {reader.label}: table {desc.full_name}"
    typ = pa.uint64() if unsigned(c) else pa.int64()
    batches = reader.cx.stream(f"SELECT {r} AS k FROM {from_sql(desc)} ORDER BY {r}", CHUNK, where)
    try:
        for b in batches:
            if b.num_rows:
                yield _checked(pc.cast(b.column(0), typ), desc, c, "MySQL")
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()


# the key's index gives the order (the planner, without statistics of a table just loaded,
# would sort it, spilling to disk); the same session settings as verify's other statements
ADBC_SESSION = ("SET enable_sort = off", "SET work_mem = '64MB'", "SET jit = off")


def target_keys(loader: Any, side: Side, desc: TableDescription, c: Column) -> Iterator[pa.Array]:
    """The target's live keys (`side.conds`) in key order, chunk by chunk: DuckDB's Arrow on a
    session of `loader`, PostgreSQL's through ADBC (its binary COPY, parsed in C into Arrow)."""
    r = side.ref(c.name)
    typ = pa.uint64() if unsigned(c) else pa.int64()
    if side.engine == C.DUCKDB:
        cast = "UBIGINT" if unsigned(c) else "BIGINT"
        with closing(loader.connect()) as session:
            result = session.conn.sql(f"SELECT CAST({r} AS {cast}) AS k FROM {side.table_sql}{side.where()} "
                                      f"ORDER BY {r}")
            for b in result.to_arrow_reader(CHUNK):
                if b.num_rows:
                    yield _checked(b.column(0), desc, c, "the target")
        return
    # int8 on the wire (two's complement above 2^63 - 1, cast back to the same 64 bits below)
    sql = f"SELECT {C.int_key(c, side.engine, r)} AS k FROM {side.table_sql}{side.where()} ORDER BY {r}"
    with closing(loader.adbc_connect()) as conn, closing(conn.cursor()) as cur:
        try:
            for statement in ADBC_SESSION:
                cur.execute(statement)
            cur.execute(sql)
            for b in cur.fetch_record_batch():
                if b.num_rows:
                    yield _checked(pc.cast(b.column(0), typ, safe=False), desc, c, "the target")
        except LakeshiftError:
            raise
        except Exception as exc:  # noqa: BLE001 - any driver error: one line naming the target
            raise LoadError(redact(f"{loader.describe}: reading the keys of {side.table_sql}: "
                                   f"{one_line(str(exc))}")) from None


def _checked(arr: pa.Array | pa.ChunkedArray, desc: TableDescription, c: Column, where: str) -> pa.Array:
    if arr.null_count:
        raise SourceError(f"{desc.full_name}: key column {c.name!r} holds NULLs in {where}; "
                          f"hard_deletes needs a key without NULLs")
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def gaps(reader: MySQLReader, desc: TableDescription, loader: Any, side: Side,
         c: Column) -> tuple[pa.Array, pa.Array, int]:
    """(keys the target holds and MySQL not, keys MySQL holds and the target not, the target's
    live rows). MySQL streams in a thread while the target streams here: both engines work at once."""
    typ = pa.uint64() if unsigned(c) else pa.int64()
    chunks: queue.Queue[Any] = queue.Queue(maxsize=2)  # MySQL's side: at most two chunks ahead
    stop = threading.Event()
    worker = threading.Thread(target=_produce, args=(source_keys(reader, desc, c), chunks, stop),
                              name="lakeshift-keys-mysql", daemon=True)
    worker.start()
    try:
        gone, back, rows = merge_gaps(_consume(chunks), target_keys(loader, side, desc, c), desc.full_name, typ)
    finally:
        stop.set()
        while worker.is_alive():  # let the reader end (and close its stream) before leaving
            with suppress(queue.Empty):
                chunks.get(timeout=0.1)
    return _joined(gone, typ), _joined(back, typ), rows


def _produce(source: Iterator[pa.Array], chunks: queue.Queue[Any], stop: threading.Event) -> None:
    """MySQL's chunks into `chunks`, then None (or the error, raised by the consumer)."""
    try:
        with closing(source) as stream:  # type: ignore[type-var]
            for chunk in stream:
                if not _put(chunks, chunk, stop):
                    return
        _put(chunks, None, stop)
    except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
        _put(chunks, exc, stop)


def _put(chunks: queue.Queue[Any], item: Any, stop: threading.Event) -> bool:
    while not stop.is_set():
        with suppress(queue.Full):
            chunks.put(item, timeout=0.5)
            return True
    return False


def _consume(chunks: queue.Queue[Any]) -> Iterator[pa.Array]:
    while (item := chunks.get()) is not None:
        if isinstance(item, BaseException):
            raise item
        yield item


def _joined(parts: list[pa.Array], typ: pa.DataType) -> pa.Array:
    return pa.concat_arrays(parts) if parts else pa.array([], typ)


class _Sorted:
    """One side's stream, checked to ascend, consumed below a key. `done`: the stream is over
    (its buffer may still hold keys)."""

    def __init__(self, chunks: Iterator[pa.Array], name: str, typ: pa.DataType) -> None:
        self.chunks, self.name, self.typ = chunks, name, typ
        self.buf: pa.Array = pa.array([], typ)
        self.done, self.seen, self.last = False, 0, None
        self.distinct = True  # every key so far above the one before it

    def fill(self) -> None:
        """Read on until the buffer holds two distinct keys (or the stream is over): every key
        below the buffer's last one is then in it, whatever duplicates follow."""
        while not self.done and (not len(self.buf) or self.buf[0] == self.buf[-1]):
            nxt = next(self.chunks, None)
            if nxt is None:
                self.done = True
            elif len(nxt):
                if nxt.type != self.typ:
                    raise SourceError(f"{self.name}: keys arrived as {nxt.type}, not {self.typ}")
                first = nxt[0].as_py()
                if (self.last is not None and first < self.last) or _descends(nxt, pc.less):
                    raise SourceError(f"{self.name}: keys did not arrive in ascending order")
                if self.distinct and ((self.last is not None and first == self.last) or _descends(nxt, pc.less_equal)):
                    self.distinct = False
                self.last, self.seen = nxt[-1].as_py(), self.seen + len(nxt)
                self.buf = pa.concat_arrays([self.buf, nxt]) if len(self.buf) else nxt

    def take_below(self, hi: Any) -> pa.Array:
        """The buffered keys < hi (all of them when hi is None)."""
        n = len(self.buf) if hi is None else pc.sum(pc.less(self.buf, hi)).as_py() or 0
        part, self.buf = self.buf.slice(0, n), self.buf.slice(n)
        return part


def _descends(a: pa.Array, op: Any) -> bool:
    """Some key is `op` (less: below; less_equal: not above) the one before it."""
    return len(a) > 1 and bool(pc.any(op(a.slice(1), a.slice(0, len(a) - 1))).as_py())


def _minus(a: pa.Array, b: pa.Array) -> pa.Array:
    """The distinct keys of `a` not in `b`."""
    return pc.unique(a.filter(pc.invert(pc.is_in(a, value_set=b)))) if len(b) else pc.unique(a)


def _range_gaps(a: pa.Array, b: pa.Array, distinct: bool) -> tuple[pa.Array, pa.Array]:
    """(b - a, a - b) of one range; `distinct`: neither side repeats a key, so when every key
    of `a` is in `b` (the usual case: rows deleted, none added) one hash lookup is enough."""
    if len(a) == len(b) and distinct and pc.all(pc.equal(a, b)).as_py() is not False:
        return b.slice(0, 0), a.slice(0, 0)
    if not len(a) or not len(b):
        return pc.unique(b), pc.unique(a)
    found = pc.is_in(b, value_set=a)
    gone = b.filter(pc.invert(found))
    if distinct and pc.sum(found).as_py() == len(a):
        return gone, a.slice(0, 0)
    return pc.unique(gone), _minus(a, b)


def merge_gaps(src: Iterator[pa.Array], tgt: Iterator[pa.Array], name: str,
               typ: pa.DataType) -> tuple[list[pa.Array], list[pa.Array], int]:
    """(keys only the target holds, keys only MySQL holds, target keys), merging two ascending
    streams one range at a time: a range ends below the smaller of the open sides' last keys."""
    s, t = _Sorted(src, f"{name} (MySQL)", typ), _Sorted(tgt, f"{name} (target)", typ)
    gone: list[pa.Array] = []
    back: list[pa.Array] = []
    while True:
        s.fill()
        t.fill()
        if s.done and t.done and not len(s.buf) and not len(t.buf):
            return gone, back, t.seen
        ends = [x.buf[-1] for x in (s, t) if not x.done]
        hi = min(ends, key=lambda v: v.as_py()) if ends else None
        g, k = _range_gaps(s.take_below(hi), t.take_below(hi), s.distinct and t.distinct)
        if len(g):
            gone.append(g)
        if len(k):
            back.append(k)
