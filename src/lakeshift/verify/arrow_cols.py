"""--deep for the columns no SQL renders identically on both engines (TIME,
GEOMETRY; JSON on PostgreSQL/Redshift; binary and FLOAT/DOUBLE on Redshift): both
sides stream the row's 60-bit key hash and those columns ORDERED BY that hash,
and the two streams are merge-joined slice by slice and compared in Arrow
(floats by their bits; JSON by its text, parsed only where the texts differ).
Every row is compared, not only those of the differing windows: a change in
such a column moves no SQL checksum. One scan per side; memory: about one chunk
of rows per side, whatever the table's size."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from lakeshift.batch import Column
from lakeshift.source.convert import select_expr
from lakeshift.verify import canonical as C
from lakeshift.verify.prefetch import ReadAhead
from lakeshift.verify.sides import SourceSide, TargetSide

if TYPE_CHECKING:
    from lakeshift.load.session import Session
    from lakeshift.verify.diff import Diff
    from lakeshift.verify.table import TableJob

CHUNK = 65_536
_TIME = re.compile(r"^(-?)(\d+):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$")


def compare_columns(job: TableJob, target: TargetSide, key: list[Column], columns: list[Column], diff: Diff) -> None:
    """Add to `diff.different` the keys whose `columns` differ (synced rows only)."""
    chunk = CHUNK
    source = SourceSide(job.reader, job.desc, job.synced)
    kt = _key_type(key)
    tgt = _prefetched(_target_batches(target, key, columns, kt, chunk))
    hashes: list[int] = []
    for s, t in aligned(_source_batches(source, key, columns, kt, chunk), tgt):
        hashes.extend(_bad_hashes(s, t, columns, bool(job.synced)))
    if hashes:
        known = set(diff.different)
        diff.different.extend(k for k in _key_values(source, key, hashes) if k not in known)


def _bad_hashes(s: pa.Table, t: pa.Table, columns: list[Column], synced: bool) -> list[int]:
    joined = _paired(s, t)
    bad = None
    for i, c in enumerate(columns):
        d = _differs(joined.column(f"s{i}"), joined.column(f"t{i}"), _form(c) == "json")
        bad = d if bad is None else pc.or_(bad, d)
    if bad is None:
        return []
    if synced:
        bad = pc.and_(bad, pc.equal(joined.column("synced"), 1))
    return joined.filter(bad).column("k").to_pylist()


def _paired(s: pa.Table, t: pa.Table) -> pa.Table:
    """The rows of both slices with the same k side by side. Slices of an equal table hold the
    same keys in the same order: then they are put side by side, without a hash join."""
    if s.num_rows == t.num_rows and pc.all(pc.equal(s.column("k"), t.column("k"))).as_py() is not False:
        return pa.table({**{n: s.column(n) for n in s.column_names}, **{n: t.column(n) for n in t.column_names}})
    return s.join(t, "k", join_type="inner")


def aligned(src: Iterator[pa.RecordBatch], tgt: Iterator[pa.RecordBatch]) -> Iterator[tuple[pa.Table, pa.Table]]:
    """Merge two streams ordered by "k" into pairs of slices covering the same range of k.
    Each side holds at most one batch: a slice ends at the smaller of the two batches'
    last k, so one of them is used up at every step. Rows past the end of the other
    side have no partner (missing or extra rows: the windows find those)."""
    a, b = _Cursor(src), _Cursor(tgt)
    while a.fill() and b.fill():
        hi = a.last if a.last.as_py() <= b.last.as_py() else b.last
        yield a.take_upto(hi), b.take_upto(hi)


class _Cursor:
    """The unconsumed rows of one ordered stream's current batch."""

    def __init__(self, batches: Iterator[pa.RecordBatch]) -> None:
        self.batches: Iterator[pa.RecordBatch] = batches
        self.rest: pa.RecordBatch | None = None

    def fill(self) -> bool:
        """A batch with rows to consume (False: the stream is over)."""
        while self.rest is None or self.rest.num_rows == 0:
            nxt = next(self.batches, None)
            if nxt is None:
                return False
            self.rest = nxt
        return True

    @property
    def last(self) -> pa.Scalar:
        assert self.rest is not None
        return self.rest.column("k")[-1]

    def take_upto(self, hi: Any) -> pa.Table:
        assert self.rest is not None
        n = pc.sum(pc.less_equal(self.rest.column("k"), hi)).as_py() or 0  # the rows are ordered by k
        head, self.rest = self.rest.slice(0, n), self.rest.slice(n)
        return pa.Table.from_batches([head])


def _prefetched(batches: Iterator[pa.RecordBatch], depth: int = 2) -> Iterator[pa.RecordBatch]:
    """`batches` produced by a thread, at most `depth` ahead: the target works while MySQL's rows are compared."""
    ahead = ReadAhead(lambda _after: batches, depth, reading=True)  # read at once: never stopped, never resumed
    try:
        yield from ahead.chunks()
    finally:
        ahead.close()


def _key_type(key: list[Column]) -> pa.DataType:
    """BIGINT UNSIGNED (uint64, or decimal128(20,0) in the lake) needs all 64 bits."""
    t = key[0].arrow_type
    return pa.uint64() if len(key) == 1 and (t == "uint64" or t.startswith("decimal")) else pa.int64()


def _key_hash(side: Any, key: list[Column]) -> str:
    """The row's 60-bit key hash; an integer key (one column) is its own."""
    if len(key) == 1 and C.kind(key[0]) == "int":
        return side.side.ref(key[0].name)
    h = side.side.row_hash(key)
    return C.hex_number(side.side.engine, h, 1, 15)


def _source_batches(source: SourceSide, key: list[Column], columns: list[Column], key_type: pa.DataType,
                    chunk: int) -> Iterator[pa.RecordBatch]:
    side = source.all_rows
    k = _key_hash(source, key)
    items = [f"{k} AS k"]
    if source.synced:
        items.append(f"CASE WHEN {source.synced} THEN 1 ELSE 0 END AS synced")
    items += [f"{select_expr(c)} AS s{i}" for i, c in enumerate(columns)]
    sql = f"SELECT {', '.join(items)} FROM {side.table_sql} WHERE {k} IS NOT NULL ORDER BY {k}"
    batches = source.reader.cx.stream(sql, chunk, source.where)
    try:
        for b in batches:
            if b.num_rows:
                yield _normalize_batch(b, columns, key_type)
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()


def _normalize_batch(b: pa.RecordBatch, columns: list[Column], key_type: pa.DataType) -> pa.RecordBatch:
    arrays, names = [pc.cast(b.column("k"), key_type)], ["k"]
    if "synced" in b.schema.names:
        arrays.append(pc.cast(b.column("synced"), pa.int64()))
        names.append("synced")
    for i, c in enumerate(columns):
        arr = b.column(f"s{i}")
        if c.arrow_type in _FLOATS:
            arrays.append(pc.cast(arr, _FLOATS[c.arrow_type]))
        elif _form(c) == "json":
            arrays.append(pc.cast(arr, pa.string()))  # MySQL's text; parsed only where it differs
        else:
            arrays.append(_as_arrow(c, arr.to_pylist()))
        names.append(f"s{i}")
    return pa.RecordBatch.from_arrays(arrays, names=names)


def _target_batches(target: TargetSide, key: list[Column], columns: list[Column], key_type: pa.DataType,
                    chunk: int) -> Iterator[pa.RecordBatch]:
    side = target.side
    k = _key_hash(target, key)
    items = [f"{k} AS k"] + [f"{_target_ref(side.engine, side.ref(c.name), c)} AS t{i}" for i, c in enumerate(columns)]
    sql = f"SELECT {', '.join(items)} FROM {side.table_sql}{side.where([f'{k} IS NOT NULL'])} ORDER BY {k}"
    names = ["k"] + [f"t{i}" for i in range(len(columns))]
    as_int = key_type == pa.uint64()  # PostgreSQL sends numeric(20,0) as Decimal
    for rows in _chunks(target.session, sql, chunk):
        cols = list(zip(*rows))
        arrays = [pa.array([int(v) for v in cols[0]] if as_int else cols[0], key_type)]
        arrays += [_as_arrow(c, cols[i + 1]) for i, c in enumerate(columns)]
        yield pa.RecordBatch.from_arrays(arrays, names=names)


def _target_ref(engine: str, r: str, c: Column) -> str:
    """PostgreSQL's jsonb as its text (psycopg would parse it into Python objects, row by row)."""
    return f"({r})::text" if engine == C.POSTGRES and _form(c) == "json" else r


def _chunks(session: Session, sql: str, chunk: int) -> Iterator[list[tuple[Any, ...]]]:
    """Rows of a query in chunks, without holding the whole result (psycopg streams it)."""
    from lakeshift.load.session import translate_errors

    with translate_errors(session.describe):
        cur = session.conn.cursor()
        try:
            if hasattr(cur, "stream"):
                rows: list[tuple[Any, ...]] = []
                for row in _stream(cur, sql, chunk):
                    rows.append(row)
                    if len(rows) == chunk:
                        yield rows
                        rows = []
                if rows:
                    yield rows
                return
            cur.execute(sql)
            while part := cur.fetchmany(chunk):
                yield part
        finally:
            cur.close()


def _stream(cur: Any, sql: str, chunk: int) -> Iterator[tuple[Any, ...]]:
    """psycopg's stream, in chunks of rows where libpq can (17+), else row by row."""
    try:
        yield from cur.stream(sql, size=chunk)
    except TypeError:  # a psycopg before 3.2
        yield from cur.stream(sql)


# ---------------------------------------------------------------- values


def _as_arrow(c: Column, values: Any) -> pa.Array:
    """One comparable Arrow form per column, whichever side the values came from."""
    if c.arrow_type in _FLOATS:
        return pa.array(values, _FLOATS[c.arrow_type])
    form = _form(c)
    if form == "json":  # the text as sent (or the normal text of a parsed value); parsed only where it differs
        return pa.array([v if v is None or isinstance(v, str) else _json(v) for v in values], pa.string())
    return pa.array([None if v is None else _NORMAL[form](v) for v in values], _TYPES[form])


def _form(c: Column) -> str:
    if c.data_type == "time":
        return "time"
    if c.data_type == "json":
        return "json"
    return "bytes" if c.arrow_type in ("binary", "large_binary") else "text"


def _micros(v: Any) -> int:
    if isinstance(v, timedelta):
        return (v.days * 86_400 + v.seconds) * 1_000_000 + v.microseconds
    m = _TIME.match(str(v))
    if not m:
        raise ValueError(f"not a TIME value: {v!r}")
    sign, h, mi, s, frac = m.groups()
    n = ((int(h) * 60 + int(mi)) * 60 + int(s)) * 1_000_000 + int((frac or "0").ljust(6, "0"))
    return -n if sign else n


def _json(v: Any) -> str:
    obj = json.loads(v) if isinstance(v, (str, bytes)) else v
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


_NORMAL: dict[str, Callable[[Any], Any]] = {"time": _micros, "json": _json, "bytes": bytes, "text": str}
_FLOATS = {"float": pa.float32(), "double": pa.float64()}
_TYPES = {"time": pa.int64(), "json": pa.string(), "bytes": pa.binary(), "text": pa.string()}


def _differs(s: pa.ChunkedArray, t: pa.ChunkedArray, is_json: bool = False) -> pa.ChunkedArray:
    """True where one side is NULL and the other not, or the values differ (floats: their
    bits; JSON: where the texts differ, the documents parsed)."""
    if pa.types.is_floating(s.type):
        bits = pa.int32() if s.type == pa.float32() else pa.int64()
        s = pa.chunked_array([c.view(bits) for c in s.chunks], bits)
        t = pa.chunked_array([c.view(bits) for c in t.chunks], bits)
    null_mismatch = pc.xor(pc.is_null(s), pc.is_null(t))
    d = pc.or_(null_mismatch, pc.fill_null(pc.not_equal(s, t), False))
    if not is_json:
        return d
    flags = pc.fill_null(pc.and_(d, pc.invert(null_mismatch)), False)
    idx = pc.indices_nonzero(flags)
    if len(idx) == 0:
        return d
    out = d.to_pylist()
    for i, a, b in zip(idx.to_pylist(), pc.take(s, idx).to_pylist(), pc.take(t, idx).to_pylist()):
        out[i] = _json(a) != _json(b)
    return pa.chunked_array([pa.array(out, pa.bool_())])


def _key_values(source: SourceSide, key: list[Column], hashes: list[int]) -> list[tuple[Any, ...]]:
    side = source.all_rows
    k = _key_hash(source, key)
    cols = ", ".join(side.ref(c.name) for c in key)
    out: list[tuple[Any, ...]] = []
    for i in range(0, len(hashes), 4096):
        in_list = ", ".join(str(int(h)) for h in hashes[i:i + 4096])
        out.extend(tuple(r) for r in source.query(f"SELECT {cols} FROM {side.table_sql} WHERE {k} IN ({in_list})"))
    return out
