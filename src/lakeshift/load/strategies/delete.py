"""Delete batches (mode `delete`: the key columns of rows gone from the source).
`DeleteKeys` removes the target rows with a staged key (DELETE ... USING, the
merge's own statement; on Redshift the keys were COPYed into staging);
`SoftDelete` (hard_deletes: soft) sets their `_lakeshift_deleted_at` instead.
A key that comes back later is merged like any row: the merge re-inserts it
(DELETE + INSERT) or sets every column the batch lacks to its DEFAULT (the
upsert), so _lakeshift_deleted_at is NULL again: the row is live."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from lakeshift.load import sql
from lakeshift.load.session import Session
from lakeshift.load.strategies.contract import Moved, MoveJob


@dataclass(frozen=True)
class DeleteKeys:
    def move(self, s: Session, job: MoveJob) -> Moved:
        return Moved(s.execute(sql.delete_matching(job.target_sql, job.stage_sql, job.manifest.primary_key)), 0)


@dataclass(frozen=True)
class SoftDelete:
    def move(self, s: Session, job: MoveJob) -> Moved:
        marked = s.execute(sql.mark_deleted(job.target_sql, job.stage_sql, job.manifest.primary_key, s.placeholder),
                           (datetime.now(timezone.utc),))
        return Moved(marked, 0)
