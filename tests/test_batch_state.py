"""The one classification of a table's batches (lakeshift.batch_state), and what
it means in the lake: s3clean's rules, sample manifests, the watermark. Lake
tests run on S3 (moto) and a local folder."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from test_lake_layout import T0, c, lake, tl, write_batch  # noqa: F401 - fixtures

from lakeshift.batch import Manifest
from lakeshift.batch_state import classify, pending
from lakeshift.errors import LakeError
from lakeshift.lake import TableLake, clean, list_batches
from lakeshift.load.state import LoadRecord

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


def record(m: Manifest, mode: str | None = None, note: str | None = None) -> LoadRecord:
    return LoadRecord(m.pipeline, m.table, m.batch_id, "orders", mode or m.mode, m.rows, len(m.files), m.bytes,
                      m.watermark_low, m.watermark_high, NOW, note)


def snapshot(tl: TableLake, hours: int, rows: int = 4, sample: bool = False) -> Manifest:  # noqa: F811
    """A full_sync batch in the lake (a sample when `sample`)."""
    m = write_batch(tl, T0 + timedelta(hours=hours), rows, None)
    m = dataclasses.replace(m, strategy="full_sync", mode="replace", sample=sample, watermark_high=None)
    tl.write_manifest(m)
    return m


def states(manifests: list[Manifest], records: dict[str, Any]) -> list[str]:
    return [s.state for s in classify(manifests, records)]


def test_snapshots_supersede_older_unloaded_ones_and_samples_and_skips_do_not(tl: TableLake) -> None:  # noqa: F811
    s1, s2, s3, sample = (snapshot(tl, 1), snapshot(tl, 2), snapshot(tl, 3), snapshot(tl, 4, sample=True))
    found = classify(tl.manifests(), {s1.batch_id: record(s1)})
    assert [s.state for s in found] == ["loaded", "superseded", "pending", "sample"]
    assert found[1].reason == f"superseded by snapshot {s3.batch_id}"
    assert pending(found) == [s3]
    # loaded s3 keeps s2 superseded even once s3's files are cleaned: its record says it replaced the table
    assert states([s1, s2], {s1.batch_id: record(s1), s3.batch_id: record(s3)}) == ["loaded", "superseded"]
    # a skipped snapshot replaced nothing: the older unloaded one is newer than the target's, so it loads
    skipped = {s1.batch_id: record(s1), s3.batch_id: record(s3, "skipped", "bad")}
    assert states([s1, s2, s3], skipped) == ["loaded", "pending", "skipped"]
    assert classify([s3], skipped)[0].reason == "bad"
    # a sample is never pending and supersedes nothing
    assert states([s2, sample], {}) == ["pending", "sample"]


def test_incremental_batches_all_load_in_order_unless_a_snapshot_follows(tl: TableLake) -> None:  # noqa: F811
    b1, b2 = write_batch(tl, T0, 3, c("t", 1)), write_batch(tl, T0 + timedelta(hours=1), 3, c("t", 2))
    assert states([b1, b2], {}) == ["pending", "pending"]
    assert states([b1, b2], dict.fromkeys([b1.batch_id])) == ["loaded", "pending"]  # only the id known: loaded
    s = snapshot(tl, 2)  # the table became full_sync: the snapshot replaces whatever they held
    assert states([b1, b2, s], {}) == ["superseded", "superseded", "pending"]


def test_clean_removes_what_no_run_loads_and_keeps_the_newest_snapshot(tl: TableLake) -> None:  # noqa: F811
    s1, s2, sample, s3 = snapshot(tl, 1), snapshot(tl, 2), snapshot(tl, 3, sample=True), snapshot(tl, 4)
    loaded = {s1.batch_id: record(s1), s3.batch_id: record(s3)}
    assert [(b.batch_id, b.status) for b in list_batches(tl, loaded).batches] == [
        (s1.batch_id, "loaded"), (s2.batch_id, "superseded"), (sample.batch_id, "sample"), (s3.batch_id, "loaded")]
    report = clean(tl, loaded, older_than=None, dry_run=False, force=False)
    assert [b.batch_id for b in report.deleted_batches] == [s1.batch_id, s2.batch_id, sample.batch_id]
    assert [b.batch_id for b in report.kept_snapshot] == [s3.batch_id]
    assert tl.manifest_ids() == [s3.batch_id] and tl.orphans() == []
    assert [b.batch_id for b in clean(tl, loaded, None, dry_run=False, force=True).deleted_batches] == [s3.batch_id]


def test_clean_keeps_skipped_and_pending_batches_unless_forced(tl: TableLake) -> None:  # noqa: F811
    b1, b2, b3 = (write_batch(tl, T0 + timedelta(hours=i), 3, c("t", i)) for i in range(3))
    tl.write_watermark(b3.watermark_high, b3.batch_id)
    loaded = {b1.batch_id: record(b1), b2.batch_id: record(b2, "skipped", "bad rows")}
    report = clean(tl, loaded, older_than=None, dry_run=False, force=False)
    assert ([b.batch_id for b in report.deleted_batches], [b.batch_id for b in report.kept_skipped],
            [b.batch_id for b in report.kept_pending]) == ([b1.batch_id], [b2.batch_id], [b3.batch_id])
    assert report.kept_skipped[0].reason == "bad rows"
    report = clean(tl, loaded, older_than=None, dry_run=False, force=True)
    assert [b.batch_id for b in report.deleted_batches] == [b2.batch_id, b3.batch_id]
    assert tl.effective_watermark()[0] == c("t", 2)


def test_sample_manifests_and_manifests_of_older_releases(tl: TableLake) -> None:  # noqa: F811
    plain = write_batch(tl, T0, 3, c("t", 1))
    assert "sample" not in json.loads(plain.to_json())  # an older lakeshift reads it as before
    assert tl.read_manifest(plain.batch_id).sample is False
    sample = snapshot(tl, 1, sample=True)
    assert json.loads(sample.to_json())["sample"] is True and tl.read_manifest(sample.batch_id).sample is True
    broken = json.loads(sample.to_json())
    broken["sample"] = "yes"
    tl.lake.write_bytes(tl.rel(tl.manifest_path(sample.batch_id)), json.dumps(broken).encode())
    with pytest.raises(LakeError, match="unreadable .*'sample' must be true or false"):
        tl.read_manifest(sample.batch_id)


def test_a_sample_moves_no_watermark(tl: TableLake) -> None:  # noqa: F811
    m1 = write_batch(tl, T0, 3, c("t", 1))
    tl.write_watermark(m1.watermark_high, m1.batch_id)
    m2 = write_batch(tl, T0 + timedelta(hours=1), 3, c("t", 2))  # a crash before its state was written
    sample = snapshot(tl, 2, sample=True)
    tl.write_manifest(dataclasses.replace(sample, watermark_high=c("t", 99)))
    cursor, info = tl.effective_watermark()
    assert (cursor, info.source, info.batch_id) == (c("t", 2), "manifest", m2.batch_id)
