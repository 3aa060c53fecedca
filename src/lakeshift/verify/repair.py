"""`verify --repair`: what a comparison found, mended through the normal batch
path. The rows of missing and different keys are read again from MySQL into
the lake as a merge batch; the extra keys are written as a delete batch (keys
only). Both are pending batches like any other: the table's load commits each
in one target transaction with its `_lakeshift_loads` record, `--load-only`
replays them, and a run killed in between loses nothing (no manifest, no
batch). Neither moves the watermark: the merge batch carries the lake's
watermark as it was, as its low and high."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from lakeshift import faults
from lakeshift.batch import Manifest, new_batch_id
from lakeshift.errors import SourceError
from lakeshift.lake import BatchWriter, write_delete_batch
from lakeshift.source import keys as K
from lakeshift.source.convert import Converter
from lakeshift.source.positions import select_sql
from lakeshift.source.types import lake_schema

if TYPE_CHECKING:
    from lakeshift.config.models import LakeSettings, TableConfig
    from lakeshift.lake import TableLake
    from lakeshift.source import MySQLReader, TableDescription

KEYS_PER_READ = 500  # keys in one SELECT's condition
STREAM_ROWS = 16_384


@dataclasses.dataclass(frozen=True)
class RepairTarget:
    """One table to mend: where its batches go and how they are described."""

    reader: MySQLReader
    desc: TableDescription
    table_lake: TableLake
    settings: LakeSettings  # the pipeline's lake settings (what BatchWriter takes)
    pipeline: str
    table: str  # the pipeline's table key
    config: TableConfig
    key: list[str]


def write_rows_batch(t: RepairTarget, keys: Sequence[tuple[Any, ...]], now: datetime | None = None) -> Manifest | None:
    """MySQL's rows of `keys` (values as MySQL gave them) as a merge batch; None when there are none."""
    if not keys:
        return None
    key_cols = [K.KeyCol.of(t.desc.info(k)) for k in t.key]
    if any(k is None for k in key_cols):
        raise SourceError(f"{t.desc.full_name}: the key ({', '.join(t.key)}) cannot select rows; nothing repaired")
    conv = Converter(t.desc.full_name, t.desc.columns, lake_schema(t.desc.columns), t.config.zero_dates)
    started = now or datetime.now(timezone.utc)
    watermark = None if t.config.cdc_strategy == "full_sync" else t.table_lake.effective_watermark()[0]
    head = Manifest(batch_id=new_batch_id(started), pipeline=t.pipeline, table=t.table,
                    source_table=t.desc.full_name, strategy=t.config.cdc_strategy, mode="merge",
                    columns=t.desc.columns, primary_key=list(t.key),
                    cursor_timestamp_column=t.config.cdc_timestamp_column, cursor_id_column=t.config.cdc_id_column,
                    watermark_low=watermark, watermark_high=watermark, created_at=started.isoformat())
    where = f"MySQL {t.reader.label}: table {t.desc.full_name}"
    select = ", ".join(conv.select_list())
    with BatchWriter(t.table_lake, head.batch_id, started, conv.schema, t.settings) as writer:
        for i in range(0, len(keys), KEYS_PER_READ):
            sql = select_sql(t.desc, select, [_any_of(key_cols, keys[i:i + KEYS_PER_READ])])
            for batch in t.reader.cx.stream(sql, STREAM_ROWS, where):
                writer.write(conv.convert(batch))
        written = writer.close()
    if not written.rows:
        return None  # every key vanished meanwhile: the next verify says so
    manifest = dataclasses.replace(head, files=written.files, rows=written.rows, bytes=written.bytes,
                                   null_counts=written.null_counts)
    t.table_lake.write_manifest(manifest)
    faults.checkpoint("after_repair_manifest")
    return manifest


def write_gone_batch(t: RepairTarget, keys: Any) -> Manifest | None:
    """The extra keys (an Arrow table of the key columns) as a delete batch; soft when the table's
    hard_deletes is `soft`."""
    columns = {c.name: c for c in t.desc.columns}
    return write_delete_batch(t.table_lake, t.settings, pipeline=t.pipeline, table=t.table,
                              source_table=t.desc.full_name, strategy=t.config.cdc_strategy,
                              key_columns=[columns[k] for k in t.key], keys=keys,
                              soft=t.config.hard_deletes == "soft")


def _any_of(keys: list[K.KeyCol], values: Sequence[tuple[Any, ...]]) -> str:
    """MySQL condition true for the rows of any of `values` (literals rendered by KeyCol)."""
    if len(keys) == 1:
        return f"{keys[0].sql} IN ({', '.join(keys[0].literal(v[0]) for v in values)})"
    rows = [" AND ".join(f"{k.sql} = {k.literal(x)}" for k, x in zip(keys, v)) for v in values]
    return " OR ".join(f"({r})" for r in rows)
