"""Merge by DELETE + INSERT: the target's rows whose key is in the batch are
deleted, then the newest staged row of each key inserted. Works on every
target; PostgreSQL uses it where an upsert would differ (triggers, rules, no
unique index on the key)."""

from __future__ import annotations

from dataclasses import dataclass

from lakeshift.load import sql
from lakeshift.load.session import Session
from lakeshift.load.strategies.contract import Moved, MoveJob


@dataclass(frozen=True)
class DeleteInsert:
    delete: bool = True  # False: the batch made the table, there is nothing to delete
    analyze: bool = False  # PostgreSQL: staging statistics let the planner pick the join for DELETE ... USING
    key_lookups: bool = False  # PostgreSQL: probe the target's key instead of hashing the whole table

    def move(self, s: Session, job: MoveJob) -> Moved:
        if self.analyze:  # staging is never analysed otherwise (the upsert and a replace join nothing)
            s.execute(f"ANALYZE {job.stage_sql}")
        if self.key_lookups:  # only for this transaction
            s.execute("SET LOCAL enable_hashjoin = off")
            s.execute("SET LOCAL enable_mergejoin = off")
        deleted = s.execute(sql.delete_matching(job.target_sql, job.stage_sql, job.manifest.primary_key)) \
            if self.delete else 0
        return Moved(deleted, s.execute(job.insert_newest()))
