"""The full_sync recreate: a replace batch whose column types the table cannot
take in place (schema_plan.plan_table sets TablePlan.recreate) drops the table
first thing in the batch's transaction; the plan's CREATE then makes it again
with the new types, and the batch moves in like into a new table. A table step,
not a move: it must run before the CREATE, and the move's facts are read after."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from lakeshift.errors import LoadError, SchemaChangeError
from lakeshift.load.session import Session
from lakeshift.load.strategies.contract import MoveJob

log = logging.getLogger("lakeshift.load")


@dataclass(frozen=True)
class Recreate:
    reason: str  # the columns whose types changed, e.g. "column 'id' INTEGER -> BIGINT"

    def run(self, s: Session, job: MoveJob, views: list[str]) -> str:
        """DROP the target (`views`: those built on it, which would stop the DROP);
        returns the note for the run history."""
        m = job.manifest
        what = f"{job.dialect.name} table {job.schema}.{job.target_table}"
        if views:
            raise SchemaChangeError(
                f"{what}: {self.reason} (batch {m.batch_id}); the full_sync recreates the table with the new "
                f"types, but {_views(views)} on it, so the batch was not loaded. Way out: drop the "
                f"view{'s' if len(views) > 1 else ''}, sync again, then create {'them' if len(views) > 1 else 'it'} "
                "again.")
        try:
            s.execute(f"DROP TABLE {job.target_sql}")
        except LoadError as exc:
            raise SchemaChangeError(
                f"{what}: could not drop it to recreate it with the new column types ({self.reason}) for batch "
                f"{m.batch_id}: {exc}. Way out: drop what depends on the table, sync again, then create it "
                "again.") from None
        done = (f"recreated for the new column types ({self.reason}); indexes, grants or triggers made on it "
                "by hand must be made again")
        log.info("%s: %s %s", m.table, what, done)
        return "table " + done


def _views(names: list[str]) -> str:
    return f"view {names[0]} depends" if len(names) == 1 else f"views {', '.join(names)} depend"
