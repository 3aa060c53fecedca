"""One table of one run: extract a batch into the lake, then load every
pending batch into the target. Extraction and loading overlap: each Parquet
part is handed to the loader's staging as soon as it is closed (staging.py),
and the batch is committed (merge + load record, one transaction) once its
manifest is durable."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from lakeshift import faults
from lakeshift.batch import Cursor, Manifest, utc_now_iso
from lakeshift.engine.batch_spec import BatchSpec, plan_batch
from lakeshift.engine.contracts import StagedLoad, TargetLoader
from lakeshift.engine.deletes import detects_deletes, keys_not_in, start_key_read, write_gone_rows
from lakeshift.engine.merge_key import RepeatCheck
from lakeshift.engine.plan import Plan, TablePlan
from lakeshift.engine.progress import TableProgress, expected_rows, table_progress
from lakeshift.engine.staging import StagingSession
from lakeshift.engine.table_load import PendingLoads
from lakeshift.errors import ConfigError, LakeshiftError, LockBusyError

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeshift.engine.runner import RunContext
    from lakeshift.lake import BatchWriter, TableLake, WriteResult
    from lakeshift.source import MySQLReader, ReadResult

log = logging.getLogger("lakeshift.engine")


@dataclass
class TableResult:
    table: str
    rows_extracted: int = 0
    rows_loaded: int = 0
    rows_deleted: int = 0  # rows gone from MySQL, removed from the target or marked (hard_deletes)
    batches_written: int = 0
    batches_loaded: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    quality: list[str] = field(default_factory=list)  # data_quality_checks results (engine/quality_gate.py)
    batches_written_ids: list[str] = field(default_factory=list)  # for orchestrators' metadata (engine/sync_api.py)
    batches_loaded_ids: list[str] = field(default_factory=list)
    watermark: dict[str, Any] | None = None  # the high watermark of the batch written by this run

    @property
    def batch_ids(self) -> list[str]:
        """The batches this run wrote or loaded, each once (lineage.py)."""
        return list(dict.fromkeys([*self.batches_written_ids, *self.batches_loaded_ids]))


class TableTask:
    """Runs one table. Collaborators are built by the caller (see runner.py)."""

    def __init__(self, plan: Plan, table: TablePlan, ctx: RunContext,
                 progress: TableProgress | Callable[[str, int], None]) -> None:
        self.plan, self.table, self.ctx = plan, table, ctx
        self.progress = table_progress(table.name, progress)
        self.pipeline = plan.pipeline
        self.result = TableResult(table.name)
        self._spec: BatchSpec | None = None  # what this run extracted (its table description and key)
        self._kept: Manifest | None = None  # the batch this run wrote
        self._ahead: Any = None  # hard_deletes: MySQL's keys, read from the extract on (engine/deletes.py)

    @cached_property
    def table_lake(self) -> TableLake:
        """The table's folder in the lake (made on first use: a bad folder name fails the run, recorded)."""
        return self.ctx.table_lake(self.table.name)

    # ------------------------------------------------------------------ run
    def run(self) -> TableResult:
        started = time.monotonic()
        started_at = utc_now_iso()
        status, error = "ok", None
        loader = self.ctx.loader() if self.plan.stages.load else None
        try:
            if loader:
                self.ctx.ensure_state(loader)
            with StagingSession(self.ctx.lake, self.table_lake) as staging:
                if loader and detects_deletes(self.plan, self.table):
                    try:
                        self.extract(loader, staging,
                                     then=lambda reader, lock: self.load_and_compare(loader, staging, reader, lock))
                    finally:
                        if self._ahead is not None:
                            self._ahead.close()
                    self.load_deletes(loader, staging)
                else:
                    if self.plan.stages.extract:
                        self.extract(loader, staging)
                    if loader:
                        self.load_pending(loader, staging)
            return self.result
        except BaseException as exc:
            status, error = self._failure_status(exc), exc
            raise
        finally:
            self.result.seconds = time.monotonic() - started
            if loader:
                self._record_run(loader, started_at, status, error)
                loader.close()

    def _failure_status(self, exc: BaseException) -> str:
        """`interrupted` (Ctrl-C); `refused` when the run was turned away before
        it did anything (another run holds a lock, the config does not allow it),
        so `watermark get` can tell it from a run that ran; else `failed`."""
        if isinstance(exc, KeyboardInterrupt):
            return "interrupted"
        r = self.result
        if isinstance(exc, (LockBusyError, ConfigError)) and not (
                r.rows_extracted or r.batches_written or r.batches_loaded):
            return "refused"
        return "failed"

    def _record_run(self, loader: TargetLoader, started_at: str, status: str, error: BaseException | None) -> None:
        from lakeshift.load import RunRecord

        text = None
        if isinstance(error, KeyboardInterrupt):
            text = "interrupted (SIGINT, e.g. Ctrl-C)"
        elif error is not None:
            text = str(error) or type(error).__name__  # never an empty error for a run that did not succeed
        try:
            loader.record_run(RunRecord(
                pipeline=self.pipeline.name, table=self.table.name, started_at=started_at,
                finished_at=utc_now_iso(), status=status, rows_extracted=self.result.rows_extracted,
                rows_loaded=self.result.rows_loaded, batches=self.result.batches_loaded, error=text,
                notes="; ".join(self.result.notes) or None, rows_deleted=self.result.rows_deleted,
                quality="; ".join(self.result.quality) or None,
            ))
        except Exception as exc:  # noqa: BLE001 - history must never hide the real outcome
            log.warning("%s: could not record the run history: %s", self.table.name, exc)

    # -------------------------------------------------------------- extract
    def extract(self, loader: TargetLoader | None, staging: StagingSession,
                then: Callable[[MySQLReader, Any], None] | None = None) -> None:
        """Write one batch to the lake, under the table's extract lock; staged in
        the target while it is written when no older batch waits to load.
        `then(reader, lock)`: runs after it, still under the lock."""
        tl = self.table_lake
        tl.check_writable()  # an unwritable lake fails now, not after the whole extract
        reader = self.ctx.reader()
        try:
            with reader.table_lock(self.pipeline.name, self.table.name, self.plan.wait or 0, tl.uri()) as lock:
                self._extract_locked(loader, staging, reader, lock)
                if then is not None:
                    then(reader, lock)
        finally:
            reader.close()

    def _extract_locked(self, loader: TargetLoader | None, staging: StagingSession, reader: MySQLReader,
                        lock: Any) -> None:
        if self.table.config.cdc_strategy == "binlog":
            self._extract_binlog(loader, staging, reader, lock)
            return
        spec = self._spec = plan_batch(self.table, self.pipeline.name, self.plan.limit, reader, self.table_lake, loader)
        self.result.notes.extend(spec.notes)
        if loader is not None and detects_deletes(self.plan, self.table):  # while the batch is read, written, loaded
            self._ahead = start_key_read(reader, spec.desc, loader, list(spec.check.key.columns))
        self.progress.phase("extract", expected_rows(reader, spec, self.plan.limit))
        if loader is not None and not spec.sample and not spec.writes_nothing and not self._pending(loader):
            staging.begin(self._begin(loader, spec.head), spec.head.batch_id)
        written, read = self._write(reader, spec, staging)
        staging.end_extract(self.table.name)
        faults.checkpoint("after_parts")
        self.result.rows_extracted = written.rows
        if written.rows == 0 and not spec.written_without_rows:
            staging.abort()  # nothing new: no batch, the watermark stays where it is
            self.result.notes.append("no new rows")
            return
        manifest = spec.manifest(written, read)
        # Only under the extract lock: had it been lost, a later run may have extracted and
        # loaded newer rows, and this older batch, loaded after them, would bring old values back.
        if lock is not None:
            lock.check()
        self._keep(manifest)

    def _write(self, reader: MySQLReader, spec: BatchSpec, staging: StagingSession) -> tuple[WriteResult, ReadResult]:
        """Read the window into the batch's parts (handed to the staging as they are written)."""
        t = self.table
        writer = self.ctx.batch_writer(self.table_lake, spec.head.batch_id, spec.started,
                                       reader.lake_schema(spec.desc, t.config), on_part=staging.on_part,
                                       on_rows=staging.on_rows, ordinal=spec.head.row_ordinal)
        stream = reader.read(t.config, spec.desc, spec.window, t.batch_size, self.plan.limit)
        return self._fill(writer, stream, RepeatCheck(t.name, spec.check.key)), stream.result

    def _fill(self, writer: BatchWriter, batches: Iterable[pa.RecordBatch], repeats: RepeatCheck | None) -> WriteResult:
        """Write the batches into the batch's parts (aborted on any failure)."""
        try:
            for batch in batches:
                if repeats is not None:
                    repeats.add(batch)
                writer.write(batch)
                self.progress.rows(batch.num_rows)
            written = writer.close()
            if repeats is not None:
                repeats.check()
        except BaseException:
            writer.abort()
            raise
        return written

    def _extract_binlog(self, loader: TargetLoader | None, staging: StagingSession, reader: MySQLReader,
                        lock: Any) -> None:
        """A binlog table: a snapshot, or the changes since the saved position (engine/binlog_batch.py)."""
        from lakeshift.engine.binlog_batch import plan_binlog_batch

        b = plan_binlog_batch(self.table, self.pipeline, reader, self.table_lake, self.plan.max_changes)
        self.result.notes.extend(b.notes)
        self.progress.phase("extract")
        if b.empty:
            self.result.notes.append("no new changes")
            return
        if loader is not None and not self._pending(loader):
            staging.begin(self._begin(loader, b.head), b.head.batch_id)
        writer = self.ctx.batch_writer(self.table_lake, b.head.batch_id, b.started, b.schema,
                                       on_part=staging.on_part, on_rows=staging.on_rows, ordinal=b.head.row_ordinal)
        written = self._fill(writer, b.batches(), RepeatCheck(self.table.name, b.check_key) if b.snapshot else None)
        self.result.notes.extend(b.after_read(loader, self.table, self.plan.force_deletes))
        staging.end_extract(self.table.name)
        faults.checkpoint("after_parts")
        self.result.rows_extracted = written.rows
        if lock is not None:
            lock.check()
        if written.rows == 0 and not b.snapshot:
            staging.abort()  # no change of this table: no batch, but the position moves on
            ids = self.table_lake.manifest_ids()
            self.table_lake.write_watermark(Cursor(binlog=b.position), ids[-1] if ids else None)
            self.result.notes.append("no new changes")
            return
        self._keep(b.manifest(written))

    def _keep(self, manifest: Manifest) -> None:
        """The batch exists from here: its manifest, then the watermark (a sample moves none)."""
        self.table_lake.write_manifest(manifest)
        self._kept = manifest
        if manifest.sample:
            self.result.notes.append(f"sample of {manifest.rows:,} rows (--limit): never loaded")
        else:
            self.table_lake.write_watermark(manifest.watermark_high, manifest.batch_id)
            self.result.watermark = manifest.watermark_high.to_dict() if manifest.watermark_high else None
        self.result.batches_written = 1
        self.result.batches_written_ids.append(manifest.batch_id)
        faults.checkpoint("after_manifest")

    def load_and_compare(self, loader: TargetLoader, staging: StagingSession, reader: MySQLReader, lock: Any) -> None:
        """hard_deletes, under the extract lock: load the pending batches while MySQL's keys are
        read (from the extract on, engine/deletes.py), then compare and write the keys gone as a
        delete batch; none of the keys of this run's batch (it may have read a row inserted after them)."""
        spec = self._spec
        if spec is None:  # binlog: no comparison
            self.load_pending(loader, staging)
            return
        self.load_pending(loader, staging)
        if lock is not None:
            lock.check()  # still held since the extract: no other run made a batch in between
        kept = self._kept
        fresh = (lambda gone: keys_not_in(gone, kept, self.ctx.lake, self.table_lake)) if self._ahead and kept else None
        written = write_gone_rows(self.plan, self.table, self.table_lake, reader, spec.desc, loader,
                                  list(spec.check.key.columns), self._ahead, fresh)
        self.result.batches_written += len(written)
        self.result.batches_written_ids.extend(m.batch_id for m in written)

    def load_deletes(self, loader: TargetLoader, staging: StagingSession) -> None:
        """The batches the comparison wrote, loaded like any batch (after the lock is given back)."""
        self.load_pending(loader, staging)

    # ----------------------------------------------------------------- load
    @cached_property
    def loads(self) -> PendingLoads:
        return PendingLoads(self.plan, self.table, self.ctx, self.table_lake, self.progress, self.result)

    def _pending(self, loader: TargetLoader) -> list[Manifest]:
        return self.loads.pending(loader)

    def _begin(self, loader: TargetLoader, head: Manifest) -> StagedLoad:
        return self.loads.begin(loader, head)

    def load_pending(self, loader: TargetLoader, staging: StagingSession) -> None:
        """Load every pending batch, oldest first (engine/table_load.py)."""
        self.loads.load(loader, staging)


__all__ = ["TableTask", "TableResult", "LakeshiftError"]
