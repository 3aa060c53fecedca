"""One table of one run: extract a batch into the lake, then load every
pending batch into the target. Extraction and loading overlap: each Parquet
part is handed to the loader's staging as soon as it is closed, and the batch
is committed (merge + load record, one transaction) once its manifest is
durable."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa

from lakeshift import faults
from lakeshift.batch import BatchFile, Manifest, new_batch_id, utc_now_iso
from lakeshift.batch_state import classify, pending
from lakeshift.engine.merge_key import RepeatCheck
from lakeshift.engine.plan import Plan, TablePlan
from lakeshift.engine.schema_watch import check_columns
from lakeshift.engine.table_checks import check_table
from lakeshift.errors import ConfigError, LakeshiftError, LockBusyError, ValidationFailed
from lakeshift.load.contracts import Part
from lakeshift.redact import redact

log = logging.getLogger("lakeshift.engine")


@dataclass
class TableResult:
    table: str
    rows_extracted: int = 0
    rows_loaded: int = 0
    batches_written: int = 0
    batches_loaded: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


class _PartFeeder:
    """Hands a batch's rows to a staged load on its own thread, so the database
    COPY overlaps the extraction. A loader that can COPY rows as they are written
    (`add_streamed_part`, PostgreSQL) gets the extract's own Arrow data while each
    part is being written: nothing is read back from the lake and the COPY starts
    with the first rows. Others get each part once it is closed, from the lake.
    Either way the batch is only committed after its manifest is in the lake."""

    QUEUE_ITEMS = 16  # slices of at most one reader batch (16k rows): bounds the memory held here

    def __init__(self, staged: Any, lake: Any, table_lake: Any) -> None:
        self.staged, self.lake, self.table_lake = staged, lake, table_lake
        self.streamed = callable(getattr(staged, "add_streamed_part", None))
        self.items: queue.Queue[Any] = queue.Queue(maxsize=self.QUEUE_ITEMS)
        self.error: BaseException | None = None
        self._ended = False  # the end marker was taken off the queue
        self.thread = threading.Thread(target=self._run, name="lakeshift-stage", daemon=True)
        self.thread.start()

    # -- the extract's side
    def rows(self, table: pa.Table) -> None:
        if self.error is None:
            self.items.put(table)

    def put(self, part: BatchFile) -> None:
        if self.error is None:
            self.items.put(part)

    def close(self) -> None:
        self.items.put(_END)
        self.thread.join()
        if self.error is not None:
            raise self.error

    # -- the loading thread
    def _part(self, file: BatchFile) -> Part:
        rel = self.table_lake.rel(file.path)
        return Part(self.lake.full_path(rel), self.lake.filesystem, self.lake.uri(rel), file)

    def _run(self) -> None:
        while not self._ended:
            item = self.items.get()
            if item is _END:
                return
            if self.error is not None:
                continue  # drain, so the extract never blocks on a loader that failed
            try:
                if isinstance(item, BatchFile):  # a part closed (read back from the lake)
                    p = self._part(item)
                    self.staged.add_part(p.path, p.filesystem, p.uri, p.file)
                else:  # the first rows of a part being written
                    self._stream_part(item)
            except BaseException as exc:  # noqa: BLE001 - re-raised on the extract's thread by close()
                self.error = exc

    def _stream_part(self, first: pa.Table) -> None:
        closed: list[BatchFile] = []

        def batches() -> Iterator[pa.RecordBatch]:
            item = first
            while True:
                if item is _END:
                    self._ended = True
                    raise LakeshiftError("the extract stopped before the part was closed")
                if isinstance(item, BatchFile):
                    closed.append(item)
                    return
                yield from item.to_batches()
                item = self.items.get()

        def part() -> Part:
            if not closed:
                raise LakeshiftError("a part's rows were copied but the part was never closed")
            return self._part(closed[0])

        self.staged.add_streamed_part(batches(), part)


_END = object()  # the queue's end marker


class TableTask:
    """Runs one table. Collaborators are built by the caller (see runner.py)."""

    def __init__(self, plan: Plan, table: TablePlan, ctx: Any, progress: Callable[[str, int], None]) -> None:
        self.plan, self.table, self.ctx, self.progress = plan, table, ctx, progress
        self.pipeline = plan.pipeline
        self.result = TableResult(table.name)

    # ------------------------------------------------------------------ run
    def run(self) -> TableResult:
        started = time.monotonic()
        started_at = utc_now_iso()
        status, error = "ok", None
        loader = self.ctx.loader() if self.plan.stages.load else None
        try:
            if loader:
                loader.ensure_state_tables()
            staged_batch = self.extract(loader) if self.plan.stages.extract else None
            if loader:
                self.load_pending(loader, staged_batch)
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

    def _record_run(self, loader: Any, started_at: str, status: str, error: BaseException | None) -> None:
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
                notes="; ".join(self.result.notes) or None,
            ))
        except Exception as exc:  # noqa: BLE001 - history must never hide the real outcome
            log.warning("%s: could not record the run history: %s", self.table.name, exc)

    # -------------------------------------------------------------- extract
    def extract(self, loader: Any) -> tuple[Manifest, Any] | None:
        """Write one batch to the lake. Returns (manifest, staged load) when the
        batch was staged in the target while it was extracted."""
        t, cfg = self.table, self.table.config
        table_lake = self.ctx.table_lake(t.name)
        table_lake.check_writable()  # an unwritable lake fails now, not after the whole extract
        reader = self.ctx.reader()
        try:
            return self._extract(loader, reader, table_lake)
        finally:
            reader.close()

    def _extract(self, loader: Any, reader: Any, table_lake: Any) -> tuple[Manifest, Any] | None:
        t, cfg = self.table, self.table.config
        with reader.table_lock(self.pipeline.name, t.name, scope=table_lake.uri()) as lock:
            desc = reader.describe(t.source_table)
            checked = check_table(t.name, cfg, desc)  # before anything is read: a refusal changes nothing
            low = None if cfg.cdc_strategy == "full_sync" else table_lake.effective_watermark()[0]
            if self._must_read_from_start(loader, desc.apply(cfg).columns, table_lake, low is not None):
                low = None  # read every row again, merged by key like a first load (see schema_watch.py)
            window = reader.plan_window(cfg, desc, low)
            key, mode = checked.key.columns, checked.mode
            repeats = RepeatCheck(t.name, checked.key)
            # --limit on a snapshot reads some rows only: a sample, never loaded (plan.py refuses it with a load).
            sample = mode == "replace" and self.plan.limit is not None
            started = datetime.now(timezone.utc)
            head = Manifest(
                batch_id=new_batch_id(started), pipeline=self.pipeline.name, table=t.name,
                source_table=f"{desc.schema}.{desc.table}", strategy=cfg.cdc_strategy, mode=mode,
                columns=desc.columns, primary_key=key, cursor_timestamp_column=cfg.cdc_timestamp_column,
                cursor_id_column=cfg.cdc_id_column, watermark_low=window.low, low_inclusive=window.low_inclusive,
                created_at=started.isoformat(), sample=sample,
            )
            staged = feeder = None
            # Stage while extracting only when no older batch waits: batches commit in order.
            if loader is not None and not sample and not self._pending(loader, table_lake):
                staged = loader.begin(head, t.target_table)
                feeder = _PartFeeder(staged, self.ctx.lake, table_lake)
            writer = self.ctx.batch_writer(table_lake, head.batch_id, started, reader.lake_schema(desc, cfg),
                                           on_part=feeder.put if feeder else None,
                                           on_rows=feeder.rows if feeder and feeder.streamed else None)
            try:
                for batch in reader.read(cfg, desc, window, t.batch_size, self.plan.limit):
                    repeats.add(batch)
                    writer.write(batch)
                    self.progress(t.name, batch.num_rows)
                files, rows, nbytes, nulls = writer.close()
                repeats.check()
            except BaseException:
                writer.abort()
                if feeder:
                    try:
                        feeder.close()
                    except BaseException:  # noqa: BLE001 - the extract error is the one to report
                        pass
                if staged:
                    staged.abort()
                raise
            if feeder:
                try:
                    feeder.close()
                except Exception as exc:  # noqa: BLE001 - the target failed, the extract did not
                    # Keep the batch: it goes into the lake as usual and is loaded from there
                    # (below, or by the next run if the target is still away).
                    log.warning("%s: staging into the target failed while extracting (%s); the batch is kept "
                                "in the lake and loaded from there", t.name, redact(str(exc)))
                    staged.abort()
                    staged = None
            faults.checkpoint("after_parts")
            self.result.rows_extracted = rows
            if rows == 0 and mode != "replace":
                # Nothing new: no batch, the watermark stays where it is.
                if staged:
                    staged.abort()
                self.result.notes.append("no new rows")
                return None
            manifest = Manifest(**{**head.__dict__, "files": files, "rows": rows, "bytes": nbytes,
                                   "null_counts": nulls, "watermark_high": window.last or window.low})
            # Only under the extract lock: had it been lost, a later run may have extracted and
            # loaded newer rows, and this older batch, loaded after them, would bring old values back.
            try:
                if lock is not None:
                    lock.check()
            except BaseException:
                if staged:
                    staged.abort()
                raise
            table_lake.write_manifest(manifest)
            if sample:
                self.result.notes.append(f"sample of {rows:,} rows (--limit): never loaded")
            else:
                table_lake.write_watermark(manifest.watermark_high, manifest.batch_id)
            self.result.batches_written = 1
            faults.checkpoint("after_manifest")
            return (manifest, staged) if staged else None

    def _must_read_from_start(self, loader: Any, columns: list[Any], table_lake: Any, has_watermark: bool) -> bool:
        """Log (and note) the source's schema changes; True: this run must read from the start."""
        t = self.table
        check = check_columns(t.name, t.config.cdc_strategy, columns, table_lake, loader, t.target_table,
                              has_watermark)
        self.result.notes.extend(check.notes)
        return check.read_from_start

    # ----------------------------------------------------------------- load
    def _pending(self, loader: Any, table_lake: Any) -> list[Manifest]:
        records = loader.loaded_batches(self.pipeline.name, self.table.name)
        return pending(classify(table_lake.manifests(), records))

    def load_pending(self, loader: Any, staged_batch: tuple[Manifest, Any] | None) -> None:
        from lakeshift.load import validate_batch

        t = self.table
        table_lake = self.ctx.table_lake(t.name)
        with loader.lock(self.pipeline.name, t.name):
            pending = self._pending(loader, table_lake)
            staged_id = staged_batch[0].batch_id if staged_batch else None
            for manifest in pending:
                problems = validate_batch(manifest, t.config) if t.config.data_validation else []
                if problems:
                    if staged_batch and manifest.batch_id == staged_id:
                        staged_batch[1].abort()
                    raise ValidationFailed(
                        f"{self.pipeline.key}.{t.name}: batch {manifest.batch_id} not loaded (kept in the lake): "
                        + "; ".join(problems) + ". Way out: change the validation rule, or `lakeshift batches skip "
                        f"-p {self.pipeline.key} -t {t.name} {manifest.batch_id} --reason TEXT` (it says how to "
                        "read its rows again)"
                    )
                if staged_batch and manifest.batch_id == staged_id:
                    staged = staged_batch[1]
                else:
                    staged = loader.begin(manifest, t.target_table)
                    try:
                        for part in manifest.files:
                            rel = table_lake.rel(part.path)
                            staged.add_part(self.ctx.lake.full_path(rel), self.ctx.lake.filesystem,
                                            self.ctx.lake.uri(rel), part)
                    except BaseException:
                        staged.abort()
                        raise
                outcome = staged.commit(manifest)
                faults.checkpoint("after_load_commit")
                self.result.notes.extend(outcome.notes)
                if outcome.skipped:
                    continue
                self.result.rows_loaded += outcome.rows
                self.result.batches_loaded += 1
            if staged_batch and staged_id not in {m.batch_id for m in pending}:
                staged_batch[1].abort()  # superseded or loaded by another run meanwhile


__all__ = ["TableTask", "TableResult", "LakeshiftError"]
