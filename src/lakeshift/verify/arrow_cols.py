"""--deep for the columns no SQL renders identically on both engines (FLOAT and
DOUBLE, TIME, GEOMETRY; JSON on PostgreSQL/Redshift; binary on Redshift): both
sides send the row's 60-bit key hash and those columns, which are compared in
Arrow (floats by their bits). Every row is compared, not only those of the
differing windows: a change in such a column moves no SQL checksum. Memory:
the key hash (8 bytes) and those columns of every row, on each side."""

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
from lakeshift.verify.sides import SourceSide, TargetSide

if TYPE_CHECKING:
    from lakeshift.load.session import Session
    from lakeshift.verify.diff import Diff
    from lakeshift.verify.table import TableJob

CHUNK = 65_536
_TIME = re.compile(r"^(-?)(\d+):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$")


def compare_columns(job: TableJob, target: TargetSide, key: list[Column], columns: list[Column], diff: Diff) -> None:
    """Add to `diff.different` the keys whose `columns` differ (synced rows only)."""
    source = SourceSide(job.reader, job.desc, job.synced)
    from lakeshift.verify.table import both

    src, tgt = both(lambda: _source_table(source, key, columns), lambda: _target_table(target, key, columns))
    joined = src.join(tgt, "k", join_type="inner")
    bad = None
    for i, c in enumerate(columns):
        d = _differs(joined.column(f"s{i}"), joined.column(f"t{i}"))
        bad = d if bad is None else pc.or_(bad, d)
    if bad is None:
        return
    if job.synced:
        bad = pc.and_(bad, pc.equal(joined.column("synced"), 1))
    hashes = joined.filter(bad).column("k").to_pylist()
    if hashes:
        known = set(diff.different)
        diff.different.extend(k for k in _key_values(source, key, hashes) if k not in known)


def _key_type(key: list[Column]) -> pa.DataType:
    return pa.uint64() if len(key) == 1 and key[0].arrow_type == "uint64" else pa.int64()


def _key_hash(side: Any, key: list[Column]) -> str:
    """The row's 60-bit key hash; an integer key (one column) is its own."""
    if len(key) == 1 and C.kind(key[0]) == "int":
        return side.side.ref(key[0].name)
    h = C.row_hash(side.side.engine, [side.side.text(c) for c in key])
    return C.hex_number(side.side.engine, h, 1, 15)


def _source_table(source: SourceSide, key: list[Column], columns: list[Column]) -> pa.Table:
    side = source.all_rows
    items = [f"{_key_hash(source, key)} AS k"]
    if source.synced:
        items.append(f"CASE WHEN {source.synced} THEN 1 ELSE 0 END AS synced")
    items += [f"{select_expr(c)} AS s{i}" for i, c in enumerate(columns)]
    sql = f"SELECT {', '.join(items)} FROM {side.table_sql}"
    kt = _key_type(key)
    batches = [_normalize_batch(b, columns, kt) for b in source.reader.cx.stream(sql, CHUNK, source.where)]
    if not batches:
        empty = {"k": pa.array([], kt), **({"synced": pa.array([], pa.int64())} if source.synced else {})}
        return pa.table({**empty, **{f"s{i}": _as_arrow(c, []) for i, c in enumerate(columns)}})
    return pa.Table.from_batches(batches)


def _normalize_batch(b: pa.RecordBatch, columns: list[Column], key_type: pa.DataType) -> pa.RecordBatch:
    arrays, names = [pc.cast(b.column("k"), key_type)], ["k"]
    if "synced" in b.schema.names:
        arrays.append(pc.cast(b.column("synced"), pa.int64()))
        names.append("synced")
    for i, c in enumerate(columns):
        arr = b.column(f"s{i}")
        arrays.append(pc.cast(arr, _FLOATS[c.arrow_type]) if c.arrow_type in _FLOATS else _as_arrow(c, arr.to_pylist()))
        names.append(f"s{i}")
    return pa.RecordBatch.from_arrays(arrays, names=names)


def _target_table(target: TargetSide, key: list[Column], columns: list[Column]) -> pa.Table:
    items = [f"{_key_hash(target, key)} AS k"] + [f"{target.side.ref(c.name)} AS t{i}" for i, c in enumerate(columns)]
    sql = f"SELECT {', '.join(items)} FROM {target.side.table_sql}{target.side.where()}"
    batches, kt = [], _key_type(key)
    for rows in _chunks(target.session, sql):
        arrays = [pa.array([int(r[0]) for r in rows], kt)]
        arrays += [_as_arrow(c, [r[i + 1] for r in rows]) for i, c in enumerate(columns)]
        batches.append(pa.RecordBatch.from_arrays(arrays, names=["k"] + [f"t{i}" for i in range(len(columns))]))
    if not batches:
        return pa.table({"k": pa.array([], kt), **{f"t{i}": _as_arrow(c, []) for i, c in enumerate(columns)}})
    return pa.Table.from_batches(batches)


def _chunks(session: Session, sql: str) -> Iterator[list[tuple[Any, ...]]]:
    """Rows of a query in chunks, without holding the whole result (psycopg streams it)."""
    from lakeshift.load.session import translate_errors

    with translate_errors(session.describe):
        cur = session.conn.cursor()
        try:
            if hasattr(cur, "stream"):
                rows: list[tuple[Any, ...]] = []
                for row in cur.stream(sql):
                    rows.append(row)
                    if len(rows) == CHUNK:
                        yield rows
                        rows = []
                if rows:
                    yield rows
                return
            cur.execute(sql)
            while chunk := cur.fetchmany(CHUNK):
                yield chunk
        finally:
            cur.close()


# ---------------------------------------------------------------- values


def _as_arrow(c: Column, values: list[Any]) -> pa.Array:
    """One comparable Arrow form per column, whichever side the values came from."""
    if c.arrow_type in _FLOATS:
        return pa.array(values, _FLOATS[c.arrow_type])
    return pa.array([None if v is None else _NORMAL[_form(c)](v) for v in values], _TYPES[_form(c)])


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


def _differs(s: pa.ChunkedArray, t: pa.ChunkedArray) -> pa.ChunkedArray:
    """True where one side is NULL and the other not, or the values differ (floats: their bits)."""
    if pa.types.is_floating(s.type):
        bits = pa.int32() if s.type == pa.float32() else pa.int64()
        s = pa.chunked_array([c.view(bits) for c in s.chunks], bits)
        t = pa.chunked_array([c.view(bits) for c in t.chunks], bits)
    null_mismatch = pc.xor(pc.is_null(s), pc.is_null(t))
    return pc.or_(null_mismatch, pc.fill_null(pc.not_equal(s, t), False))


def _key_values(source: SourceSide, key: list[Column], hashes: list[int]) -> list[tuple[Any, ...]]:
    side = source.all_rows
    k = _key_hash(source, key)
    cols = ", ".join(side.ref(c.name) for c in key)
    out: list[tuple[Any, ...]] = []
    for i in range(0, len(hashes), 4096):
        in_list = ", ".join(str(int(h)) for h in hashes[i:i + 4096])
        out.extend(tuple(r) for r in source.query(f"SELECT {cols} FROM {side.table_sql} WHERE {k} IN ({in_list})"))
    return out
