"""Delete batches: the key columns of rows gone from the source (hard_deletes,
`verify --repair`), written into the lake like any batch (Parquet parts, then
the manifest last) with mode `delete`. Loading one removes those keys' rows
from the target, or marks them deleted (`soft_delete`), in one transaction
with its load record; like any batch it is listed, replayed by `--load-only`
and kept by `s3clean` until loaded. It moves no watermark."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timezone

import pyarrow as pa

from lakeshift import faults
from lakeshift.arrow_types import schema_of
from lakeshift.batch import DELETE_MODE, Column, Manifest, new_batch_id
from lakeshift.config.models import LakeSettings
from lakeshift.errors import LakeError
from lakeshift.lake.layout import TableLake
from lakeshift.lake.writer import BatchWriter


def write_delete_batch(table_lake: TableLake, settings: LakeSettings, *, pipeline: str, table: str,
                       source_table: str, strategy: str, key_columns: Sequence[Column], keys: pa.Table,
                       soft: bool, now: datetime | None = None) -> Manifest | None:
    """Write `keys` (a table holding at least the key columns, by name) as a delete batch of
    `table`; None (and nothing written) when it has no row. `key_columns` are the merge key's
    Columns as the table's manifests spell them (TableDescription.columns, Manifest.columns)."""
    key_columns = list(key_columns)
    names = [c.name for c in key_columns]
    if not names:
        raise LakeError(f"{table}: a delete batch needs the table's key columns; a table without a key has none")
    missing = [n for n in names if n not in keys.column_names]
    if missing:
        raise LakeError(f"{table}: the keys to delete lack the key column(s) {', '.join(map(repr, missing))}")
    if keys.num_rows == 0:
        return None
    started = now or datetime.now(timezone.utc)
    head = Manifest(batch_id=new_batch_id(started), pipeline=pipeline, table=table, source_table=source_table,
                    strategy=strategy, mode=DELETE_MODE, columns=key_columns, primary_key=names,
                    created_at=started.isoformat(), soft_delete=soft)
    with BatchWriter(table_lake, head.batch_id, started, schema_of(key_columns), settings) as writer:
        writer.write(keys.select(names))
        written = writer.close()
    manifest = dataclasses.replace(head, files=written.files, rows=written.rows, bytes=written.bytes,
                                   null_counts=written.null_counts)
    table_lake.write_manifest(manifest)
    faults.checkpoint("after_delete_manifest")
    return manifest
