"""One table's run (engine/table_task.py) over a table in memory, a real local
lake and a target that records what it is asked: batches commit in order,
the staging is aborted once and never after its commit, the manifest is only
written under the extract lock, a target failing while the batch is written
keeps the batch in the lake, and the crash points come in their order. No database."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from engine_kit import FULL_SYNC, HYBRID, FakeContext, FakeLoader, FakePlan, FakeReader, items_table, table_plan
from lakeshift import faults
from lakeshift.batch import Cursor
from lakeshift.config.models import TableConfig, ValidationRules
from lakeshift.engine.plan import Stages
from lakeshift.engine.table_task import TableTask
from lakeshift.errors import SourceError, ValidationFailed
from lakeshift.lake import TableLake

STOP = Cursor(timestamp="2026-01-01T00:00:09.000000", id=9)


def rows(n: int, start: int = 1) -> list[dict[str, Any]]:
    return [{"id": i, "updated_at": datetime(2026, 1, 1, 0, 0, i), "v": f"v{i}"} for i in range(start, start + n)]


def task(tmp_path: Path, reader: FakeReader, loader: FakeLoader | None, cfg: TableConfig = HYBRID,
         stages: Stages | None = None) -> TableTask:
    ctx = FakeContext(tmp_path / "lake", reader, loader)
    plan = FakePlan(stages=stages or Stages(extract=True, load=loader is not None))
    return TableTask(plan, table_plan(cfg), ctx, lambda name, n: None)  # type: ignore[arg-type]


def lake(t: TableTask) -> TableLake:
    return t.table_lake


@pytest.fixture
def points(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The crash points reached, in order (tests elsewhere kill the process there)."""
    seen: list[str] = []
    monkeypatch.setattr(faults, "checkpoint", seen.append)
    return seen


def test_a_batch_is_staged_while_extracted_and_committed_once_after_its_manifest(tmp_path: Path,
                                                                                 points: list[str]) -> None:
    loader = FakeLoader()
    t = task(tmp_path, FakeReader(items_table(), rows(9), STOP), loader)
    result = t.run()
    (staged,) = loader.staged
    (manifest,) = lake(t).manifests()
    assert staged.head.batch_id == manifest.batch_id and staged.commits == 1 and staged.aborts == 0
    assert points == ["part_closed", "after_parts", "after_manifest", "after_load_commit"]
    assert manifest.watermark_high == STOP and lake(t).effective_watermark()[0] == STOP
    assert (result.rows_extracted, result.batches_written, result.rows_loaded, result.batches_loaded) == (9, 1, 9, 1)
    assert [r.status for r in loader.runs] == ["ok"]


def test_a_target_failing_while_staging_keeps_the_batch_and_loads_it_from_the_lake(tmp_path: Path) -> None:
    loader = FakeLoader(fail_staging=True)
    t = task(tmp_path, FakeReader(items_table(), rows(9), STOP), loader)
    result = t.run()
    first, again = loader.staged
    assert first.aborts == 1 and first.commits == 0  # the staging only
    assert again.commits == 1 and again.aborts == 0 and again.parts == lake(t).manifests()[0].files
    assert result.batches_loaded == 1 and result.rows_loaded == 9


def test_a_lost_extract_lock_writes_no_manifest_and_aborts_the_staging_once(tmp_path: Path,
                                                                            points: list[str]) -> None:
    reader = FakeReader(items_table(), rows(9), STOP)
    reader.lock.lost = True
    loader = FakeLoader()
    t = task(tmp_path, reader, loader)
    with pytest.raises(SourceError, match="lock was lost"):
        t.run()
    assert lake(t).manifests() == [] and lake(t).effective_watermark()[0] is None
    (staged,) = loader.staged
    assert staged.aborts == 1 and staged.commits == 0 and loader.loaded == {}
    assert points == ["part_closed", "after_parts"] and [r.status for r in loader.runs] == ["failed"]
    assert reader.closed == 1


def test_no_new_rows_no_batch_and_the_watermark_stays(tmp_path: Path) -> None:
    loader = FakeLoader()
    t = task(tmp_path, FakeReader(items_table(), [], None), loader)
    result = t.run()
    (staged,) = loader.staged
    assert staged.aborts == 1 and lake(t).manifests() == [] and result.notes == ["no new rows"]


def test_an_empty_snapshot_is_still_a_batch(tmp_path: Path) -> None:
    loader = FakeLoader()
    t = task(tmp_path, FakeReader(items_table(), [], None), loader, FULL_SYNC)
    result = t.run()
    (manifest,) = lake(t).manifests()
    assert manifest.rows == 0 and manifest.mode == "replace" and loader.order == [manifest.batch_id]
    assert result.notes == []


def test_an_older_batch_waiting_means_no_staging_and_batches_load_in_order(tmp_path: Path) -> None:
    reader = FakeReader(items_table(), rows(3), Cursor(timestamp="2026-01-01T00:00:03.000000", id=3))
    backup = task(tmp_path, reader, None)
    backup.run()
    (older,) = lake(backup).manifests()
    reader.rows, reader.last = rows(2, start=4), STOP
    loader = FakeLoader()
    t = task(tmp_path, reader, loader)
    t.run()
    newer = [m for m in lake(t).manifests() if m.batch_id != older.batch_id][0]
    assert loader.order == [older.batch_id, newer.batch_id]
    assert [s.head.batch_id for s in loader.staged] == [older.batch_id, newer.batch_id]  # both from the lake
    assert all(s.aborts == 0 and s.commits == 1 for s in loader.staged)
    assert reader.lows[-1] == Cursor(timestamp="2026-01-01T00:00:03.000000", id=3)


def test_a_batch_failing_its_validation_is_kept_in_the_lake_and_its_staging_aborted(tmp_path: Path) -> None:
    cfg = HYBRID.model_copy(update={"validation": ValidationRules(required_columns=["missing"])})
    loader = FakeLoader()
    t = task(tmp_path, FakeReader(items_table(), rows(9), STOP), loader, cfg)
    with pytest.raises(ValidationFailed, match=r"p1.items: batch \S+ not loaded \(kept in the lake\)"):
        t.run()
    (staged,) = loader.staged
    assert staged.aborts == 1 and staged.commits == 0 and len(lake(t).manifests()) == 1


def test_a_superseded_staged_batch_is_aborted_not_loaded(tmp_path: Path) -> None:
    """Another run loaded a newer snapshot while this one extracted: this one's is never loaded."""
    loader = FakeLoader()
    reader = FakeReader(items_table(), rows(3), None)
    t = task(tmp_path, reader, loader, FULL_SYNC)
    original = t.load_pending

    def newer_snapshot_first(loader_: Any, staging: Any) -> None:
        other = task(tmp_path, reader, None, FULL_SYNC)
        other.run()
        loader.loaded[lake(other).manifests()[-1].batch_id] = None  # as if loaded by another run
        original(loader_, staging)

    t.load_pending = newer_snapshot_first  # type: ignore[method-assign]
    result = t.run()
    (staged,) = loader.staged
    assert staged.aborts == 1 and staged.commits == 0 and result.batches_loaded == 0
