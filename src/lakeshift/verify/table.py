"""Compare one table: per window a row count and checksums on both sides
(one aggregate query each, at the same time; the whole table first, and the
windows only if it differs), then the rows of the windows that differ,
fetched by key hash and classified (diff.py). With --deep, columns no SQL
renders identically on both engines are compared in Arrow (arrow_cols.py).
hard_deletes' check on an integer key compares key ranges instead (keystream.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, closing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from lakeshift.batch import Column
from lakeshift.errors import LoadError, SourceError
from lakeshift.identifiers import quote_ansi
from lakeshift.load.scd2_sql import IS_CURRENT, IS_DELETED
from lakeshift.load.sql import DELETED_AT_COLUMN as DELETED_AT  # a soft-deleted row is not a live row
from lakeshift.source.types import arrow_type
from lakeshift.verify import canonical as C
from lakeshift.verify import diff as D
from lakeshift.verify import keystream, lookup
from lakeshift.verify import queries as Q
from lakeshift.verify.prefetch import ReadAhead
from lakeshift.verify.report import EXAMPLES, TableReport
from lakeshift.verify.sides import SourceSide, TargetSide

if TYPE_CHECKING:
    from lakeshift.source import MySQLReader, TableDescription

A, B = TypeVar("A"), TypeVar("B")
LOOKUP_LIMIT = 500_000  # target keys of differing windows looked up in MySQL; more: MySQL's rows are fetched


@dataclass(frozen=True)
class TableJob:
    """One table to compare. `loader`: the target's loader (its `connect()`,
    `schema` and `dialect` are used); `desc`: the MySQL table, typed by the
    table's options (`desc.apply(table_config)`); `key`: the merge key ([]:
    keyless); `synced`: MySQL condition of the rows the target has loaded
    (watermark.py; None: every row)."""

    reader: MySQLReader
    desc: TableDescription
    loader: Any
    target_table: str
    key: Sequence[str]
    deep: bool = False
    synced: str | None = None
    name: str = ""


@dataclass
class Outcome:
    report: TableReport
    diff: D.Diff


def compare_table(job: TableJob) -> TableReport:
    return run(job).report


def run(job: TableJob) -> Outcome:
    started = time.monotonic()
    engine = job.loader.dialect.name
    present = _target_columns(job)
    cols = {c.name: c for c in job.desc.columns}
    key = [cols[k] for k in job.key]
    _check_key(job, key, engine, present)
    compared = [c for c in job.desc.columns if _in(job, c.name, present)]
    hashable = [c for c in compared if C.sql_kind(c, engine) is not None]
    row = hashable if (job.deep or not key) else key
    report = TableReport(job.name or job.desc.table, job.target_table, deep=job.deep, keyed=bool(key),
                         key=list(job.key))
    source = SourceSide(job.reader, job.desc, job.synced)
    skipped = [c for c in compared if c not in hashable]
    live = _live(present)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lakeshift-verify-arrow") as pool, \
            closing(job.loader.connect()) as session:
        # the Arrow comparison streams both tables while the aggregates run (its own target session)
        arrow_cmp = bool(job.deep and key and skipped)
        arrow = pool.submit(_arrow_keys, job, None, live, key, skipped) if arrow_cmp and engine != C.DUCKDB else None
        target = TargetSide(session, engine, job.loader.schema, job.target_table, live)
        shape = Q.Shape(key, row, Q.bucket_count(source.estimate()))
        target.fit_key(shape)
        src_agg, tgt_agg = _aggregates(source, target, shape)
        report.pending = source.pending()
        report.source_rows = sum(int(a[0]) for a in src_agg.values()) + report.pending
        report.target_rows = sum(int(a[0]) for a in tgt_agg.values())
        windows = D.differing(src_agg, tgt_agg)
        report.windows, report.windows_differing = shape.buckets, len(windows)
        lookups = shape.integer_key and shape.keys_only and not job.synced and _indexed(job.desc, key[0].name)
        diff = _classify(source, target, shape, windows, bool(job.synced), src_agg if lookups else None) \
            if windows else D.Diff()
        if arrow_cmp:  # DuckDB runs in this process: no gain in overlapping, so on this session, now
            known = set(diff.different)
            keys = arrow.result() if arrow else _arrow_keys(job, target, live, key, skipped)
            diff.different.extend(k for k in keys if k not in known)
    _fill(report, diff, [c.name for c in key], skipped if (job.deep or not key) else [], engine)
    absent = [c.name for c in job.desc.columns if not _in(job, c.name, present)]
    if absent and (job.deep or not key):
        report.notes.append(f"not in the target table yet (the next run adds them), not compared: {', '.join(absent)}")
    report.seconds = time.monotonic() - started
    return Outcome(report, diff)


WHOLE = -1  # the one window of an identical table's first pass


def _aggregates(source: SourceSide, target: TargetSide, shape: Q.Shape) -> tuple[dict[int, Any], dict[int, Any]]:
    """Per window (count, checksums...) on both sides. The whole table first (one aggregate per
    side, no GROUP BY); when it is equal the table is one window, WHOLE, and equal; else the
    windows (a second scan per side, only for a table that differs)."""
    src, tgt = both(lambda: source.whole(shape), lambda: target.whole(shape))
    if D.same(src, tgt):
        return {WHOLE: src}, {WHOLE: tgt}
    return both(lambda: source.aggregate(shape), lambda: target.aggregate(shape))


def both(on_source: Callable[[], A], on_target: Callable[[], B]) -> tuple[A, B]:
    """The two sides' queries at the same time: each engine does its own work."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lakeshift-verify") as pool:
        theirs = pool.submit(on_target)
        mine = on_source()
        return mine, theirs.result()


def _arrow_keys(job: TableJob, target: TargetSide | None, live: tuple[str, ...], key: list[Column],
                columns: list[Column]) -> list[tuple[Any, ...]]:
    """Keys whose Arrow-compared `columns` differ; `target` None: on a target session of its own."""
    from lakeshift.verify.arrow_cols import compare_columns

    diff = D.Diff()
    if target is not None:
        compare_columns(job, target, key, columns, diff)
        return diff.different
    with closing(job.loader.connect()) as session:
        engine = job.loader.dialect.name
        compare_columns(job, TargetSide(session, engine, job.loader.schema, job.target_table, live), key, columns, diff)
    return diff.different


def _live(present: set[str]) -> tuple[str, ...]:
    """The target's conditions of its live rows."""
    if IS_CURRENT in present:  # a history (scd_type: type_2): its live current versions are the rows
        return (f"{quote_ansi(IS_CURRENT)} AND NOT {quote_ansi(IS_DELETED)}",)
    return (f"{quote_ansi(DELETED_AT)} IS NULL",) if DELETED_AT in present else ()


def _target_columns(job: TableJob) -> set[str]:
    present = set(job.loader.target_columns(job.target_table))
    if not present:
        raise LoadError(f"{job.name or job.desc.table}: target table {job.loader.schema}.{job.target_table} does not "
                        f"exist in {job.loader.describe}; nothing to compare (run `lakeshift sync` first)")
    return present


def _in(job: TableJob, name: str, present: set[str]) -> bool:
    """`name` is a column of the target table (as its catalogue spells it: Redshift folds case)."""
    return job.loader.dialect.catalog_name(name) in present


def _check_key(job: TableJob, key: list[Column], engine: str, present: set[str]) -> None:
    for c in key:
        if not _in(job, c.name, present):
            raise LoadError(f"{job.desc.full_name}: key column {c.name!r} is not in target table "
                            f"{job.loader.schema}.{job.target_table}; run `lakeshift sync` first")
        if C.sql_kind(c, engine) is None:
            raise SourceError(f"{job.desc.full_name}: key column {c.name!r} ({c.mysql_type}) cannot be compared "
                              f"on {engine} (no canonical text in SQL); verify needs a key of integers, decimals, "
                              f"dates or text")


def _indexed(desc: TableDescription, column: str) -> bool:
    """MySQL finds rows by `column` through an index (it leads the primary or a unique key)."""
    return desc.primary_key[:1] == [column] or any(cols[:1] == [column] for _, cols in desc.unique_keys)


def _classify(source: SourceSide, target: TargetSide, shape: Q.Shape, windows: list[int], synced: bool,
              src_agg: dict[int, tuple[Any, ...]] | None = None) -> D.Diff:
    """The rows of the differing windows, classified. `src_agg` (an indexed integer key, keys only):
    the target's keys first, looked up in MySQL, which is scanned again only for windows they
    do not explain (lookup.py)."""
    if src_agg is not None:
        tgt = target.fetch(shape, windows)
        if len(tgt) <= LOOKUP_LIMIT:
            return lookup.classify(source, tgt, shape, windows, src_agg)
        return D.classify_keyed(source.fetch(shape, windows), tgt, len(shape.key), synced)
    src, tgt = both(lambda: source.fetch(shape, windows), lambda: target.fetch(shape, windows))
    if not shape.key:
        return D.classify_keyless(src, tgt)
    return D.classify_keyed(src, tgt, len(shape.key), synced)


def _fill(report: TableReport, diff: D.Diff, key: list[str], skipped: list[Column], engine: str) -> None:
    if not report.keyed:
        report.missing, report.extra = diff.missing_rows, diff.extra_rows
        report.notes.append("no key: row counts and multiset checksums only (no example keys, no 'different')")
    else:
        report.missing, report.extra, report.different = len(diff.missing), len(diff.extra), len(diff.different)
        for kind in ("missing", "extra", "different"):
            keys = getattr(diff, kind)
            if keys:
                report.examples[kind] = [dict(zip(key, k)) for k in _ordered(keys)[:EXAMPLES]]
    if skipped:
        names = ", ".join(c.name for c in skipped)
        how = "compared in Arrow" if report.keyed else "not compared (a keyless table has no key to match them by)"
        report.notes.append(f"columns without a canonical SQL text on {engine}: {names}: {how}")


def _ordered(keys: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Keys in their order (by their text where values do not compare, e.g. a NULL next to a number)."""
    try:
        return sorted(keys)
    except TypeError:
        return sorted(keys, key=repr)


# ---------------------------------------------------------------- hard deletes


@dataclass(frozen=True)
class KeyGaps:
    gone: pa.Table  # keys the target holds (live) and MySQL no longer does, as a delete batch holds them
    target_rows: int  # the target's live rows (what max_delete_fraction is a share of)
    back: list[tuple[Any, ...]]  # keys MySQL holds (synced) and the target not (live): values from MySQL


def key_gaps(reader: MySQLReader, desc: TableDescription, loader: Any, target_table: str, key: Sequence[str],
             synced: str | None = None, ahead: ReadAhead | None = None) -> KeyGaps:
    """Key-only comparison (one aggregate query per side, then the keys of the differing
    windows): the keys gone from MySQL, and those MySQL holds (at or before the loaded
    watermark when `synced`, watermark.py, is given) that the target lacks or has marked
    deleted: a deleted key inserted again (an id_only cursor never reads it again), a late commit.
    `ahead`: MySQL's keys as key_prefetch() started reading them (closed once compared)."""
    if not key:
        raise SourceError(f"{desc.full_name}: a table without a key has no keys to delete")
    job = TableJob(reader, desc, loader, target_table, list(key), synced=synced)
    if synced is None and (gaps := _streamed_gaps(job, ahead)) is not None:
        return gaps
    outcome = run(job)
    return KeyGaps(keys_table(desc, list(key), outcome.diff.extra), outcome.report.target_rows, outcome.diff.missing)


def _stream_key(desc: TableDescription, loader: Any, key: Sequence[str]) -> Column | None:
    """The key column key_gaps streams (keystream.py): one integer column MySQL indexes, on
    PostgreSQL or DuckDB; None: another key or engine (the windows of run())."""
    cols = {c.name: c for c in desc.columns}
    if loader.dialect.name not in keystream.ENGINES or len(key) != 1 or key[0] not in cols \
            or C.kind(cols[key[0]]) != "int" or not _indexed(desc, key[0]):
        return None
    return cols[key[0]]


def key_prefetch(reader: MySQLReader, desc: TableDescription, loader: Any, key: Sequence[str]) -> ReadAhead | None:
    """Start reading MySQL's keys for a key_gaps() to come (None: it will not stream them). The
    caller closes it, and holds the table's extract lock from now until key_gaps() returns."""
    c = _stream_key(desc, loader, key)
    return keystream.prefetch(reader, desc, c) if c is not None else None


def _streamed_gaps(job: TableJob, ahead: ReadAhead | None) -> KeyGaps | None:
    """MySQL's keys streamed in key order, compared with the target's range by range (keystream.py)."""
    c = _stream_key(job.desc, job.loader, job.key)
    if c is None:
        return None
    engine = job.loader.dialect.name
    key = [c]
    present = _target_columns(job)
    _check_key(job, key, engine, present)
    side = Q.target_side(engine, job.loader.schema, job.target_table, _live(present))
    with ExitStack() as stack:
        # PostgreSQL answers two ranges at once (its side of the comparison took longest); DuckDB
        # runs each query on every core already
        sessions = [stack.enter_context(closing(job.loader.connect())) for _ in range(2 if engine == C.POSTGRES else 1)]
        targets = [keystream.TargetKeys(s, side, job.desc, key[0]) for s in sessions]
        gone, back, target_rows = keystream.gaps(job.reader, job.desc, targets, key[0], ahead)
    lake = arrow_type(key[0])
    gone_table = pa.Table.from_arrays([pc.cast(gone, lake)], names=[key[0].name])
    return KeyGaps(gone_table, target_rows, [(v,) for v in back.to_pylist()])


def gone_keys(reader: MySQLReader, desc: TableDescription, loader: Any, target_table: str,
              key: Sequence[str]) -> pa.Table:
    """The keys the target table holds and MySQL no longer does, as an Arrow
    table of the key columns in their lake types (the shape of a delete batch)."""
    return key_gaps(reader, desc, loader, target_table, key).gone


def keys_table(desc: TableDescription, key: list[str], rows: list[tuple[Any, ...]]) -> pa.Table:
    """Key values as the target returned them, typed as the lake holds them."""
    cols = {c.name: c for c in desc.columns}
    arrays = []
    for i, name in enumerate(key):
        typ = arrow_type(cols[name])
        arrays.append(pa.array([_lake_value(r[i], typ) for r in rows], type=typ))
    return pa.Table.from_arrays(arrays, names=key)


def _lake_value(v: Any, typ: pa.DataType) -> Any:
    if v is None:
        return None
    if isinstance(v, memoryview):
        return bytes(v)
    if pa.types.is_integer(typ):
        return int(v)  # PostgreSQL numeric(20,0) for BIGINT UNSIGNED
    if pa.types.is_string(typ) and not isinstance(v, str):
        return str(v)  # DECIMAL above 38 digits: PostgreSQL numeric, the lake the text
    return v
