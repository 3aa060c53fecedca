"""Load behaviour that must hold on every real target: PostgreSQL and DuckDB.

Each test writes small Parquet parts with pyarrow into a local lake folder,
builds the manifest by hand, and loads it for real."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from kit.targets import Target, duck_target, pg_target
from load_kit import Lake, batch, col, load

from lakeshift import faults
from lakeshift.batch import Cursor
from lakeshift.errors import LoadError, LockBusyError, SchemaChangeError
from lakeshift.load import RunRecord
from lakeshift.redact import register


@pytest.fixture(params=["postgres", "duckdb"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    if request.param == "postgres":
        return pg_target(request.getfixturevalue("pg_schema"))
    return duck_target(tmp_path / "db" / "target.duckdb", "tgt", read_only=False)  # the loader is in this process


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path / "lake")


@pytest.fixture
def loader(target: Any) -> Any:
    ld = target.open()
    ld.ensure_state_tables()
    yield ld
    ld.close()


COLS = [col("id", pa.int64()), col("name", pa.string(), "varchar(20)", "varchar"),
        col("updated_at", pa.timestamp("us")), col("seq", pa.int64())]


def t(rows: list[tuple[Any, ...]], cols=COLS) -> pa.Table:
    return pa.table({c.name: [r[i] for r in rows] for i, c in enumerate(cols)})


D1, D2, D3 = datetime(2026, 1, 1, 0, 0, 0, 1), datetime(2026, 1, 2, 0, 0, 0, 2), datetime(2026, 1, 3, 0, 0, 0, 3)


def loads_rows(target: Any) -> list[tuple[Any, ...]]:
    return target.query(f'SELECT "batch_id", "rows" FROM {target.name("_lakeshift_loads")} ORDER BY 1')


# ---------------------------------------------------------------- merge, idempotence


def test_merge_creates_schema_and_table_and_a_rerun_is_skipped(target, lake, loader):
    m, paths = batch(lake, COLS, [t([(1, "a", D1, 1), (2, "b", D1, 2)]), t([(3, "c", D2, 3)])], ts="updated_at",
                     id_col="seq", low=Cursor("2025-12-31T00:00:00", 0), high=Cursor("2026-01-02T00:00:00.000002", 3))
    first = load(loader, lake, m, paths)
    assert first.status == "loaded" and first.rows == 3 and not first.skipped
    again = load(loader, lake, m, paths)
    assert again.status == "skipped" and again.skipped and again != "skipped" and again.rows == 0
    assert target.query(f"SELECT id, name, updated_at FROM {target.name('t')} ORDER BY id") == [
        (1, "a", D1), (2, "b", D1), (3, "c", D2)]
    assert loads_rows(target) == [(m.batch_id, 3)]
    rec = loader.loaded_batches("pipe", "t")[m.batch_id]
    assert (rec.rows, rec.files, rec.mode, rec.target_table) == (3, 2, "merge", "t")
    assert rec.watermark_low == Cursor("2025-12-31T00:00:00", 0)
    assert rec.watermark_high == Cursor("2026-01-02T00:00:00.000002", 3)
    assert loader.loaded_batches("pipe", "other") == {}


def test_merge_updates_by_key_and_keeps_other_rows(target, lake, loader):
    m1, p1 = batch(lake, COLS, [t([(1, "a", D1, 1), (2, "b", D1, 2)])], ts="updated_at")
    m2, p2 = batch(lake, COLS, [t([(2, "b2", D2, 3), (4, "d", D2, 4)])], ts="updated_at")
    load(loader, lake, m1, p1)
    res = load(loader, lake, m2, p2)
    assert (res.rows, res.rows_deleted) == (2, 1)
    assert target.query(f"SELECT id, name FROM {target.name('t')} ORDER BY id") == [(1, "a"), (2, "b2"), (4, "d")]


def test_duplicate_keys_in_one_batch_newest_cursor_wins(target, lake, loader):
    """Lookback overlap: the same key twice in one batch. The cursor decides,
    not the position (the newer version sits in the earlier part here)."""
    m, paths = batch(lake, COLS, [t([(1, "new", D3, 9), (2, "only", D1, 1)]), t([(1, "old", D1, 5)])],
                     ts="updated_at", id_col="seq")
    assert load(loader, lake, m, paths).rows == 2
    assert target.query(f"SELECT id, name FROM {target.name('t')} ORDER BY id") == [(1, "new"), (2, "only")]


def test_duplicate_keys_with_equal_cursor_last_in_file_order_wins(target, lake, loader):
    m, paths = batch(lake, COLS, [t([(1, "first", D1, 1), (1, "second", D1, 1)]), t([(1, "third", D1, 1)])],
                     ts="updated_at", id_col="seq")
    load(loader, lake, m, paths)
    assert target.query(f"SELECT id, name FROM {target.name('t')}") == [(1, "third")]


def test_composite_key(target, lake, loader):
    cols = [col("region", pa.string(), "varchar(8)", "varchar"), col("id", pa.int32()), col("v", pa.string())]
    m1, p1 = batch(lake, cols, [t([("eu", 1, "a"), ("us", 1, "b"), ("eu", 2, "c")], cols)], key=("region", "id"))
    m2, p2 = batch(lake, cols, [t([("us", 1, "B"), ("us", 2, "new")], cols)], key=("region", "id"))
    load(loader, lake, m1, p1)
    load(loader, lake, m2, p2)
    assert target.query(f"SELECT region, id, v FROM {target.name('t')} ORDER BY region, id") == [
        ("eu", 1, "a"), ("eu", 2, "c"), ("us", 1, "B"), ("us", 2, "new")]


def test_append_mode_tags_rows_with_the_batch_id(target, lake, loader):
    cols = [col("event", pa.string()), col("n", pa.int32())]
    m1, p1 = batch(lake, cols, [t([("x", 1), ("x", 1)], cols)], mode="append")
    m2, p2 = batch(lake, cols, [t([("y", 2)], cols)], mode="append")
    assert load(loader, lake, m1, p1).rows == 2
    assert load(loader, lake, m2, p2).rows == 1
    assert load(loader, lake, m1, p1).skipped
    got = target.query(f'SELECT event, n, "_lakeshift_batch_id" FROM {target.name("t")} ORDER BY 3, 1')
    assert got == [("x", 1, m1.batch_id), ("x", 1, m1.batch_id), ("y", 2, m2.batch_id)]


# ---------------------------------------------------------------- replace (full_sync)


def test_replace_is_atomic_for_concurrent_readers(target, lake, loader, monkeypatch):
    cols = [col("id", pa.int64()), col("v", pa.string())]
    m1, p1 = batch(lake, cols, [t([(1, "a"), (2, "b"), (3, "c")], cols)], mode="replace")
    load(loader, lake, m1, p1)
    seen: list[Any] = []
    conn = target.connect()  # a second, independent reader of the target
    read = lambda sql: conn.execute(sql).fetchall()  # noqa: E731

    def checkpoint(point: str) -> None:
        if point == "in_load_transaction":  # the replace is done but not committed
            seen.append(sorted(read(f"SELECT id, v FROM {target.name('t')}")))

    monkeypatch.setattr(faults, "checkpoint", checkpoint)
    m2, p2 = batch(lake, cols, [t([(7, "x")], cols), t([(8, "y")], cols)], mode="replace")
    try:
        assert load(loader, lake, m2, p2).rows == 2
        after = sorted(read(f"SELECT id, v FROM {target.name('t')}"))
    finally:
        conn.close()
    assert seen == [[(1, "a"), (2, "b"), (3, "c")]]  # never empty, never half
    assert after == [(7, "x"), (8, "y")]


def test_replace_with_an_empty_snapshot_empties_the_table(target, lake, loader):
    cols = [col("id", pa.int64()), col("v", pa.string())]
    m1, p1 = batch(lake, cols, [t([(1, "a")], cols)], mode="replace")
    load(loader, lake, m1, p1)
    m2, p2 = batch(lake, cols, [], mode="replace")
    assert load(loader, lake, m2, p2).rows == 0
    assert target.query(f"SELECT COUNT(*) FROM {target.name('t')}") == [(0,)]


def test_replace_deduplicates_by_key(target, lake, loader):
    m, p = batch(lake, COLS, [t([(1, "old", D1, 1), (1, "new", D2, 2)])], mode="replace", ts="updated_at")
    load(loader, lake, m, p)
    assert target.query(f"SELECT id, name FROM {target.name('t')}") == [(1, "new")]


# ---------------------------------------------------------------- failures


def test_a_failure_inside_the_commit_changes_nothing(target, lake, loader, monkeypatch):
    m1, p1 = batch(lake, COLS, [t([(1, "a", D1, 1)])])
    load(loader, lake, m1, p1)
    before = target.query(f"SELECT * FROM {target.name('t')} ORDER BY id")

    def boom(point: str) -> None:
        if point == "in_load_transaction":
            raise RuntimeError("injected failure after the merge")

    monkeypatch.setattr(faults, "checkpoint", boom)
    m2, p2 = batch(lake, COLS, [t([(1, "changed", D2, 2), (2, "new", D2, 3)])])
    with pytest.raises(RuntimeError, match="injected"):
        load(loader, lake, m2, p2)
    assert target.query(f"SELECT * FROM {target.name('t')} ORDER BY id") == before
    assert loads_rows(target) == [(m1.batch_id, 1)]
    monkeypatch.undo()
    assert load(loader, lake, m2, p2).rows == 2  # the next run loads it
    assert target.query(f"SELECT id, name FROM {target.name('t')} ORDER BY id") == [(1, "changed"), (2, "new")]


def test_a_batch_missing_a_part_is_refused(target, lake, loader):
    m, paths = batch(lake, COLS, [t([(1, "a", D1, 1)]), t([(2, "b", D1, 2)])])
    staged = loader.begin(m, "t")
    staged.add_part(paths[0], lake.fs, "file://" + paths[0], m.files[0])
    with pytest.raises(LoadError, match="not the manifest's files"):
        staged.commit(m)
    assert loader.loaded_batches("pipe", "t") == {}


def test_null_merge_keys_are_refused(target, lake, loader):
    m, paths = batch(lake, COLS, [t([(None, "a", D1, 1)])], null_counts={"id": 1})
    with pytest.raises(LoadError, match="merge key column 'id' has 1 NULL"):
        load(loader, lake, m, paths)


def test_parts_that_differ_from_the_manifest_are_refused(target, lake, loader):
    m, paths = batch(lake, COLS, [t([(1, "a", D1, 1)])])
    m.columns[1] = col("name", pa.int32())
    with pytest.raises(LoadError, match="column 'name' is string but the manifest says int32"):
        load(loader, lake, m, paths)


# ---------------------------------------------------------------- schema evolution


def test_schema_evolution_add_widen_and_dropped_columns(target, lake, loader):
    v1 = [col("id", pa.int64()), col("name", pa.string(), "varchar(10)", "varchar"), col("n", pa.int32()),
          col("gone", pa.string(), "varchar(5)", "varchar")]
    m1, p1 = batch(lake, v1, [t([(1, "short", 7, "bye")], v1)])
    load(loader, lake, m1, p1)
    # MySQL: `gone` dropped, `extra` added (placed before `name`), name widened, n int -> bigint
    v2 = [col("id", pa.int64()), col("extra", pa.string(), "varchar(3)", "varchar"),
          col("name", pa.string(), "varchar(50)", "varchar"), col("n", pa.int64())]
    m2, p2 = batch(lake, v2, [t([(2, "new", "a name longer than ten", 2**40)], v2)])
    load(loader, lake, m2, p2)
    rows = target.query(f"SELECT id, name, n, gone, extra FROM {target.name('t')} ORDER BY id")
    assert rows == [(1, "short", 7, "bye", None), (2, "a name longer than ten", 2**40, None, "new")]
    types = {r[0]: r[1] for r in target.query(
        "SELECT column_name, data_type FROM information_schema.columns "
        f"WHERE table_schema = '{target.schema}' AND table_name = 't'")}
    assert types["n"].lower() == "bigint"


def test_incompatible_type_change_raises_and_changes_nothing(target, lake, loader):
    v1 = [col("id", pa.int64()), col("code", pa.string(), "varchar(10)", "varchar")]
    m1, p1 = batch(lake, v1, [t([(1, "x")], v1)])
    load(loader, lake, m1, p1)
    v2 = [col("id", pa.int64()), col("code", pa.int32(), "int(11)", "int")]
    m2, p2 = batch(lake, v2, [t([(2, 5)], v2)])
    with pytest.raises(SchemaChangeError) as err:
        load(loader, lake, m2, p2)
    msg = str(err.value)
    assert f"{target.schema}.t" in msg and "'code'" in msg and "MySQL int(11)" in msg
    assert "full_sync" in msg and "drop the target table" in msg
    assert target.query(f"SELECT id, code FROM {target.name('t')}") == [(1, "x")]
    assert [r[0] for r in loads_rows(target)] == [m1.batch_id]


def test_narrowing_is_refused(target, lake, loader):
    v1 = [col("id", pa.int64()), col("n", pa.int64())]
    m1, p1 = batch(lake, v1, [t([(1, 2**40)], v1)])
    load(loader, lake, m1, p1)
    v2 = [col("id", pa.int64()), col("n", pa.int32())]
    m2, p2 = batch(lake, v2, [t([(2, 1)], v2)])
    with pytest.raises(SchemaChangeError, match="'n' is (bigint|BIGINT) but the source now needs (integer|INTEGER)"):
        load(loader, lake, m2, p2)


# ---------------------------------------------------------------- names


def test_names_that_need_quoting(target, lake, loader):
    cols = [col("Mixed Case", pa.int64()), col("select", pa.string()), col("with space", pa.int32()),
            col("日本語 ✓", pa.string()), col("order", pa.bool_())]
    rows = [(1, "s", 2, "値", True), (2, None, None, "", False)]
    m1, p1 = batch(lake, cols, [t(rows, cols)], key=("Mixed Case",))
    load(loader, lake, m1, p1, target_table="Order Items é")
    m2, p2 = batch(lake, cols, [t([(2, "upd", 3, "x", True)], cols)], key=("Mixed Case",))
    load(loader, lake, m2, p2, target_table="Order Items é")
    got = target.query(f'SELECT "Mixed Case", "select", "with space", "日本語 ✓", "order" '
                   f'FROM {target.name("Order Items é")} ORDER BY 1')
    assert got == [(1, "s", 2, "値", True), (2, "upd", 3, "x", True)]


def test_percent_signs_in_names_with_parameters(target, lake, loader):
    """Append passes the batch id as a parameter next to a column called "rate %"."""
    cols = [col("rate %", pa.int32()), col("100% sure?", pa.string())]
    m, p = batch(lake, cols, [t([(5, "y")], cols)], mode="append")
    load(loader, lake, m, p, target_table="t %s")
    assert target.query(f'SELECT "rate %", "100% sure?", "_lakeshift_batch_id" FROM {target.name("t %s")}') == [
        (5, "y", m.batch_id)]


# ---------------------------------------------------------------- lock, history, dry-run safety


def test_lock_serialises_two_loaders(target):
    a, b = target.open(lock_timeout=0.2), target.open(lock_timeout=60)
    try:
        with a.lock("pipe", "t"):
            with pytest.raises(LockBusyError, match="another lakeshift run is loading"):
                with target.open(lock_timeout=0.1).lock("pipe", "t"):
                    pass
            with a.lock("pipe", "other"):  # other tables are independent
                pass
            events: list[str] = []
            held = threading.Event()
            held.set()

            def second() -> None:
                with b.lock("pipe", "t"):
                    events.append("b got it while a held it" if held.is_set() else "b after a")

            th = threading.Thread(target=second)
            th.start()
            th.join(0.3)  # give b the chance to (wrongly) get in; not a timing assertion
            held.clear()
        th.join(60)
        assert events == ["b after a"]
    finally:
        a.close()
        b.close()


def test_run_history_is_recorded_newest_first_and_redacted(target, loader):
    register("hunter2-secret")
    loader.record_run(RunRecord("pipe", "t", "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:05+00:00", "ok",
                                rows_extracted=10, rows_loaded=9, batches=1))
    loader.record_run(RunRecord("pipe", "t", datetime(2026, 1, 2), datetime(2026, 1, 2, 0, 1), "failed",
                                error="connect failed: password=hunter2-secret host=db"))
    runs = loader.last_runs("pipe", "t", 5)
    assert [r.status for r in runs] == ["failed", "ok"]
    assert (runs[1].rows_extracted, runs[1].rows_loaded, runs[1].batches) == (10, 9, 1)
    assert "hunter2-secret" not in runs[0].error and "***" in runs[0].error
    assert runs[0].started_at.isoformat() == "2026-01-02T00:00:00+00:00"
    assert loader.last_runs("pipe", "t", 1)[0].status == "failed"
    assert "hunter2" not in str(target.query(f"SELECT * FROM {target.name('_lakeshift_runs')}"))


def test_reading_state_creates_nothing(target):
    """Dry runs ask for loaded batches; that must not create schema or tables."""
    ld = target.open()
    try:
        assert ld.loaded_batches("pipe", "t") == {}
        assert ld.last_runs("pipe", "t", 3) == []
    finally:
        ld.close()
    assert target.query(f"SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{target.schema}'") == [(0,)]
