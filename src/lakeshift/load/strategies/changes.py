"""Apply a batch of changes read from the binlog (mode `changes`, cdc_strategy
binlog): every target row whose key the batch touches is deleted, then the
newest change of each key (by _lakeshift_seq, the order of the log) is
inserted unless it is a delete. An update that changed the key arrives as a
delete of the old key and an update of the new one (source/binlog/stream.py),
so it deletes the old row and writes the new. Plain DELETE ... USING and
INSERT ... SELECT: the same text on PostgreSQL, Redshift and DuckDB.

hard_deletes: soft (`soft`): a key whose newest change is a delete keeps its
row image, marked in _lakeshift_deleted_at with the delete's commit time
(its _lakeshift_op/_seq/_commit_ts say so: the delete; a row already marked
keeps the time it was first found gone); only the keys whose
newest change is an insert or update are replaced, so a key that comes back
is live again (its new row has no mark)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lakeshift.batch import COMMIT_TS_COLUMN, OP_COLUMN, SEQ_COLUMN
from lakeshift.identifiers import quote_ansi
from lakeshift.load import sql
from lakeshift.load.session import Session
from lakeshift.load.strategies.contract import STAGE_ALIAS, Moved, MoveJob


def newest_changes(stage_sql: str, key: Sequence[str], deletes: bool) -> str:
    """The key (and commit time) of each key's newest change, kept if it is (`deletes`) or is not a delete."""
    cols = ", ".join(quote_ansi(k) for k in key)
    op, rn = quote_ansi(OP_COLUMN), quote_ansi(sql.ROW_NUMBER_COLUMN)
    inner = (f"SELECT {cols}, {op}, {quote_ansi(SEQ_COLUMN)}, {quote_ansi(COMMIT_TS_COLUMN)}, ROW_NUMBER() OVER (PARTITION BY {cols} "
             f"ORDER BY {quote_ansi(SEQ_COLUMN)} DESC) AS {rn} FROM {stage_sql}")
    return f"(SELECT * FROM ({inner}) AS \"_lakeshift_n\" WHERE {rn} = 1 AND {op} {'=' if deletes else '<>'} 'delete')"


@dataclass(frozen=True)
class ApplyChanges:
    delete: bool = True  # False: the batch made the table, there is nothing to delete
    soft: bool = False  # hard_deletes: soft: deletes mark the row instead of removing it

    @staticmethod
    def insert(job: MoveJob) -> str:
        names, exprs, _ = job.columns()
        return sql.insert_rows(job.target_sql, job.stage_sql, names, exprs, job.manifest.primary_key, [SEQ_COLUMN],
                               newest_if=f"{STAGE_ALIAS}.{quote_ansi(OP_COLUMN)} <> 'delete'")

    def move(self, s: Session, job: MoveJob) -> Moved:
        if self.soft:
            return self._soft(s, job)
        deleted = s.execute(sql.delete_matching(job.target_sql, job.stage_sql, job.manifest.primary_key)) \
            if self.delete else 0
        return Moved(deleted, s.execute(self.insert(job)))

    def _soft(self, s: Session, job: MoveJob) -> Moved:
        key, target = job.manifest.primary_key, job.target_sql
        marked = 0
        if self.delete:
            match = " AND ".join(f"{target}.{quote_ansi(k)} = {STAGE_ALIAS}.{quote_ansi(k)}" for k in key)
            s.execute(f"DELETE FROM {target} USING {newest_changes(job.stage_sql, key, False)} AS {STAGE_ALIAS} "
                      f"WHERE {match}")
            deleted_at, ts = quote_ansi(sql.DELETED_AT_COLUMN), quote_ansi(COMMIT_TS_COLUMN)
            sets = ", ".join(f"{quote_ansi(c)} = {STAGE_ALIAS}.{quote_ansi(c)}" for c in (OP_COLUMN, SEQ_COLUMN))
            marked = s.execute(
                f"UPDATE {target} SET {deleted_at} = {STAGE_ALIAS}.{ts}, {ts} = {STAGE_ALIAS}.{ts}, {sets} "
                f"FROM {newest_changes(job.stage_sql, key, True)} AS {STAGE_ALIAS} "
                f"WHERE {match} AND {target}.{deleted_at} IS NULL")
        return Moved(marked, s.execute(self.insert(job)))
