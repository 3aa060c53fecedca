"""SCD type 2 history (scd_type: type_2): every batch, whatever its mode, is
written as versions of its business key instead of replacing rows. The SQL is
load/scd2_sql.py; this module picks its inputs from the batch:

- validity: the cursor timestamp (hybrid, timestamp_only), the binlog commit
  time, or the batch's creation time (id_only, full_sync, tombstones of a
  delete batch or a snapshot's missing keys); equal times are ordered by the
  batch's own order (_lakeshift_ord, binlog _lakeshift_seq);
- deletes: a binlog delete, a delete batch's keys (hard_deletes), a snapshot's
  missing keys (full_sync) close the current version and open a tombstone;
- the max_delete_fraction guard weighs the tombstones against the live keys.

It runs in the batch's one transaction, before its load record: a batch loaded
twice is skipped by that record, so no version is ever written twice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from lakeshift.batch import COMMIT_TS_COLUMN, OP_COLUMN, SEQ_COLUMN, History
from lakeshift.errors import DeletesRefused, LoadError
from lakeshift.identifiers import quote_ansi
from lakeshift.load import scd2_sql as h
from lakeshift.load import sql
from lakeshift.load.session import Session
from lakeshift.load.strategies.contract import STAGE_ALIAS, Moved, MoveJob
from lakeshift.load.types import TType

_TIME_KINDS = ("timestamp", "timestamptz", "date")
_STAND_INS = {"text": "''", "int": "0", "uint": "0", "numeric": "0", "float": "0", "bool": "FALSE",
              "date": "CAST('1970-01-01' AS DATE)", "timestamp": "CAST('1970-01-01 00:00:00' AS TIMESTAMP)",
              "timestamptz": "CAST('1970-01-01 00:00:00' AS TIMESTAMP)"}
SORT_MEMORY = "64MB"  # PostgreSQL, this transaction only: a batch's versions are sorted four times


@dataclass(frozen=True)
class WriteHistory:
    key_lookups: bool = False  # PostgreSQL: probe the current versions' index, not hash the whole history

    def move(self, s: Session, job: MoveJob) -> Moved:
        m, hist = job.manifest, _history(job)
        columns = _data_columns(s, job)
        names = [n for n, _ in columns]
        nullable = _nullable(job, hist, {n: t.kind for n, t in columns})
        shape = h.Shape(job.target_sql, quote_ansi(job.stage_name + "_c"), quote_ansi(job.stage_name + "_v"),
                        names, hist.business_key, nullable, by_time=m.mode != "changes")
        stage = job.stage_sql if job.staged else None
        start = _literal_time(m.created_at)
        if job.dialect.name == "PostgreSQL":
            s.execute(h.current_index(job.target_sql, _index_name(job.target_table), hist.business_key))
            s.execute(f"SET LOCAL work_mem = '{SORT_MEMORY}'")  # the window sorts stay in memory
        if self.key_lookups and not nullable:  # only for this transaction (as DeleteInsert does); the index
            # serves plain equality only, so a nullable key is hashed
            s.execute("SET LOCAL enable_hashjoin = off")
            s.execute("SET LOCAL enable_mergejoin = off")
        s.execute(h.create_changes(shape, [(n, job.dialect.render(t)) for n, t in columns]))
        if stage is not None and not m.deletes:
            s.execute(_staged(shape, job, hist, start))
        if m.mode == "replace":
            s.execute(h.tombstones(shape, start, stage, absent=True))
        elif m.deletes and stage is not None:
            s.execute(h.tombstones(shape, start, stage, absent=False, batch_key=m.primary_key))
        if job.dialect.name == "PostgreSQL":  # a TEMP table has no statistics: the probe of the history needs them
            s.execute(f"ANALYZE {shape.changes_sql}")
        s.execute(h.base_rows(shape))
        s.execute(h.create_versions(shape))
        gone, in_place = _guard(s, job, shape, hist)
        s.execute(h.update_current(shape, in_place=False))
        if in_place:
            s.execute(h.update_current(shape, in_place=True))
        inserted = s.execute(h.insert_versions(shape))
        for work in (shape.changes_sql, shape.versions_sql):
            s.execute(sql.drop_table(work))
        return Moved(gone, inserted)


def _history(job: MoveJob) -> History:
    if job.manifest.history is None:
        raise LoadError(f"batch {job.manifest.batch_id}: history write without history settings")
    return job.manifest.history


def _data_columns(s: Session, job: MoveJob) -> list[tuple[str, TType]]:
    """(column, type) written: the batch's; a delete batch (keys only) copies the target's."""
    d = job.dialect
    if not job.manifest.deletes:
        return [(c.name, job.types[c.name]) for c in job.manifest.columns]
    rows = s.query(sql.table_columns(s.placeholder), (d.catalog_name(job.schema), d.catalog_name(job.target_table)))
    own = {d.fold(c) for c in h.HISTORY_COLUMNS}
    return [(r[0], d.parse(r[1], r[2], r[3], r[4])) for r in rows if d.fold(r[0]) not in own]


def _nullable(job: MoveJob, hist: History, kinds: dict[str, str]) -> dict[str, str]:
    """Key columns compared NULL-safe (all but those MySQL declares NOT NULL), each with a value
    of its type to stand in for NULL ('' : none, compared with OR)."""
    not_null = {c.name for c in job.manifest.columns if not c.nullable}
    return {k: _STAND_INS.get(kinds.get(k, ""), "") for k in hist.business_key if k not in not_null}


def _staged(shape: h.Shape, job: MoveJob, hist: History, start: str) -> str:
    names, exprs, _ = job.columns()
    by_name = dict(zip(names, exprs))
    texts = [_hash_text(job.dialect.name, job.types[c], by_name[c]) for c in hist.scd_columns if c in by_name]
    deleted = f"COALESCE({STAGE_ALIAS}.{quote_ansi(OP_COLUMN)} = 'delete', FALSE)" if OP_COLUMN in names else "FALSE"
    source = _time_source(job, by_name)
    return h.staged_changes(shape, job.stage_sql, exprs, h.hash_expr(texts), deleted,
                            f"COALESCE({source}, {start})" if source else start, _order(job, names))


def _time_source(job: MoveJob, by_name: dict[str, str]) -> str | None:
    """Where a version's start comes from: the binlog commit time, else the cursor timestamp
    (hybrid, timestamp_only), as a UTC TIMESTAMP; None: the batch's creation time."""
    m = job.manifest
    col = COMMIT_TS_COLUMN if COMMIT_TS_COLUMN in by_name else (
        m.cursor_timestamp_column if m.strategy in ("hybrid", "timestamp_only") else None)
    if not col or col not in by_name or job.types[col].kind not in _TIME_KINDS:
        return None
    kind, ref = job.types[col].kind, by_name[col]
    if kind == "timestamptz":
        return f"CAST(({ref}) AT TIME ZONE 'UTC' AS TIMESTAMP)"
    return f"CAST({ref} AS TIMESTAMP)"


def _order(job: MoveJob, names: list[str]) -> str:
    """The batch's own order: the binlog's sequence, the row ordinal, else none."""
    parts = [f"{STAGE_ALIAS}.{quote_ansi(SEQ_COLUMN)}"] if SEQ_COLUMN in names else []
    if job.ordinal:
        parts.append(f"{STAGE_ALIAS}.{quote_ansi(sql.ORDINAL_COLUMN)}")
    if not parts:
        return "0"
    return parts[0] if len(parts) == 1 else f"COALESCE({', '.join(parts)})"


def _hash_text(dialect: str, t: TType, ref: str) -> str:
    """A column as text for the row hash, the same whatever the session's settings."""
    if t.kind == "timestamptz":
        ref = f"({ref}) AT TIME ZONE 'UTC'"
    if dialect == "Redshift":
        if t.kind == "json":
            return f"JSON_SERIALIZE({ref})"
        if t.kind == "bytes":
            return f"TO_HEX({ref})"
        return f"CAST({ref} AS VARCHAR(65535))"
    return f"CAST({ref} AS VARCHAR)"


def _literal_time(iso: str) -> str:
    """The batch's creation time as a TIMESTAMP literal (UTC); parsed and printed here, so
    nothing from the manifest reaches the SQL text as it was written."""
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        raise LoadError(f"batch creation time {iso!r} is not an ISO timestamp") from None
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc).replace(tzinfo=None)
    return f"CAST('{when.strftime('%Y-%m-%d %H:%M:%S.%f')}' AS TIMESTAMP)"


def _guard(s: Session, job: MoveJob, shape: h.Shape, hist: History) -> tuple[int, int]:
    """Tombstones the batch writes (refused past max_delete_fraction of the live keys, unless
    forced), and the current versions it changes in place."""
    (gone, in_place), = s.query(h.count_versions(shape))
    gone, in_place = int(gone or 0), int(in_place or 0)
    if not gone or hist.force_deletes:
        return gone, in_place
    (live,), = s.query(h.count_live(job.target_sql))
    if gone > hist.max_delete_fraction * int(live):
        m = job.manifest
        raise DeletesRefused(
            f"tables.{m.table}: batch {m.batch_id} would close {gone:,} of the {int(live):,} current version(s) "
            f"of {job.target_sql} as deleted, more than max_delete_fraction {hist.max_delete_fraction:g} allows; "
            "nothing was written (the batch stays in the lake). If the source lost them by mistake, restore them; "
            "if the deletes are real, run again with --force-deletes (or raise max_delete_fraction)")
    return gone, in_place


def _index_name(table: str) -> str:
    head = table.encode("utf-8")[:63 - len("_lakeshift_cur")].decode("utf-8", "ignore")
    return head + "_lakeshift_cur"
