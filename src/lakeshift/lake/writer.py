"""Arrow batches → Parquet parts of one batch in the lake.

Rows are buffered up to one row group (`row_group_rows`), so memory is bounded
by a row group, never the table; a new part starts every `max_file_rows` rows,
so Redshift COPY gets many files to load in parallel. Each closed part is
reported through `on_part`, and the rows of the open part through `on_rows`
as they are written (the same Arrow data), so a loader can stage them while
extraction goes on without reading the part back. With `ordinal`, each part
ends with the column _lakeshift_ord: the row's position in the batch (0, 1, ...),
which a Redshift COPY carries into staging to pick the newest of a repeated key.
The writer never writes a manifest: that is the caller's last step."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq

from lakeshift import faults, lake_profile
from lakeshift.batch import BatchFile
from lakeshift.config.models import LakeSettings
from lakeshift.lake.layout import TableLake

log = logging.getLogger("lakeshift.lake")

# Parquet falls back from dictionary to plain encoding once a column chunk's
# dictionary passes this size. pyarrow's 1 MiB default keeps unique columns (keys,
# timestamps, doubles) dictionary-encoded for a whole 64k-row group, which costs CPU
# and space for nothing; at 64 KiB they fall back early while low-cardinality
# columns (status, flags) stay dictionary-encoded (docs/benchmarks.md, 14).
DICTIONARY_PAGE_LIMIT = 64 * 1024


class WriteResult(NamedTuple):
    files: list[BatchFile]
    rows: int
    bytes: int
    null_counts: dict[str, int]


class BatchWriter:
    def __init__(self, table_lake: TableLake, batch_id: str, started_at: datetime, schema: pa.Schema,
                 settings: LakeSettings, on_part: Callable[[BatchFile], None] | None = None,
                 on_rows: Callable[[pa.Table], None] | None = None, ordinal: bool = False) -> None:
        self.table_lake, self.batch_id, self.started_at = table_lake, batch_id, started_at
        self.schema, self.settings, self.on_part, self.on_rows = schema, settings, on_part, on_rows
        self.ordinal = ordinal
        self.file_schema = schema.append(pa.field(lake_profile.ROW_ORDINAL, pa.int64())) if ordinal else schema
        self.files: list[BatchFile] = []
        self.rows = 0
        self.null_counts = {name: 0 for name in schema.names}
        self._buffer: list[pa.Table] = []
        self._buffered = 0
        self._part_rows = 0  # rows written or buffered for the open part
        self._part_path: str | None = None
        self._stream: pa.NativeFile | None = None
        self._writer: pq.ParquetWriter | None = None
        self._started: list[str] = []  # every part opened, for abort()
        self._done = False

    def __enter__(self) -> BatchWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._done:
            self.close()

    # ----------------------------------------------------------------- write
    def write(self, data: pa.RecordBatch | pa.Table) -> None:
        if self._done:
            raise RuntimeError("BatchWriter is closed")
        table = pa.Table.from_batches([data]) if isinstance(data, pa.RecordBatch) else data
        if table.num_rows == 0:
            return
        if not table.schema.equals(self.schema, check_metadata=False):
            table = table.cast(self.schema)  # raises on a real mismatch: a bug in the reader
        for name, column in zip(table.column_names, table.columns):
            self.null_counts[name] += column.null_count
        max_rows, group = self.settings.max_file_rows, self.settings.row_group_rows
        offset = 0
        while offset < table.num_rows:
            take = min(max_rows - self._part_rows, table.num_rows - offset)
            rows = table.slice(offset, take)
            if self.on_rows is not None:
                self.on_rows(rows)  # before the part can close: its rows come before its on_part
            if self.ordinal:
                rows = rows.append_column(lake_profile.ROW_ORDINAL, lake_profile.ordinals(self.rows, take))
            self._buffer.append(rows)
            self._buffered += take
            self._part_rows += take
            self.rows += take
            offset += take
            if self._buffered >= group:
                self._flush(final=False)
            if self._part_rows >= max_rows:
                self._close_part()

    def _flush(self, final: bool) -> None:
        """Write whole row groups from the buffer (and the rest when final)."""
        if not self._buffered:
            return
        group = self.settings.row_group_rows
        # Chunked as it came: write_table cuts row groups across chunks, so no
        # combine_chunks() copy of the whole buffer.
        table = pa.concat_tables(self._buffer) if len(self._buffer) > 1 else self._buffer[0]
        whole = table.num_rows if final else (table.num_rows // group) * group
        if whole:
            self._open_part()
            assert self._writer is not None
            try:
                self._writer.write_table(table.slice(0, whole), row_group_size=group)
            except (OSError, pa.ArrowException) as exc:  # the native stream's errors (S3, disk full)
                tl = self.table_lake
                raise tl.lake.error("write", tl.rel(self._part_path or ""), exc) from None
        rest = table.slice(whole)
        self._buffer = [rest] if rest.num_rows else []
        self._buffered = rest.num_rows

    def _open_part(self) -> None:
        if self._writer is not None:
            return
        tl = self.table_lake
        self._part_path = tl.part_path(self.batch_id, self.started_at, len(self.files),
                                       self.settings.partition_strategy)
        self._started.append(self._part_path)
        self._stream = tl.lake.open_output_stream(tl.rel(self._part_path), native=True)
        self._writer = pq.ParquetWriter(
            self._stream, self.file_schema, compression=self.settings.compression,
            write_statistics=True, store_schema=True,  # ARROW:schema keeps field metadata (mysql_type)
            coerce_timestamps="us",  # the lake profile: INT64 microseconds, never ns or INT96
            dictionary_pagesize_limit=DICTIONARY_PAGE_LIMIT,
        )

    def _close_part(self) -> None:
        self._flush(final=True)
        if self._writer is None:
            self._part_rows = 0
            return
        tl, path = self.table_lake, self._part_path
        assert self._stream is not None and path is not None
        rows = self._part_rows
        try:
            self._writer.close()
            size = self._stream.tell()
            self._stream.close()
        except Exception as exc:
            raise tl.lake.error("write", tl.rel(path), exc) from None
        finally:
            self._writer = self._stream = None
            self._part_rows = 0
        tl.lake.sync(tl.rel(path))
        lake_profile.check_part(tl.lake.full_path(tl.rel(path)), tl.lake.filesystem)  # test suite only
        part = BatchFile(path, rows, size)
        self.files.append(part)
        log.debug("%s: wrote %s (%d rows, %d bytes)", self.batch_id, tl.uri(path), rows, size)
        if self.on_part is not None:
            self.on_part(part)
        faults.checkpoint("part_closed")

    # ----------------------------------------------------------------- close
    def close(self) -> WriteResult:
        """Close the last part; returns (files, rows, bytes, null_counts).
        Zero rows → no file at all."""
        if not self._done:
            self._close_part()
            self._done = True
        return WriteResult(list(self.files), self.rows, sum(f.bytes for f in self.files), dict(self.null_counts))

    def abort(self) -> None:
        """Stop and delete the parts written so far (best effort: anything left
        behind has no manifest, so it is an orphan for s3clean)."""
        self._done = True
        self._buffer, self._buffered = [], 0
        for closer in (self._writer, self._stream):
            try:
                if closer is not None:
                    closer.close()
            except Exception:  # noqa: BLE001
                pass
        self._writer = self._stream = None
        tl = self.table_lake
        try:
            rels = [tl.rel(p) for p in self._started]
            tl.lake.delete(rels)
            tl.lake.prune_dirs(rels, stop=tl.base)
        except Exception as exc:  # noqa: BLE001 - the error that caused the abort matters more
            log.warning("%s: could not delete the parts of aborted batch %s: %s", tl.uri(), self.batch_id, exc)
