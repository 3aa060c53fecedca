"""The state tables in the target (`_lakeshift_loads`, `_lakeshift_runs`, and
Redshift's `_lakeshift_locks`): created and migrated, read and written."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timezone

from lakeshift.batch import Manifest
from lakeshift.batch_state import SKIPPED_MODE
from lakeshift.errors import LoadError
from lakeshift.load import sql
from lakeshift.load.dialects import TypeDialect
from lakeshift.load.session import Session, retry_ddl
from lakeshift.load.state import (
    ERROR_MAX_CHARS,
    NOTE_MAX_CHARS,
    NOTES_MAX_CHARS,
    LoadRecord,
    RunRecord,
    as_utc,
    cursor_to_text,
    load_record_from_row,
    run_record_from_row,
)
from lakeshift.redact import redact

log = logging.getLogger("lakeshift.load")


class StateTables:
    """One target schema's state tables. `using()` lends a session for one operation."""

    def __init__(self, schema: str, dialect: TypeDialect, describe: str,
                 using: Callable[[], AbstractContextManager[Session]], *, with_locks: bool = False) -> None:
        self.schema, self.dialect, self.describe = schema, dialect, describe
        self.using = using
        self.with_locks = with_locks
        self.ready = False  # the tables are known to exist, with every column

    def ensure(self) -> None:
        with self.using() as s:
            for stmt in [sql.create_schema(self.schema), *sql.state_tables(self.schema, with_locks=self.with_locks)]:
                retry_ddl(s, stmt)
            self._migrate(s)
        self.ready = True

    def _columns(self, s: Session) -> dict[str, set[str]]:
        """State table -> its column names (lower case); a table not there yet is left out."""
        present: dict[str, set[str]] = {}
        for table, column in s.query(sql.state_columns(s.placeholder),
                                     (self.dialect.catalog_name(self.schema), sql.LOADS_TABLE, sql.RUNS_TABLE,
                                      sql.LOCKS_TABLE)):
            present.setdefault(str(table).lower(), set()).add(str(column).lower())
        return present

    def _migrate(self, s: Session) -> None:
        """Add the state columns a target made by an older release lacks. Two runs may
        race: an ALTER that fails while the column now exists lost that race, harmlessly."""
        for stmt in sql.state_migrations(self.schema, self._columns(s)):
            try:
                s.execute(stmt)
                log.info("%s: %s", self.describe, stmt)
            except LoadError:
                if stmt in sql.state_migrations(self.schema, self._columns(s)):
                    raise

    def _gaps(self, s: Session) -> dict[str, list[str]] | None:
        """For reads that create nothing: None when the state tables do not exist yet,
        else per table the added columns it still lacks (read as NULL until a run adds them)."""
        if self.ready:
            return {}
        present = self._columns(s)
        if sql.LOADS_TABLE not in present:
            return None
        return {t: [c for table, c, _ in sql.ADDED_STATE_COLUMNS if table == t and c not in cols]
                for t, cols in present.items()}

    def loaded_batches(self, pipeline: str, table: str) -> dict[str, LoadRecord]:
        """Batches recorded in the target: loaded, or skipped (mode 'skipped').
        Creates nothing (dry runs call this)."""
        with self.using() as s:
            gaps = self._gaps(s)
            if gaps is None:
                return {}
            rows = s.query(sql.select_loads(self.schema, s.placeholder, absent=gaps.get(sql.LOADS_TABLE, [])),
                           (pipeline, table))
            return {r[2]: load_record_from_row(r) for r in rows}

    def record_skip(self, manifest: Manifest, pipeline: str, table: str, target_table: str,
                    reason: str) -> LoadRecord:
        """A batch recorded as skipped (mode 'skipped', 0 rows, the reason); one already
        recorded (loaded or skipped) is refused, checked inside the transaction."""
        m = manifest
        params = (pipeline, table, m.batch_id, target_table, SKIPPED_MODE, 0, 0, 0, cursor_to_text(m.watermark_low),
                  cursor_to_text(m.watermark_high), datetime.now(timezone.utc), redact(reason)[:NOTE_MAX_CHARS], 0)
        with self.using() as s:
            s.begin()
            try:
                if s.query(sql.select_loads(self.schema, s.placeholder, batch=True), (pipeline, table, m.batch_id)):
                    raise LoadError(f"{pipeline}.{table}: batch {m.batch_id} is already recorded in "
                                    f"{self.schema}.{sql.LOADS_TABLE}; not skipped")
                s.execute(sql.insert_load(self.schema, s.placeholder), params)
                s.commit()
            except BaseException:
                s.rollback()
                raise
        return load_record_from_row(params)

    def record_run(self, run: RunRecord) -> None:
        """One row of run history; the error and notes are redacted and truncated."""
        error = redact(run.error)[:ERROR_MAX_CHARS] if run.error else None
        notes = redact(run.notes)[:NOTES_MAX_CHARS] if run.notes else None
        quality = redact(run.quality)[:NOTES_MAX_CHARS] if run.quality else None
        params = (run.pipeline, run.table, as_utc(run.started_at), as_utc(run.finished_at), run.status,
                  int(run.rows_extracted), int(run.rows_loaded), int(run.batches), error, notes, int(run.rows_deleted),
                  quality)
        try:
            with self.using() as s:
                s.execute(sql.insert_run(self.schema, s.placeholder), params)
        except LoadError:
            # The kept session may have died with the server (a restart is often why the run
            # failed); it only shows when used. Once more: using() replaces a broken session.
            with self.using() as s:
                s.execute(sql.insert_run(self.schema, s.placeholder), params)

    def last_runs(self, pipeline: str, table: str, n: int = 10) -> list[RunRecord]:
        with self.using() as s:
            gaps = self._gaps(s)
            if gaps is None or (not self.ready and sql.RUNS_TABLE not in gaps):
                return []
            rows = s.query(sql.select_runs(self.schema, s.placeholder, n, absent=gaps.get(sql.RUNS_TABLE, [])),
                           (pipeline, table))
            return [run_record_from_row(r) for r in rows]

    # ------------------------------------------------- pipeline-wide reads (status, history)
    def pipeline_runs(self, pipeline: str, per_table: int, table: str | None = None) -> list[RunRecord]:
        """The newest `per_table` runs of each table of a pipeline (or of one table), newest
        first per table. Creates nothing: [] before the first run."""
        with self.using() as s:
            gaps = self._gaps(s)
            return [] if gaps is None else self._runs(s, gaps, pipeline, per_table, table)

    def pipeline_state(self, pipeline: str, per_table: int) -> tuple[
            list[RunRecord], dict[str, datetime], dict[str, dict[str, LoadRecord]]]:
        """For `lakeshift status`, in three queries whatever the number of tables: the newest
        `per_table` runs of each table, when each last succeeded, and every load record
        (table -> batch id -> record). Creates nothing."""
        with self.using() as s:
            gaps = self._gaps(s)
            if gaps is None:
                return [], {}, {}
            runs = self._runs(s, gaps, pipeline, per_table, None)
            successes: dict[str, datetime] = {}
            if self.ready or sql.RUNS_TABLE in gaps:
                for t, ts in s.query(sql.select_last_success(self.schema, s.placeholder), (pipeline, "ok")):
                    if ts is not None:
                        successes[str(t)] = as_utc(ts)  # type: ignore[assignment]
            loads: dict[str, dict[str, LoadRecord]] = {}
            for row in s.query(sql.select_pipeline_loads(self.schema, s.placeholder,
                                                         absent=gaps.get(sql.LOADS_TABLE, [])), (pipeline,)):
                record = load_record_from_row(row)
                loads.setdefault(record.table, {})[record.batch_id] = record
            return runs, successes, loads

    def _runs(self, s: Session, gaps: dict[str, list[str]], pipeline: str, per_table: int,
              table: str | None) -> list[RunRecord]:
        if not self.ready and sql.RUNS_TABLE not in gaps:
            return []
        params = (pipeline, table) if table is not None else (pipeline,)
        rows = s.query(sql.select_pipeline_runs(self.schema, s.placeholder, per_table, table=table is not None,
                                                absent=gaps.get(sql.RUNS_TABLE, [])), params)
        return [run_record_from_row(r) for r in rows]

    def prune_runs(self, pipeline: str, before: datetime) -> int:
        """Delete the pipeline's run history started before `before`; the rows deleted (-1: unknown)."""
        with self.using() as s:
            if self._gaps(s) is None:
                return 0
            return s.execute(sql.prune_runs(self.schema, s.placeholder), (pipeline, before))
