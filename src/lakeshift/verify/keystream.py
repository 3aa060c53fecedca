"""hard_deletes' key comparison for a key of one integer column (verify.key_gaps), by
streaming: both sides send their keys in key order (MySQL through connectorx and
its key's index, PostgreSQL as COPY text parsed by Arrow's CSV reader,
DuckDB as Arrow), in chunks of about CHUNK keys, and the two sorted streams
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
import pyarrow.csv as pcsv

from lakeshift.batch import Column
from lakeshift.errors import SourceError
from lakeshift.source.convert import ref
from lakeshift.source.positions import from_sql
from lakeshift.verify import canonical as C

if TYPE_CHECKING:
    from lakeshift.source import MySQLReader, TableDescription
    from lakeshift.verify.sides import TargetSide

CHUNK = 262_144  # keys per chunk of each side's stream
ENGINES = (C.POSTGRES, C.DUCKDB)  # Redshift has no COPY TO STDOUT: the windows of table.py
COPY_BYTES = 4 << 20  # COPY text parsed per chunk (PostgreSQL), cut at a line's end
_NULL = "\\N"  # COPY text's NULL


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


def target_keys(target: TargetSide, desc: TableDescription, c: Column) -> Iterator[pa.Array]:
    """The target's live keys in key order, chunk by chunk (PostgreSQL: COPY; DuckDB: Arrow)."""
    side = target.side
    r = side.ref(c.name)
    typ = pa.uint64() if unsigned(c) else pa.int64()
    if side.engine == C.DUCKDB:
        cast = "UBIGINT" if unsigned(c) else "BIGINT"
        result = target.session.conn.sql(f"SELECT CAST({r} AS {cast}) AS k FROM {side.table_sql}"
                                          f"{side.where()} ORDER BY {r}")
        for b in result.to_arrow_reader(CHUNK):
            if b.num_rows:
                yield _checked(b.column(0), desc, c, "the target")
        return
    # the key's own text (numeric(20,0) of a BIGINT UNSIGNED too), parsed as a 64-bit integer
    sql = f"COPY (SELECT {r} FROM {side.table_sql}{side.where()} ORDER BY {r}) TO STDOUT"
    for text in _copy_text(target, sql):
        yield _checked(_parse(text, typ, desc, c), desc, c, "the target")


def _copy_text(target: TargetSide, sql: str) -> Iterator[bytes]:
    """A COPY's text in pieces of about COPY_BYTES, each ending at a line's end."""
    from lakeshift.load.session import translate_errors

    with translate_errors(target.session.describe):
        cur = target.session.conn.cursor()
        try:
            with cur.copy(sql) as copy:
                buf = bytearray()
                for data in copy:
                    buf += data
                    if len(buf) >= COPY_BYTES:
                        end = buf.rindex(b"\n") + 1
                        yield bytes(buf[:end])
                        del buf[:end]
                if buf:
                    yield bytes(buf)
        finally:
            cur.close()


def _parse(text: bytes, typ: pa.DataType, desc: TableDescription, c: Column) -> pa.Array:
    try:
        table = pcsv.read_csv(pa.py_buffer(text), read_options=pcsv.ReadOptions(column_names=["k"]),
                              parse_options=pcsv.ParseOptions(delimiter="\t", quote_char=False),
                              convert_options=pcsv.ConvertOptions(column_types={"k": typ}, null_values=[_NULL]))
    except pa.ArrowInvalid as exc:
        raise SourceError(f"{desc.full_name}: key column {c.name!r} in the target holds a value that is not a "
                          f"{typ} integer ({str(exc).splitlines()[0]})") from None
    return table.column(0).combine_chunks()


def _checked(arr: pa.Array | pa.ChunkedArray, desc: TableDescription, c: Column, where: str) -> pa.Array:
    if arr.null_count:
        raise SourceError(f"{desc.full_name}: key column {c.name!r} holds NULLs in {where}; "
                          f"hard_deletes needs a key without NULLs")
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def gaps(reader: MySQLReader, desc: TableDescription, target: TargetSide,
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
        gone, back, rows = merge_gaps(_consume(chunks), target_keys(target, desc, c), desc.full_name, typ)
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
                if (self.last is not None and nxt[0].as_py() < self.last) or _descends(nxt):
                    raise SourceError(f"{self.name}: keys did not arrive in ascending order")
                self.last, self.seen = nxt[-1].as_py(), self.seen + len(nxt)
                self.buf = pa.concat_arrays([self.buf, nxt]) if len(self.buf) else nxt

    def take_below(self, hi: Any) -> pa.Array:
        """The buffered keys < hi (all of them when hi is None)."""
        n = len(self.buf) if hi is None else pc.sum(pc.less(self.buf, hi)).as_py() or 0
        part, self.buf = self.buf.slice(0, n), self.buf.slice(n)
        return part


def _descends(a: pa.Array) -> bool:
    return len(a) > 1 and bool(pc.any(pc.less(a.slice(1), a.slice(0, len(a) - 1))).as_py())


def _minus(a: pa.Array, b: pa.Array) -> pa.Array:
    """The distinct keys of `a` not in `b`."""
    return pc.unique(a.filter(pc.invert(pc.is_in(a, value_set=b)))) if len(b) else pc.unique(a)


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
        a, b = s.take_below(hi), t.take_below(hi)
        if len(g := _minus(b, a)):
            gone.append(g)
        if len(k := _minus(a, b)):
            back.append(k)
