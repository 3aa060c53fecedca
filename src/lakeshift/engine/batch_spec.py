"""What one run extracts from one table, decided before a row is read: the
table check (merge key and mode), the watermark it starts from (after the
schema is compared, see schema_watch.py), its window, whether it is a sample,
and the head of the batch's manifest. A run and `--dry-run` both ask
`plan_batch`, so they cannot disagree about it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Protocol

from lakeshift.batch import Cursor, Manifest, new_batch_id
from lakeshift.config.models import TableConfig
from lakeshift.engine.plan import TablePlan
from lakeshift.engine.schema_watch import check_columns
from lakeshift.engine.table_checks import TableCheck, check_table

if TYPE_CHECKING:
    from lakeshift.engine.contracts import TargetLoader
    from lakeshift.lake import TableLake, WriteResult
    from lakeshift.source import ReadResult, TableDescription, Window


class WindowSource(Protocol):
    """The source as planning uses it (MySQLReader)."""

    def describe(self, full_name: str, table: TableConfig | None = None) -> TableDescription: ...

    def plan_window(self, table: TableConfig, desc: TableDescription, low: Cursor | None) -> Window: ...


@dataclass(frozen=True)
class BatchSpec:
    desc: TableDescription
    check: TableCheck
    read_from_start: bool  # columns were added since the last batch: every row is read again
    window: Window
    head: Manifest  # the manifest without its files: batch id, columns, key, where the window starts
    started: datetime
    notes: tuple[str, ...] = ()  # the source's schema changes, for the run history

    @property
    def mode(self) -> str:
        return self.check.mode

    @property
    def sample(self) -> bool:
        """--limit on a snapshot reads some rows only: a sample, never loaded (plan.py refuses it with a load)."""
        return self.head.sample

    @property
    def written_without_rows(self) -> bool:
        """A snapshot is a batch even when it holds no row (the table is empty now); a run of an
        incremental table that reads nothing writes no batch and its watermark stays."""
        return self.mode == "replace"

    @property
    def writes_nothing(self) -> bool:
        """Known before reading: the window holds no row and an empty read writes no batch."""
        return self.window.empty and not self.written_without_rows

    def manifest(self, written: WriteResult, read: ReadResult) -> Manifest:
        """The complete manifest once the batch is written; the next watermark is where the
        read stopped, or where it began when it read nothing."""
        return dataclasses.replace(self.head, files=written.files, rows=written.rows, bytes=written.bytes,
                                   null_counts=written.null_counts, watermark_high=read.last or self.window.low)


def plan_batch(table: TablePlan, pipeline: str, limit: int | None, reader: WindowSource, table_lake: TableLake,
               loader: TargetLoader | None, now: datetime | None = None) -> BatchSpec:
    """Describe the source table, check it (a refusal changes nothing), find the
    watermark and fix the window. Reads the source's catalogue and bounds, the
    lake's watermark and, for the schema comparison, the lake or the target."""
    cfg = table.config
    desc = reader.describe(table.source_table, cfg)
    check = check_table(table.name, cfg, desc)
    low = None if cfg.cdc_strategy == "full_sync" else table_lake.effective_watermark()[0]
    schema = check_columns(table.name, cfg.cdc_strategy, desc.apply(cfg).columns, table_lake, loader,
                           table.target_table, low is not None)
    if schema.read_from_start:
        low = None  # read every row again, merged by key like a first load (see schema_watch.py)
    window = reader.plan_window(cfg, desc, low)
    started = now or datetime.now(timezone.utc)
    head = Manifest(
        batch_id=new_batch_id(started), pipeline=pipeline, table=table.name, source_table=desc.full_name,
        strategy=cfg.cdc_strategy, mode=check.mode, columns=desc.columns,  # type: ignore[arg-type]
        primary_key=check.key.columns, cursor_timestamp_column=cfg.cdc_timestamp_column,
        cursor_id_column=cfg.cdc_id_column, watermark_low=window.low, low_inclusive=window.low_inclusive,
        created_at=started.isoformat(), sample=check.mode == "replace" and limit is not None,
        row_ordinal=bool(check.key.columns),
        soft_delete=check.mode == "replace" and cfg.hard_deletes == "soft",
    )
    return BatchSpec(desc, check, schema.read_from_start, window, head, started, tuple(schema.notes))


def batches_after_extract(spec: BatchSpec | None, manifests: list[Manifest]) -> list[Manifest]:
    """The batches the lake holds once this run has extracted, as far as it is
    known before a row is read: with this run's own batch when it is written
    whatever it reads (a snapshot, which supersedes every older one)."""
    if spec is None or not spec.written_without_rows:
        return list(manifests)
    return [*manifests, spec.head]
