"""Reading batch parts for loading: stream record batches from the lake
through the given pyarrow filesystem (no DuckDB httpfs, nothing downloaded at
run time), check them against the manifest, and prepare them for a target.
All column work is vectorised Arrow compute; no Python per row."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lakeshift.batch import Column
from lakeshift.errors import LoadError
from lakeshift.lake_profile import ordinals, upgrade_type
from lakeshift.load.sql import ORDINAL_COLUMN
from lakeshift.load.types import classify, parse_arrow, postgres_ingest_type, same_arrow

BATCH_ROWS = 16 * 1024  # small: the COPY is no slower for it and memory stays low (docs/benchmarks.md)


def _compatible(actual: pa.DataType, expected: pa.DataType) -> bool:
    # A part of an earlier lake profile (uint64, ...) is converted when read (read_part).
    actual, expected = upgrade_type(actual), upgrade_type(expected)
    if pa.types.is_timestamp(actual) and pa.types.is_timestamp(expected):
        return (actual.tz is None) == (expected.tz is None)  # any unit; any zone name for UTC instants
    return same_arrow(actual, expected)


def check_schema(schema: pa.Schema, columns: Sequence[Column], where: str) -> None:
    names = [c.name for c in columns]
    if schema.names[-1:] == [ORDINAL_COLUMN] and ORDINAL_COLUMN not in names:
        schema = schema.remove(len(schema) - 1)  # the part's row ordinal (Manifest.row_ordinal)
    if schema.names != names:
        raise LoadError(f"{where}: columns {schema.names} differ from the manifest's {names}")
    for field, col in zip(schema, columns):
        expected = parse_arrow(col.arrow_type)
        if not _compatible(field.type, expected):
            raise LoadError(f"{where}: column {col.name!r} is {field.type} but the manifest says {expected}")


def read_part(path: str, filesystem: pa.fs.FileSystem, columns: Sequence[Column],
              batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """The part's rows in file order, a record batch at a time. Without
    pre_buffer: pyarrow's default reads every row group of the file ahead, so
    memory would grow with the part instead of one row group."""
    with filesystem.open_input_file(path) as f:
        pf = pq.ParquetFile(f, pre_buffer=False)
        check_schema(pf.schema_arrow, columns, f"part {path}")
        n = len(columns)  # a row ordinal after them is left out: each target numbers the rows itself
        legacy = [i for i, t in enumerate(pf.schema_arrow.types[:n]) if upgrade_type(t) != t]
        for b in pf.iter_batches(batch_size=batch_rows, use_threads=False):
            b = b if b.num_columns == n else b.select(range(n))
            yield _upgrade(b, legacy) if legacy else b


def _upgrade(batch: pa.RecordBatch, legacy: list[int]) -> pa.RecordBatch:
    """A batch of an earlier lake profile in this profile's types (uint64 -> decimal128(20,0), ...): exact."""
    arrays = list(batch.columns)
    for i in legacy:
        arrays[i] = pc.cast(arrays[i], upgrade_type(arrays[i].type), safe=True)
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Cast to exactly `schema` (e.g. large_string -> string, tz 'UTC' vs '+00:00')."""
    return batch if batch.schema.equals(schema) else batch.cast(schema)


def add_ordinal(batch: pa.RecordBatch, start: int) -> pa.RecordBatch:
    """Append _lakeshift_ord = start, start+1, ... (position of the row in the batch)."""
    ordinal = ordinals(start, batch.num_rows)
    return pa.RecordBatch.from_arrays([*batch.columns, ordinal], names=[*batch.schema.names, ORDINAL_COLUMN])


# JSON text holding the escape \u0000 (not preceded by an escaping backslash)
_JSON_NUL = r"(^|[^\\])(\\\\)*\\u0000"


def postgres_schema(columns: Sequence[Column]) -> pa.Schema:
    return pa.schema([pa.field(c.name, postgres_ingest_type(parse_arrow(c.arrow_type))) for c in columns]
                     + [pa.field(ORDINAL_COLUMN, pa.int64())])


def for_postgres(batch: pa.RecordBatch, columns: Sequence[Column], table: str) -> pa.RecordBatch:
    """Convert what PostgreSQL or ADBC cannot take as is (unsigned and 8-bit
    ints), and refuse NUL characters in text: PostgreSQL text and jsonb cannot
    store them, and silently dropping them would change the data."""
    arrays = []
    for arr, col in zip(batch.columns, columns):
        target = postgres_ingest_type(arr.type)
        if target != arr.type:
            arr = pc.cast(arr, target)
        if pa.types.is_string(arr.type) and arr.null_count < len(arr):
            kind = classify(col).kind
            if _may_hold_nul(arr) and pc.any(pc.match_substring(arr, "\x00")).as_py():
                raise nul_error(table, col, "a NUL character (\\x00)")
            if kind == "json" and pc.any(pc.match_substring_regex(arr, _JSON_NUL)).as_py():
                raise nul_error(table, col, "the JSON escape \\u0000")
        arrays.append(arr)
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _may_hold_nul(arr: pa.Array) -> bool:
    """Whether the bytes behind the strings hold a zero byte at all: one memchr
    over the value buffer instead of a match per value, since text almost never
    holds one. Only a hit (which may lie behind a NULL slot) is checked exactly,
    value by value."""
    _, offsets_buf, data = arr.buffers()
    if data is None or offsets_buf is None or len(arr) == 0:
        return False
    offsets = pa.Array.from_buffers(pa.int32(), len(arr) + 1, [None, offsets_buf], offset=arr.offset)
    start, end = offsets[0].as_py(), offsets[len(arr)].as_py()
    return b"\x00" in data.slice(start, end - start).to_pybytes()


def nul_error(table: str, col: Column, what: str) -> LoadError:
    return LoadError(
        f"table {table}: column {col.name!r} ({col.mysql_type}) holds {what}, which PostgreSQL text/jsonb cannot "
        "store; the batch was not loaded (lakeshift never alters values). Way out: remove the NUL characters in "
        "MySQL, or make the column VARBINARY/BLOB so it loads as bytea; then `lakeshift batches skip` this batch, "
        "which stays in the lake and would fail again (`lakeshift batches list` names it)."
    )
