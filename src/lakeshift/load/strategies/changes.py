"""Apply a batch of changes read from the binlog (mode `changes`, cdc_strategy
binlog): every target row whose key the batch touches is deleted, then the
newest change of each key (by _lakeshift_seq, the order of the log) is
inserted unless it is a delete. An update that changed the key arrives as a
delete of the old key and an update of the new one (source/binlog/stream.py),
so it deletes the old row and writes the new. Plain DELETE ... USING and
INSERT ... SELECT: the same text on PostgreSQL, Redshift and DuckDB."""

from __future__ import annotations

from dataclasses import dataclass

from lakeshift.batch import OP_COLUMN, SEQ_COLUMN
from lakeshift.identifiers import quote_ansi
from lakeshift.load import sql
from lakeshift.load.session import Session
from lakeshift.load.strategies.contract import STAGE_ALIAS, Moved, MoveJob


@dataclass(frozen=True)
class ApplyChanges:
    delete: bool = True  # False: the batch made the table, there is nothing to delete

    @staticmethod
    def insert(job: MoveJob) -> str:
        names, exprs, _ = job.columns()
        return sql.insert_rows(job.target_sql, job.stage_sql, names, exprs, job.manifest.primary_key, [SEQ_COLUMN],
                               newest_if=f"{STAGE_ALIAS}.{quote_ansi(OP_COLUMN)} <> 'delete'")

    def move(self, s: Session, job: MoveJob) -> Moved:
        deleted = s.execute(sql.delete_matching(job.target_sql, job.stage_sql, job.manifest.primary_key)) \
            if self.delete else 0
        return Moved(deleted, s.execute(self.insert(job)))
