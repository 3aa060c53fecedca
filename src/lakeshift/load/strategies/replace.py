"""Replace (full_sync snapshot): DELETE every row, INSERT the batch's, in the
batch's transaction. DELETE, never TRUNCATE: TRUNCATE commits implicitly on
Redshift and locks readers out on PostgreSQL."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from lakeshift.load import sql
from lakeshift.load.session import Session
from lakeshift.load.strategies.contract import Moved, MoveJob

log = logging.getLogger("lakeshift.load")


@dataclass(frozen=True)
class Replace:
    instead_of_swap: str = ""  # why a table swap (PostgreSQL) would lose something, when it was considered

    def move(self, s: Session, job: MoveJob) -> Moved:
        if self.instead_of_swap:
            log.info("%s: replacing %s row by row, not by a table swap (%s)", job.manifest.table, job.target_sql,
                     self.instead_of_swap)
        deleted = s.execute(sql.delete_all(job.target_sql))
        inserted = s.execute(job.insert_newest()) if job.staged else 0
        return Moved(deleted, inserted)
