"""TableLake (folders, manifests, the watermark rule, orphans) and s3clean's
logic, on S3 (moto) and a local folder."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lakeshift.batch import Column, Cursor, Manifest, new_batch_id
from lakeshift.config.models import LakeSettings, LocalStorage, S3Storage
from lakeshift.errors import LakeError
from lakeshift.lake import BatchWriter, Lake, TableLake, clean, list_batches

T0 = datetime(2026, 5, 1, 10, 0, tzinfo=timezone.utc)
SCHEMA = pa.schema([pa.field("id", pa.int64(), metadata={"mysql_type": "int(11)"})])


@pytest.fixture(params=["s3", "local"])
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Lake:
    if request.param == "s3":
        storage: Any = S3Storage(**request.getfixturevalue("s3_storage"))
    else:
        storage = LocalStorage(type="local", path="lake")
    return Lake.from_config(storage, base_dir=tmp_path)


@pytest.fixture
def tl(lake: Lake) -> TableLake:
    return TableLake(lake, "pipe", "orders")


def write_batch(tl: TableLake, started: datetime, rows: int, high: Cursor | None, low: Cursor | None = None,
                manifest: bool = True) -> Manifest:
    """One run: parts through BatchWriter, then (optionally) the manifest."""
    batch_id = new_batch_id(started)
    writer = BatchWriter(tl, batch_id, started, SCHEMA, LakeSettings(max_file_rows=10))
    if rows:
        writer.write(pa.table({"id": list(range(rows))}, schema=SCHEMA))
    files, n, nbytes, nulls = writer.close()
    m = Manifest(
        batch_id=batch_id, pipeline="pipe", table="orders", source_table="shop.orders", strategy="hybrid",
        mode="merge", columns=[Column("id", "int(11)", "int", False, "int64")], primary_key=["id"],
        cursor_timestamp_column="updated_at", cursor_id_column="id", watermark_low=low, watermark_high=high,
        files=files, rows=n, bytes=nbytes, null_counts=nulls, created_at=started.isoformat(),
    )
    if manifest:
        tl.write_manifest(m)
    return m


def c(ts: str, i: int) -> Cursor:
    return Cursor(timestamp=ts, id=i)


# ---------------------------------------------------------------- folders


def test_table_folder_with_and_without_isolation_prefix(lake: Lake) -> None:
    assert TableLake(lake, "pipe", "orders").rel("x") == "pipe/orders/x"
    assert TableLake(lake, "", "orders").rel("x") == "orders/x"  # v1.0 layout
    assert TableLake(lake, "team/a", "db.orders").uri("_state/watermark.json") == lake.uri(
        "team/a/db.orders/_state/watermark.json")
    # any other table key (spaces, unicode, '/', '..') is one folder of its own inside the prefix
    folders = set()
    for odd in ("../x", "a/b", ".", "..", "Order Details", "注文", "x y", "x_y"):
        base = TableLake(lake, "pipe", odd).base
        assert base.startswith("pipe/") and "/" not in base[len("pipe/"):] and base[len("pipe/"):] not in (".", "..")
        folders.add(base)
    assert len(folders) == 8
    with pytest.raises(LakeError):
        TableLake(lake, "pipe", "")


def test_two_pipelines_share_nothing(lake: Lake) -> None:
    a, b = TableLake(lake, "a", "orders"), TableLake(lake, "b", "orders")
    write_batch(a, T0, 5, c("2026-05-01T09:00:00", 5))
    a.write_watermark(c("2026-05-01T09:00:00", 5), a.manifest_ids()[0])
    assert b.manifests() == [] and b.files() == [] and b.effective_watermark()[0] is None


# ---------------------------------------------------------------- manifests


def test_manifest_round_trip_and_order(tl: TableLake) -> None:
    m2 = write_batch(tl, T0 + timedelta(hours=1), 15, c("2026-05-01T10:59:59.999999+00:00", 2**63 - 1))
    m1 = write_batch(tl, T0, 3, c("2026-05-01T09:00:00", 3), low=c("2026-04-30T00:00:00", 1))
    empty = write_batch(tl, T0 + timedelta(hours=2), 0, m2.watermark_high, low=m2.watermark_high)
    assert [m.batch_id for m in tl.manifests()] == [m1.batch_id, m2.batch_id, empty.batch_id]
    assert tl.manifests() == [m1, m2, empty]
    assert tl.read_manifest(m2.batch_id).files[1].rows == 5
    assert empty.files == [] and tl.read_manifest(empty.batch_id).rows == 0
    assert tl.newest_manifest() == empty
    assert tl.lake.exists(tl.rel(f"_manifests/{m1.batch_id}.json"))


def test_corrupt_manifest_is_an_error_naming_the_file(tl: TableLake) -> None:
    m = write_batch(tl, T0, 3, c("2026-05-01T09:00:00", 3))
    tl.lake.write_bytes(tl.rel(f"_manifests/{m.batch_id}.json"), b"{not json")
    with pytest.raises(LakeError, match=rf"manifest {tl.uri('_manifests')}/{m.batch_id}\.json is unreadable"):
        tl.manifests()
    with pytest.raises(LakeError, match="unreadable"):
        tl.effective_watermark()


def test_delete_batch_removes_parts_then_manifest(tl: TableLake) -> None:
    keep = write_batch(tl, T0, 4, c("t", 1))
    gone = write_batch(tl, T0 + timedelta(minutes=1), 25, c("t", 2))
    tl.delete_batch(gone)
    assert [m.batch_id for m in tl.manifests()] == [keep.batch_id]
    assert {f.path for f in tl.files()} == {f.path for f in keep.files} | {f"_manifests/{keep.batch_id}.json"}


# ---------------------------------------------------------------- watermark rule


def test_no_state_no_batches(tl: TableLake) -> None:
    assert tl.read_watermark() is None
    cursor, info = tl.effective_watermark()
    assert cursor is None and info.source == "none"


def test_state_written_after_manifest_wins_over_older_manifests(tl: TableLake) -> None:
    m = write_batch(tl, T0, 3, c("2026-05-01T09:00:00", 3))
    state = tl.write_watermark(c("2026-05-01T09:00:00", 3), m.batch_id)
    assert tl.read_watermark() == state
    cursor, info = tl.effective_watermark()
    assert cursor == c("2026-05-01T09:00:00", 3) and info.source == "state" and info.batch_id == m.batch_id


def test_crash_between_manifest_and_state_loses_nothing(tl: TableLake) -> None:
    m1 = write_batch(tl, T0, 3, c("2026-05-01T09:00:00", 3))
    tl.write_watermark(m1.watermark_high, m1.batch_id)
    m2 = write_batch(tl, T0 + timedelta(hours=1), 3, c("2026-05-01T10:00:00.000001", 9))  # then "killed"
    cursor, info = tl.effective_watermark()
    assert cursor == c("2026-05-01T10:00:00.000001", 9)
    assert info.source == "manifest" and info.batch_id == m2.batch_id
    # settling records it, so the manifest may later be cleaned
    settled = tl.settle_watermark()
    assert settled is not None and settled.batch_id == m2.batch_id and settled.watermark == m2.watermark_high
    assert tl.effective_watermark()[1].source == "state"


def test_crash_with_no_state_file_at_all(tl: TableLake) -> None:
    m = write_batch(tl, T0, 3, c("2026-05-01T09:00:00", 3))
    assert tl.effective_watermark()[0] == m.watermark_high


def test_parts_without_manifest_do_not_move_the_watermark(tl: TableLake) -> None:
    m = write_batch(tl, T0, 3, c("2026-05-01T09:00:00", 3))
    tl.write_watermark(m.watermark_high, m.batch_id)
    write_batch(tl, T0 + timedelta(hours=1), 30, c("2026-05-02T00:00:00", 99), manifest=False)  # killed run
    assert tl.effective_watermark()[0] == m.watermark_high


def test_manual_set_applies_until_a_newer_batch(tl: TableLake) -> None:
    m1 = write_batch(tl, T0, 3, c("2026-05-01T09:00:00", 3))
    tl.write_watermark(m1.watermark_high, m1.batch_id)
    state = tl.set_watermark(c("2020-01-01T00:00:00", 0))
    assert state.manual and state.batch_id == m1.batch_id
    cursor, info = tl.effective_watermark()
    assert cursor == c("2020-01-01T00:00:00", 0) and info.source == "manual"
    # the next run started from the manual value; it crashes before writing state
    m2 = write_batch(tl, T0 + timedelta(hours=1), 3, c("2026-05-01T11:00:00", 7), low=cursor)
    cursor, info = tl.effective_watermark()
    assert cursor == m2.watermark_high and info.source == "manifest"


def test_manual_set_on_an_empty_table_then_a_batch(tl: TableLake) -> None:
    state = tl.set_watermark(c("2026-01-01T00:00:00", 10))
    assert state.batch_id is None
    assert tl.effective_watermark()[0] == c("2026-01-01T00:00:00", 10)
    m = write_batch(tl, T0, 3, c("2026-05-01T09:00:00", 3))
    assert tl.effective_watermark()[0] == m.watermark_high


def test_reset_starts_from_scratch_despite_existing_batches(tl: TableLake) -> None:
    m = write_batch(tl, T0, 3, c("2026-05-01T09:00:00", 3))
    tl.write_watermark(m.watermark_high, m.batch_id)
    state = tl.reset_watermark()
    assert state.watermark is None and state.manual and state.batch_id == m.batch_id
    cursor, info = tl.effective_watermark()
    assert cursor is None and info.source == "manual"


def test_corrupt_state_file_is_an_error(tl: TableLake) -> None:
    tl.lake.write_bytes(tl.rel("_state/watermark.json"), b"[]")
    with pytest.raises(LakeError, match=r"watermark state .*_state/watermark\.json is unreadable"):
        tl.read_watermark()


# ---------------------------------------------------------------- orphans and clean


def test_orphans_are_files_no_manifest_names(tl: TableLake) -> None:
    m = write_batch(tl, T0, 12, c("t", 1))
    tl.write_watermark(m.watermark_high, m.batch_id)
    killed = write_batch(tl, T0 + timedelta(hours=1), 15, c("t", 2), manifest=False)
    tl.lake.write_bytes(tl.rel("_manifests/.x.json.tmp-1234"), b"half")
    orphans = tl.orphans()
    assert sorted(f.path for f in orphans) == sorted([f.path for f in killed.files] + ["_manifests/.x.json.tmp-1234"])
    assert {f.path: f.size for f in orphans if f.path.endswith(".parquet")} == {f.path: f.bytes for f in killed.files}
    listing = list_batches(tl, loaded=set())
    assert [b.batch_id for b in listing.batches] == [m.batch_id] and listing.orphans == orphans


def test_list_batches_shows_loaded_and_pending(tl: TableLake) -> None:
    a = write_batch(tl, T0, 12, c("t", 1))
    b = write_batch(tl, T0 + timedelta(hours=1), 3, c("t", 2))
    rows = list_batches(tl, loaded={a.batch_id}).batches
    assert [(r.batch_id, r.files, r.rows, r.bytes, r.status) for r in rows] == [
        (a.batch_id, 2, 12, a.bytes, "loaded"), (b.batch_id, 1, 3, b.bytes, "pending")]
    assert rows[0].created == T0


def test_clean_refuses_pending_batches_without_force(tl: TableLake) -> None:
    loaded = write_batch(tl, T0, 12, c("t", 1))
    pending = write_batch(tl, T0 + timedelta(hours=1), 3, c("t", 2))
    report = clean(tl, {loaded.batch_id}, older_than=None, dry_run=False, force=False)
    assert [b.batch_id for b in report.deleted_batches] == [loaded.batch_id]
    assert [b.batch_id for b in report.kept_pending] == [pending.batch_id]
    assert report.files_deleted == 3 and report.bytes_deleted == loaded.bytes
    assert tl.manifest_ids() == [pending.batch_id]
    assert {f.path for f in tl.files()} >= {f.path for f in pending.files}
    assert tl.orphans() == []
    # the pending batch's watermark survives in the state file, so force may remove it
    report = clean(tl, set(), older_than=None, dry_run=False, force=True)
    assert [b.batch_id for b in report.deleted_batches] == [pending.batch_id]
    assert tl.manifest_ids() == [] and tl.effective_watermark()[0] == c("t", 2)
    assert [f.path for f in tl.files()] == ["_state/watermark.json"]


def test_clean_older_than_and_dry_run(tl: TableLake) -> None:
    old = write_batch(tl, T0, 5, c("t", 1))
    new = write_batch(tl, T0 + timedelta(days=6), 5, c("t", 2))
    tl.write_watermark(new.watermark_high, new.batch_id)
    now = T0 + timedelta(days=8)
    loaded = {old.batch_id, new.batch_id}
    report = clean(tl, loaded, older_than=timedelta(days=7), dry_run=True, force=False, now=now)
    assert [b.batch_id for b in report.deleted_batches] == [old.batch_id]
    assert [b.batch_id for b in report.kept_recent] == [new.batch_id]
    assert tl.manifest_ids() == [old.batch_id, new.batch_id]  # dry run: nothing touched
    clean(tl, loaded, older_than=timedelta(days=7), dry_run=False, force=False, now=now)
    assert tl.manifest_ids() == [new.batch_id]
    assert tl.effective_watermark()[0] == c("t", 2)


def test_clean_keeps_young_orphans_unless_forced(tl: TableLake) -> None:
    m = write_batch(tl, T0, 5, c("t", 1))
    tl.write_watermark(m.watermark_high, m.batch_id)
    write_batch(tl, T0, 25, c("t", 9), manifest=False)  # 3 orphan parts, mtime = now
    assert len(tl.orphans()) == 3
    report = clean(tl, set(), older_than=None, dry_run=False, force=False)
    assert report.deleted_orphans == [] and len(report.kept_orphans) == 3 and report.kept_pending
    # an hour later they are no longer a running extract's
    later = datetime.now(timezone.utc) + timedelta(hours=2)
    report = clean(tl, set(), older_than=timedelta(days=1), dry_run=False, force=False, now=later)
    assert report.deleted_orphans == []  # but younger than --older-than
    report = clean(tl, set(), older_than=None, dry_run=False, force=False, now=later)
    assert len(report.deleted_orphans) == 3 and tl.orphans() == []
    assert tl.manifest_ids() == [m.batch_id]  # pending batch untouched


def test_clean_force_removes_young_orphans(tl: TableLake) -> None:
    write_batch(tl, T0, 25, c("t", 9), manifest=False)
    report = clean(tl, set(), older_than=None, dry_run=False, force=True)
    assert len(report.deleted_orphans) == 3 and tl.files() == []


def test_clean_settles_a_crash_watermark_before_deleting_its_manifest(tl: TableLake) -> None:
    m1 = write_batch(tl, T0, 5, c("t", 1))
    tl.write_watermark(m1.watermark_high, m1.batch_id)
    m2 = write_batch(tl, T0 + timedelta(hours=1), 5, c("t", 2))  # crash: no state for m2
    clean(tl, {m1.batch_id, m2.batch_id}, older_than=None, dry_run=False, force=False)
    assert tl.manifest_ids() == []
    cursor, info = tl.effective_watermark()
    assert cursor == c("t", 2) and info.source == "state" and info.batch_id == m2.batch_id


def test_many_manifests_read_in_order(tl: TableLake) -> None:
    made = [write_batch(tl, T0 + timedelta(minutes=i), 1, c("t", i)) for i in range(9)]
    assert tl.manifests() == made
