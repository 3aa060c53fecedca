"""full_sync with hard_deletes: soft: the snapshot replaces the table's rows, but
the rows it lacks are kept and marked (`_lakeshift_deleted_at`, the time they were
first found gone) instead of dropped.

`SoftReplace` (every target): mark the live rows the snapshot lacks, then DELETE +
INSERT the snapshot's keys. `SoftSwap` (PostgreSQL, where a swap loses nothing)
keeps the table swap: after the key is built on staging, only the rows the
snapshot lacks (few: the deleted ones) are copied into staging, found through
that key, and staging is swapped in. The snapshot's rows are never rewritten.

Both refuse (max_delete_fraction, load/delete_guard.py) a snapshot that lacks
more than that share of the live rows, before anything is committed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from lakeshift.identifiers import quote_ansi
from lakeshift.load import sql
from lakeshift.load.delete_guard import check_snapshot_marks
from lakeshift.load.schema_plan import OWN_COLUMN_TYPES
from lakeshift.load.session import Session
from lakeshift.load.strategies.contract import Moved, MoveJob
from lakeshift.load.strategies.swap import build_key, swap_in


@dataclass(frozen=True)
class SoftReplace:
    def move(self, s: Session, job: MoveJob) -> Moved:
        key, now = job.manifest.primary_key, datetime.now(timezone.utc)
        stage = job.stage_sql if job.staged else None
        marked = s.execute(sql.mark_absent(job.target_sql, stage, key, s.placeholder), (now,))
        if job.max_delete_fraction is not None and marked > 0:  # the live rows before: still live + just marked
            (live,), = s.query(sql.count_rows(job.target_sql, live=True))
            check_snapshot_marks(job.manifest.table, marked, marked + int(live), job.max_delete_fraction)
        if stage is None:
            return Moved(marked, 0)
        s.execute(sql.delete_matching(job.target_sql, stage, key))
        return Moved(marked, s.execute(job.insert_newest()))


@dataclass(frozen=True)
class SoftSwap:
    staged_rows: int = 0

    def move(self, s: Session, job: MoveJob) -> Moved:
        if not build_key(s, job):
            return SoftReplace().move(s, job)  # the batch repeats a key: de-duplicate row by row
        deleted, now = quote_ansi(sql.DELETED_AT_COLUMN), datetime.now(timezone.utc)
        s.execute(f"ALTER TABLE {job.stage_sql} ADD COLUMN {deleted} {job.dialect.render(OWN_COLUMN_TYPES[sql.DELETED_AT_COLUMN])}")
        names = [quote_ansi(c.name) for c in job.manifest.columns]
        old_cols = ", ".join(f'"_lakeshift_t".{n}' for n in names)
        cond = " AND ".join(f'"_lakeshift_s".{quote_ansi(k)} = "_lakeshift_t".{quote_ansi(k)}'
                            for k in job.manifest.primary_key)
        kept = (f"INSERT INTO {job.stage_sql} ({', '.join(names)}, {deleted}) "
                f'SELECT {old_cols}, COALESCE("_lakeshift_t".{deleted}, {s.placeholder}) '
                f'FROM {job.target_sql} AS "_lakeshift_t" '
                f'WHERE NOT EXISTS (SELECT 1 FROM {job.stage_sql} AS "_lakeshift_s" WHERE {cond}) RETURNING {deleted}')
        # rows newly found gone: those that got this batch's time
        (marked,), = s.query(f"WITH k AS ({kept}) SELECT count(*) FILTER (WHERE {deleted} = {s.placeholder}) FROM k",
                             (now, now))
        if job.max_delete_fraction is not None and marked:  # the target is untouched until the swap
            (live,), = s.query(sql.count_rows(job.target_sql, live=True))
            check_snapshot_marks(job.manifest.table, int(marked), int(live), job.max_delete_fraction)
        return Moved(int(marked), self.staged_rows, finish=swap_in)
