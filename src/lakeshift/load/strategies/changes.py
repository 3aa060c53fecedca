"""Apply a batch of changes read from the binlog (mode `changes`, cdc_strategy
binlog): every target row whose key the batch touches is deleted, then the
newest change of each key (by _lakeshift_seq, the order of the log) is
inserted unless it is a delete. An update that changed the key arrives as a
delete of the old key and an update of the new one (source/binlog/stream.py),
so it deletes the old row and writes the new. Plain DELETE ... USING and
INSERT ... SELECT: the same text on PostgreSQL, Redshift and DuckDB. The rows
whose key's newest change is a delete are removed by a DELETE of their own
first: their count is the load record's `deleted` (rows gone from MySQL), apart
from the rows an update replaces.

hard_deletes: soft (`soft`): a key whose newest change is a delete keeps its
row image, marked in _lakeshift_deleted_at with the delete's commit time
(its _lakeshift_op/_seq/_commit_ts say so: the delete; a row already marked
keeps the time it was first found gone); only the keys whose
newest change is an insert or update are replaced, so a key that comes back
is live again (its new row has no mark).

A TRUNCATE (read only with hard_deletes set: its _lakeshift_op is `truncate`,
its image empty) removes every row (soft: marks every live row with its
commit time), then only the changes after it are applied."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lakeshift.batch import COMMIT_TS_COLUMN, OP_COLUMN, SEQ_COLUMN, TRUNCATE_OP as TRUNCATE
from lakeshift.identifiers import quote_ansi
from lakeshift.load import sql
from lakeshift.load.session import Session
from lakeshift.load.strategies.contract import STAGE_ALIAS, Moved, MoveJob



def newest_changes(stage_sql: str, key: Sequence[str], deletes: bool) -> str:
    """The key (and commit time) of each key's newest change, kept if it is (`deletes`) or is not a delete."""
    cols = ", ".join(quote_ansi(k) for k in key)
    op, rn = quote_ansi(OP_COLUMN), quote_ansi(sql.ROW_NUMBER_COLUMN)
    inner = (f"SELECT {cols}, {op}, {quote_ansi(SEQ_COLUMN)}, {quote_ansi(COMMIT_TS_COLUMN)}, "
             f"ROW_NUMBER() OVER (PARTITION BY {cols} ORDER BY {quote_ansi(SEQ_COLUMN)} DESC) AS {rn} FROM {stage_sql}")
    return f"(SELECT * FROM ({inner}) AS \"_lakeshift_n\" WHERE {rn} = 1 AND {op} {'=' if deletes else '<>'} 'delete')"


@dataclass(frozen=True)
class ApplyChanges:
    delete: bool = True  # False: the batch made the table, there is nothing to delete
    soft: bool = False  # hard_deletes: soft: deletes mark the row instead of removing it

    @staticmethod
    def insert(job: MoveJob, stage_sql: str = "") -> str:
        names, exprs, _ = job.columns()
        return sql.insert_rows(job.target_sql, stage_sql or job.stage_sql, names, exprs, job.manifest.primary_key,
                               [SEQ_COLUMN], newest_if=f"{STAGE_ALIAS}.{quote_ansi(OP_COLUMN)} <> 'delete'")

    def move(self, s: Session, job: MoveJob) -> Moved:
        cut = _last_truncate(s, job.stage_sql)
        if cut is not None:
            return self._after_truncate(s, job, *cut)
        if self.soft:
            marked = self._soft(s, job, job.stage_sql)
            return Moved(marked, s.execute(self.insert(job)), gone=marked)
        if not self.delete:
            return Moved(0, s.execute(self.insert(job)), gone=0)
        gone = s.execute(self._delete_gone(job))  # counted apart: the load record's `deleted`
        replaced = s.execute(sql.delete_matching(job.target_sql, job.stage_sql, job.manifest.primary_key))
        return Moved(gone + replaced, s.execute(self.insert(job)), gone=gone)

    @staticmethod
    def _delete_gone(job: MoveJob) -> str:
        """Remove the rows whose key's newest change is a delete (an update of the key included)."""
        key, target = job.manifest.primary_key, job.target_sql
        match = " AND ".join(f"{target}.{quote_ansi(k)} = {STAGE_ALIAS}.{quote_ansi(k)}" for k in key)
        return f"DELETE FROM {target} USING {newest_changes(job.stage_sql, key, True)} AS {STAGE_ALIAS} WHERE {match}"

    def _soft(self, s: Session, job: MoveJob, stage: str) -> int:
        """Replace the keys whose newest change is not a delete; mark those whose newest is. Marked rows."""
        key, target = job.manifest.primary_key, job.target_sql
        if not self.delete:
            return 0
        match = " AND ".join(f"{target}.{quote_ansi(k)} = {STAGE_ALIAS}.{quote_ansi(k)}" for k in key)
        s.execute(f"DELETE FROM {target} USING {newest_changes(stage, key, False)} AS {STAGE_ALIAS} WHERE {match}")
        deleted_at, ts = quote_ansi(sql.DELETED_AT_COLUMN), quote_ansi(COMMIT_TS_COLUMN)
        sets = ", ".join(f"{quote_ansi(c)} = {STAGE_ALIAS}.{quote_ansi(c)}" for c in (OP_COLUMN, SEQ_COLUMN))
        return s.execute(
            f"UPDATE {target} SET {deleted_at} = {STAGE_ALIAS}.{ts}, {ts} = {STAGE_ALIAS}.{ts}, {sets} "
            f"FROM {newest_changes(stage, key, True)} AS {STAGE_ALIAS} "
            f"WHERE {match} AND {target}.{deleted_at} IS NULL")

    def _after_truncate(self, s: Session, job: MoveJob, seq: int, committed: Any) -> Moved:
        """A TRUNCATE in the batch (hard_deletes set): every row goes (or is marked, soft),
        then only the changes after it are applied."""
        gone = 0
        if self.delete and self.soft:
            deleted_at = quote_ansi(sql.DELETED_AT_COLUMN)
            gone = s.execute(f"UPDATE {job.target_sql} SET {deleted_at} = {s.placeholder}, "
                             f"{quote_ansi(COMMIT_TS_COLUMN)} = {s.placeholder}, {quote_ansi(OP_COLUMN)} = "
                             f"'{TRUNCATE}', {quote_ansi(SEQ_COLUMN)} = {int(seq)} WHERE {deleted_at} IS NULL",
                             (committed, committed))
        elif self.delete:
            gone = s.execute(sql.delete_all(job.target_sql))
        after = f'(SELECT * FROM {job.stage_sql} WHERE {quote_ansi(SEQ_COLUMN)} > {int(seq)}) AS "_lakeshift_a"'
        marked = self._soft(s, job, after) if self.soft else 0
        return Moved(gone + marked, s.execute(self.insert(job, after)), gone=gone + marked)


def _last_truncate(s: Session, stage_sql: str) -> tuple[int, Any] | None:
    """(_lakeshift_seq, commit time) of the batch's last TRUNCATE, if it holds one."""
    rows = s.query(f"SELECT {quote_ansi(SEQ_COLUMN)}, {quote_ansi(COMMIT_TS_COLUMN)} FROM {stage_sql} "
                   f"WHERE {quote_ansi(OP_COLUMN)} = '{TRUNCATE}' ORDER BY {quote_ansi(SEQ_COLUMN)} DESC LIMIT 1")
    return (int(rows[0][0]), rows[0][1]) if rows else None
