"""What one run of a binlog table extracts, decided before a row is read
(cdc_strategy: binlog; the reader is source/binlog/).

- No saved position (a first run, `watermark reset`, or a lost position with
  `on_position_lost: resnapshot`): the server's position is recorded, then
  the table is read like a full_sync into a `replace` batch whose watermark is
  that position. Changes committed during the read are in the log after it
  and are applied again by the next run: by key, newest wins, so the table
  converges once the stream passes the snapshot's end.
- A saved position: the changes from there up to the position the server has
  now, as a `changes` batch (row image + _lakeshift_op/_seq/_commit_ts).

Every run first checks the server (binlog_format ...), then the position."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lakeshift.batch import BinlogPosition, Cursor, Manifest, change_columns, new_batch_id
from lakeshift.config.models import PipelineConfig
from lakeshift.engine.binlog_schema import follow_schema
from lakeshift.engine.plan import TablePlan
from lakeshift.engine.table_checks import check_table
from lakeshift.errors import ConfigError

if TYPE_CHECKING:
    from lakeshift.lake import TableLake, WriteResult
    from lakeshift.source import MySQLReader, TableDescription
    from lakeshift.source.binlog.stream import ChangeRead


@dataclass
class BinlogBatch:
    """A binlog table's batch of this run: a snapshot, or the changes since the saved position."""

    head: Manifest  # without files; a change batch's watermark_high is set once it is read
    schema: pa.Schema  # the Parquet schema: the row image, then the change columns
    started: datetime
    snapshot: bool
    end: BinlogPosition  # where this run stops reading (the server's position at its start)
    check_key: Any  # the table check's MergeKey (a snapshot checks it for repeats)
    _rows: Iterator[pa.RecordBatch] | None = None
    _changes: ChangeRead | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Known before reading: no transaction committed since the saved position."""
        return not self.snapshot and self.head.watermark_low is not None and \
            self.head.watermark_low.binlog is not None and self.head.watermark_low.binlog.key() >= self.end.key()

    def batches(self) -> Iterator[pa.RecordBatch]:
        if self._changes is not None:
            return self._changes.batches()
        assert self._rows is not None
        return self._rows

    def after_read(self, loader: Any, table: TablePlan, force: bool) -> list[str]:
        """Once the changes are read: what the read found worth telling. A TRUNCATE (hard_deletes
        set) deletes every row of the target: refused above max_delete_fraction like any delete,
        before the batch exists (its parts are left unnamed); a run without the target cannot tell."""
        from lakeshift.engine.deletes import check_delete_fraction
        from lakeshift.errors import DeletesRefused

        if self._changes is None:
            return []
        notes = list(self._changes.notes)
        if self._changes.cut:
            notes.append(f"ended at a commit after {self._changes.changes:,} changes (max_changes): more changes wait")
        if self._changes.truncated:
            what = f"a TRUNCATE of MySQL {self.head.source_table} read from the binlog"
            if loader is None:
                return [*notes, f"{what}: every row of the target goes when this batch is loaded (not guarded "
                                f"by max_delete_fraction: this run has no target)"]
            rows = loader.live_rows(table.target_table)
            try:
                check_delete_fraction(table.name, rows, rows, table.config.max_delete_fraction, force)
            except DeletesRefused as exc:
                raise DeletesRefused(f"{exc} ({what})") from None
            notes.append(f"{what}: the {rows:,} row(s) of the target go")
        return notes

    @property
    def position(self) -> BinlogPosition:
        """Where the read ended: the snapshot's recorded position, or the last commit read."""
        return self.end if self._changes is None else self._changes.position

    def manifest(self, written: WriteResult) -> Manifest:
        return dataclasses.replace(self.head, files=written.files, rows=written.rows, bytes=written.bytes,
                                   null_counts=written.null_counts, watermark_high=Cursor(binlog=self.position))


def plan_binlog_batch(table: TablePlan, pipeline: PipelineConfig, reader: MySQLReader,
                      table_lake: TableLake, max_changes: int | None = None) -> BinlogBatch:
    from lakeshift.source.binlog import server
    from lakeshift.source.client import connect

    cfg = table.config
    where = f"MySQL {reader.label}"
    low = table_lake.effective_watermark()[0]
    saved = low.binlog if low is not None else None
    notes: list[str] = []
    with reader.pool.dedicated() as conn:
        info = server.check_ready(conn, where)
        if saved is not None:
            saved = _still_there(conn, info, saved, table.name, pipeline, notes)
        end = server.current_position(conn, info, seq=saved.seq if saved else 0)
    # described after the position is taken: a schema change up to it is in these columns
    desc = reader.describe(table.source_table, cfg)
    check = check_table(table.name, cfg, desc)
    _check_columns(table.name, desc)
    if saved is not None:
        schema = follow_schema(desc.columns, table_lake)
        notes.extend(schema.notes)
        if schema.resnapshot:
            saved = None  # `end` keeps the table's change count: _lakeshift_seq goes on
    started = datetime.now(timezone.utc)
    columns = desc.columns + change_columns()
    head = Manifest(
        batch_id=new_batch_id(started), pipeline=pipeline.name, table=table.name, source_table=desc.full_name,
        strategy="binlog", mode="replace" if saved is None else "changes", columns=columns,
        primary_key=check.key.columns, watermark_low=Cursor(binlog=saved) if saved else None,
        watermark_high=Cursor(binlog=end) if saved is None else None, created_at=started.isoformat(),
        row_ordinal=saved is None and bool(check.key.columns),  # changes are ordered by _lakeshift_seq
        soft_delete=cfg.hard_deletes == "soft")  # deletes (and rows a new snapshot lacks) are marked
    from lakeshift.source.types import lake_schema

    batch = BinlogBatch(head, lake_schema(columns), started, saved is None, end, check.key, notes=notes)
    if saved is None:
        batch.notes.append(f"snapshot at binlog position {end.describe()}")
        batch._rows = _snapshot_rows(reader, table, desc, batch.schema)
    else:
        from lakeshift.source.binlog.stream import ChangeRead, ReadTarget

        target = ReadTarget(desc, check.key.columns, cfg.zero_dates, pipeline.binlog_server_id,
                            truncate=cfg.hard_deletes != "ignore", max_changes=max_changes,
                            by_gtid=info.mariadb and bool(saved.gtid) and not saved.file)
        batch._changes = ChangeRead(lambda: connect(reader.src, reader.settings, reader.pool.endpoint()),
                                    target, saved, end)
    return batch


def _check_columns(name: str, desc: TableDescription) -> None:
    """Columns the binlog path cannot carry: names it adds itself, types it cannot decode exactly."""
    from lakeshift.source.binlog import decode

    clash = sorted({c.name for c in desc.columns} & {c.name for c in change_columns()})
    if clash:
        raise ConfigError(f"tables.{name}: MySQL {desc.full_name} has column(s) {', '.join(clash)}, which "
                          f"binlog CDC adds to every row; rename them or use another cdc_strategy")
    bad = decode.unsupported(desc.columns)
    if bad:
        raise ConfigError(f"tables.{name}: column(s) {', '.join(bad)} of MySQL {desc.full_name} cannot be "
                          f"read from the binlog exactly as a snapshot reads them yet; use another cdc_strategy")


def _still_there(conn: Any, info: Any, saved: BinlogPosition, name: str, pipeline: PipelineConfig,
                 notes: list[str]) -> BinlogPosition | None:
    """The saved position, or None (take a new snapshot) when it is lost and the pipeline says resnapshot."""
    from lakeshift.source.binlog.server import PositionLost, holds_gtid, lost_reason

    why = lost_reason(conn, info, saved)
    if not why:
        return saved
    if saved.server != info.identity and info.mariadb and saved.gtid and holds_gtid(conn, saved.gtid):
        notes.append(f"{why}; its binlog holds GTID {saved.gtid}: resuming from it")
        return dataclasses.replace(saved, file="", pos=0, server=info.identity)  # its file/offset mean nothing here
    if pipeline.pipeline.binlog.on_position_lost == "resnapshot":
        notes.append(f"binlog position {saved.describe()} lost ({why}): new snapshot")
        return None
    raise PositionLost(
        f"{pipeline.key}.{name}: the saved binlog position {saved.describe()} is lost: {why}. Way out: "
        f"`lakeshift watermark reset -p {pipeline.key} -t {name}` (the next run takes a new snapshot that "
        f"replaces the target table), or set pipeline.binlog.on_position_lost: resnapshot")


def _snapshot_rows(reader: MySQLReader, table: TablePlan, desc: TableDescription,
                   schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """The table read like a full_sync, with NULL change columns (no change seen yet)."""
    as_full = table.config.model_copy(update={"cdc_strategy": "full_sync"})
    window = reader.plan_window(as_full, desc, None)
    for b in reader.read(as_full, desc, window, table.batch_size):
        nulls = [pa.nulls(b.num_rows, f.type) for f in schema][b.num_columns:]
        yield pa.RecordBatch.from_arrays([*b.columns, *nulls], schema=schema)
