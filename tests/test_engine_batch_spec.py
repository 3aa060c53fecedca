"""What a run extracts from a table, decided before a row is read (engine/batch_spec.py):
the mode and key, the watermark it starts from (after a reset, a `watermark set`,
a schema change, for full_sync), the window, the sample flag and the manifest head.
The real window planning over a table in memory and a real local lake; no database."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine_kit import FULL_SYNC, HYBRID, FakeLoader, FakeReader, items_table, local_lake, table_plan
from lakeshift.batch import Column, Cursor, Manifest, new_batch_id
from lakeshift.batch_state import classify, pending
from lakeshift.config.models import TableConfig
from lakeshift.engine.batch_spec import batches_after_extract, plan_batch
from lakeshift.errors import ConfigError
from lakeshift.lake import TableLake, WriteResult
from lakeshift.source.row_stream import ReadResult

WATERMARK = Cursor(timestamp="2026-01-01T00:00:05.000000", id=5, ties="ties-then")


@pytest.fixture
def tl(tmp_path: Path) -> TableLake:
    return TableLake(local_lake(tmp_path / "lake"), "p1", "items")


def batch(tl: TableLake, high: Cursor | None = WATERMARK, mode: str = "merge", columns: tuple[str, ...] = ("id",
          "updated_at", "v"), sample: bool = False) -> Manifest:
    """A batch in the lake (its manifest and the watermark it moved)."""
    m = Manifest(batch_id=new_batch_id(), pipeline="p1", table="items", source_table="shop.items",
                 strategy="full_sync" if mode == "replace" else "hybrid", mode=mode,  # type: ignore[arg-type]
                 columns=[Column(c, "int(11)", "int", False, "int32") for c in columns], primary_key=["id"],
                 watermark_high=high, sample=sample)
    tl.write_manifest(m)
    if not sample:
        tl.write_watermark(high, m.batch_id)
    return m


def test_a_first_run_reads_every_row_and_merges_on_the_primary_key(tl: TableLake) -> None:
    reader = FakeReader(items_table())
    spec = plan_batch(table_plan(), "p1", None, reader, tl, None)
    assert reader.lows == [None]
    assert spec.mode == "merge" and spec.check.key.columns == ["id"] and not spec.read_from_start
    assert not spec.sample and not spec.written_without_rows
    h = spec.head
    assert (h.pipeline, h.table, h.source_table, h.strategy, h.mode) == ("p1", "items", "shop.items", "hybrid", "merge")
    assert [c.name for c in h.columns] == ["id", "updated_at", "v"] and h.primary_key == ["id"]
    assert (h.cursor_timestamp_column, h.cursor_id_column) == ("updated_at", "id")
    assert h.watermark_low is None and h.files == [] and h.rows == 0
    assert spec.window.high == Cursor(timestamp="2026-01-01T00:00:09.000000", id=9)


def test_the_next_run_starts_at_the_watermark_of_the_newest_batch(tl: TableLake) -> None:
    batch(tl)
    reader = FakeReader(items_table())
    spec = plan_batch(table_plan(), "p1", None, reader, tl, None)
    assert reader.lows == [WATERMARK]
    assert spec.head.watermark_low == WATERMARK and spec.head.low_inclusive  # the tie there changed: AT it
    unchanged = FakeReader(items_table(), ties="ties-then")
    after = plan_batch(table_plan(), "p1", None, unchanged, tl, None)
    assert not after.head.low_inclusive  # the same tie: right after it


def test_after_a_reset_or_a_watermark_set_the_run_starts_there(tl: TableLake) -> None:
    batch(tl)
    tl.reset_watermark()
    reader = FakeReader(items_table())
    assert plan_batch(table_plan(), "p1", None, reader, tl, None).head.watermark_low is None
    manual = Cursor(timestamp="2026-01-01T00:00:02.000000", id=2)
    tl.set_watermark(manual)
    plan_batch(table_plan(), "p1", None, reader, tl, None)
    assert reader.lows == [None, manual]


def test_a_sample_moves_no_watermark(tl: TableLake) -> None:
    batch(tl)
    batch(tl, high=Cursor(timestamp="2026-01-01T00:00:08.000000", id=8), sample=True)
    reader = FakeReader(items_table())
    plan_batch(table_plan(), "p1", None, reader, tl, None)
    assert reader.lows == [WATERMARK]


def test_a_column_added_since_the_last_batch_reads_every_row_again(tl: TableLake) -> None:
    batch(tl)
    reader = FakeReader(items_table(extra=("country",)))
    spec = plan_batch(table_plan(), "p1", None, reader, tl, FakeLoader())
    assert spec.read_from_start and reader.lows == [None] and spec.head.watermark_low is None
    assert any("country" in n and "added" in n for n in spec.notes)
    assert [c.name for c in spec.head.columns][-1] == "country"


def test_full_sync_reads_everything_and_always_writes_a_snapshot(tl: TableLake) -> None:
    batch(tl)  # a watermark in the lake does not matter
    reader = FakeReader(items_table())
    spec = plan_batch(table_plan(FULL_SYNC), "p1", None, reader, tl, None)
    assert reader.lows == [None] and spec.mode == "replace" and spec.written_without_rows
    assert not spec.read_from_start and spec.window.describe() == "all rows (full snapshot), paged by id"


def test_a_limit_makes_a_snapshot_a_sample_but_not_an_incremental_batch(tl: TableLake) -> None:
    reader = FakeReader(items_table())
    assert plan_batch(table_plan(FULL_SYNC), "p1", 10, reader, tl, None).sample
    assert plan_batch(table_plan(FULL_SYNC), "p1", 10, reader, tl, None).head.sample
    assert not plan_batch(table_plan(), "p1", 10, reader, tl, None).sample
    assert not plan_batch(table_plan(FULL_SYNC), "p1", None, reader, tl, None).sample


def test_a_keyless_table_appends_and_one_that_cannot_be_merged_is_refused_before_its_window(tl: TableLake) -> None:
    ts_only = TableConfig(cdc_strategy="timestamp_only", cdc_timestamp_column="updated_at")
    keyless = FakeReader(items_table(key=False))
    spec = plan_batch(table_plan(ts_only), "p1", None, keyless, tl, None)
    assert spec.mode == "append" and spec.check.key.columns == []
    refused = FakeReader(items_table(key=False))
    with pytest.raises(ConfigError, match="tables.items: cdc_strategy hybrid merges changed rows by key"):
        plan_batch(table_plan(HYBRID), "p1", None, refused, tl, None)
    assert refused.lows == []  # refused before any window was planned: nothing read


def test_the_manifest_takes_the_files_and_the_next_watermark_from_where_the_read_stopped(tl: TableLake) -> None:
    batch(tl)
    spec = plan_batch(table_plan(), "p1", None, FakeReader(items_table()), tl, None)
    written = WriteResult([], 0, 0, {})
    assert spec.manifest(written, ReadResult(0, None)).watermark_high == spec.window.low == WATERMARK
    stop = Cursor(timestamp="2026-01-01T00:00:09.000000", id=9, ties="t")
    m = spec.manifest(WriteResult([], 3, 99, {"v": 1}), ReadResult(3, stop))
    assert m.watermark_high == stop and (m.rows, m.bytes, m.null_counts) == (3, 99, {"v": 1})
    assert m.batch_id == spec.head.batch_id and spec.head.rows == 0  # the head stays as planned


def test_a_snapshot_to_come_supersedes_the_pending_ones_an_incremental_batch_does_not(tl: TableLake) -> None:
    older = [batch(tl, mode="replace"), batch(tl, mode="replace")]
    snapshot = plan_batch(table_plan(FULL_SYNC), "p1", None, FakeReader(items_table()), tl, None)
    assert pending(classify(batches_after_extract(snapshot, tl.manifests()), {})) == [snapshot.head]
    assert pending(classify(batches_after_extract(None, tl.manifests()), {})) == [older[1]]
    sample = plan_batch(table_plan(FULL_SYNC), "p1", 5, FakeReader(items_table()), tl, None)
    assert pending(classify(batches_after_extract(sample, tl.manifests()), {})) == [older[1]]  # never loaded
    incremental = plan_batch(table_plan(), "p1", None, FakeReader(items_table()), tl, None)
    assert batches_after_extract(incremental, tl.manifests()) == tl.manifests()  # written only if it reads rows
