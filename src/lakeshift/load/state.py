"""What the load stage records in the target: one row per loaded batch
(`_lakeshift_loads`) and one per table run (`_lakeshift_runs`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from lakeshift.batch import Cursor

LOADS_TABLE = "_lakeshift_loads"
RUNS_TABLE = "_lakeshift_runs"
LOCKS_TABLE = "_lakeshift_locks"  # Redshift only: it has no advisory locks
ERROR_MAX_CHARS = 4000
NOTE_MAX_CHARS = 1024  # _lakeshift_loads.note: why a batch was skipped
NOTES_MAX_CHARS = 4096  # _lakeshift_runs.notes: what a run noted (schema changes, samples, ...)


@dataclass(frozen=True)
class LoadRecord:
    pipeline: str
    table: str
    batch_id: str
    target_table: str
    mode: str
    rows: int
    files: int
    bytes: int
    watermark_low: Cursor | None
    watermark_high: Cursor | None
    loaded_at: datetime | None
    note: str | None = None  # a skipped batch: the reason given
    deleted: int = 0  # rows removed or marked deleted (a delete batch; a full_sync with soft deletes)


@dataclass(frozen=True)
class LoadResult:
    """What `StagedBatch.commit` did. `rows` is the number of rows written to
    the target (after de-duplication), 0 when skipped. Two results are equal
    when the batch, status and row counts are (never equal to a plain string)."""

    batch_id: str
    status: Literal["loaded", "skipped"]
    rows: int = 0
    rows_deleted: int = 0  # rows the move deleted, a merge's replaced rows included
    seconds: float = field(default=0.0, compare=False)
    notes: tuple[str, ...] = field(default=(), compare=False)  # what the load changed beyond rows, for the run history
    deleted: int = 0  # rows gone from the source: removed or marked deleted (the load record's `deleted`)

    @property
    def skipped(self) -> bool:
        """The batch was recorded in the target before: nothing was loaded."""
        return self.status == "skipped"


@dataclass
class RunRecord:
    pipeline: str
    table: str
    started_at: datetime | str
    finished_at: datetime | str | None
    status: str
    rows_extracted: int = 0
    rows_loaded: int = 0
    batches: int = 0
    error: str | None = None
    notes: str | None = None
    rows_deleted: int = 0  # rows gone from the source, removed or marked deleted
    quality: str | None = None  # data_quality_checks results, e.g. "null_check ok; row_count_min failed ..."


def cursor_to_text(cursor: Cursor | None) -> str | None:
    return json.dumps(cursor.to_dict(), sort_keys=True) if cursor else None


def cursor_from_text(text: str | None) -> Cursor | None:
    return Cursor.from_dict(json.loads(text)) if text else None


def as_utc(value: datetime | str | None) -> datetime | None:
    """ISO text or datetime -> aware UTC datetime (naive values are taken as UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def load_record_from_row(row: tuple[Any, ...]) -> LoadRecord:
    (pipeline, table, batch_id, target_table, mode, rows, files, nbytes, low, high, loaded_at, note, deleted) = row
    return LoadRecord(
        pipeline=pipeline, table=table, batch_id=batch_id, target_table=target_table, mode=mode,
        rows=int(rows or 0), files=int(files or 0), bytes=int(nbytes or 0),
        watermark_low=cursor_from_text(low), watermark_high=cursor_from_text(high), loaded_at=as_utc(loaded_at),
        note=note, deleted=int(deleted or 0),
    )


def run_record_from_row(row: tuple[Any, ...]) -> RunRecord:
    (pipeline, table, started, finished, status, extracted, loaded, batches, error, notes, deleted, quality) = row
    return RunRecord(
        pipeline=pipeline, table=table, started_at=as_utc(started), finished_at=as_utc(finished),  # type: ignore[arg-type]
        status=status, rows_extracted=int(extracted or 0), rows_loaded=int(loaded or 0),
        batches=int(batches or 0), error=error, notes=notes, rows_deleted=int(deleted or 0), quality=quality,
    )
