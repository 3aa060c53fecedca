"""Delete batches (mode `delete`, keys only) and full_sync with soft deletes,
loaded for real on PostgreSQL and DuckDB: hard deletes remove the keys' rows,
soft deletes mark them in _lakeshift_deleted_at, a key that comes back in a
later merge batch is live again, and the load record counts the rows."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import pyarrow as pa
import pytest
from load_kit import Lake, batch, col, load
from kit.targets import pg_target
from test_load_targets import lake, loader, target  # noqa: F401 - the same fixtures: PostgreSQL and DuckDB

from lakeshift.batch import Manifest
from lakeshift.load.strategies import swap as swapmod

COLS = [col("id", pa.int64()), col("name", pa.string(), "varchar(20)", "varchar"),
        col("updated_at", pa.timestamp("us"))]
D1, D2 = datetime(2026, 1, 1, 0, 0, 0, 1), datetime(2026, 1, 2, 0, 0, 0, 2)


def rows(n_from: int, n_to: int, name: str = "a", ts: datetime = D1) -> dict[str, list[Any]]:
    ids = list(range(n_from, n_to + 1))
    return {"id": ids, "name": [f"{name}{i}" for i in ids], "updated_at": [ts] * len(ids)}


def merge(lake: Lake, loader: Any, data: dict[str, list[Any]]) -> Any:
    m, p = batch(lake, COLS, [data], ts="updated_at")
    return load(loader, lake, m, p)


def delete(lake: Lake, loader: Any, ids: list[int], *, soft: bool) -> tuple[Manifest, Any]:
    m, p = batch(lake, COLS[:1], [{"id": ids}], mode="delete")
    m = dataclasses.replace(m, soft_delete=soft)
    return m, load(loader, lake, m, p)


def table(target: Any, soft: bool = False) -> list[tuple[Any, ...]]:
    extra = ', "_lakeshift_deleted_at" IS NOT NULL' if soft else ""
    return target.query(f"SELECT id, name{extra} FROM {target.name('t')} ORDER BY id")


def record(target: Any, batch_id: str) -> tuple[Any, ...]:
    return target.query(f'SELECT "mode", "rows", "deleted" FROM {target.name("_lakeshift_loads")} '
                    f"WHERE batch_id = '{batch_id}'")[0]


def test_a_delete_batch_removes_its_keys_in_one_transaction_with_its_record(target, lake, loader):
    merge(lake, loader, rows(1, 5))
    m, res = delete(lake, loader, [2, 4, 99], soft=False)  # 99: never loaded, nothing to delete
    assert (res.status, res.rows, res.deleted) == ("loaded", 0, 2)
    assert table(target) == [(1, "a1"), (3, "a3"), (5, "a5")]
    assert record(target, m.batch_id) == ("delete", 0, 2)
    assert loader.loaded_batches("pipe", "t")[m.batch_id].deleted == 2
    columns = [r[0] for r in target.query("SELECT column_name FROM information_schema.columns "
                                      f"WHERE table_schema = '{target.schema}' AND table_name = 't'")]
    assert "_lakeshift_deleted_at" not in columns  # a hard delete adds nothing
    again = load(loader, lake, m, [str(lake.root / f.path) for f in m.files])
    assert again.skipped and table(target) == [(1, "a1"), (3, "a3"), (5, "a5")]


def test_a_soft_delete_marks_rows_and_a_key_that_comes_back_is_live(target, lake, loader):
    merge(lake, loader, rows(1, 4))
    m, res = delete(lake, loader, [2, 3], soft=True)
    assert res.deleted == 2 and record(target, m.batch_id) == ("delete", 0, 2)
    assert table(target, soft=True) == [(1, "a1", False), (2, "a2", True), (3, "a3", True), (4, "a4", False)]
    first = target.query(f'SELECT "_lakeshift_deleted_at" FROM {target.name("t")} WHERE id = 2')[0][0]
    _, res = delete(lake, loader, [2], soft=True)  # found gone again: keeps the time it was first found gone
    assert res.deleted == 0
    assert target.query(f'SELECT "_lakeshift_deleted_at" FROM {target.name("t")} WHERE id = 2')[0][0] == first
    merge(lake, loader, rows(2, 2, name="back", ts=D2))  # the key comes back in MySQL
    assert table(target, soft=True) == [(1, "a1", False), (2, "back2", False), (3, "a3", True), (4, "a4", False)]


def test_a_delete_batch_for_a_table_not_there_makes_nothing(target, lake, loader):
    m, res = delete(lake, loader, [1], soft=True)
    assert (res.status, res.deleted) == ("loaded", 0)
    assert target.query("SELECT count(*) FROM information_schema.tables "
                    f"WHERE table_schema = '{target.schema}' AND table_name = 't'") == [(0,)]


def replace(lake: Lake, loader: Any, data: dict[str, list[Any]]) -> Any:
    m, p = batch(lake, COLS, [data], mode="replace", ts="updated_at")
    m = dataclasses.replace(m, soft_delete=True)
    return load(loader, lake, m, p) if data["id"] else load(loader, lake, dataclasses.replace(m, files=[], rows=0), [])


def test_full_sync_soft_marks_rows_the_snapshot_lacks(target, lake, loader):
    replace(lake, loader, rows(1, 4))
    assert table(target, soft=True) == [(1, "a1", False), (2, "a2", False), (3, "a3", False), (4, "a4", False)]
    res = replace(lake, loader, {"id": [1, 3, 5], "name": ["b1", "b3", "b5"], "updated_at": [D2] * 3})
    assert (res.rows, res.deleted) == (3, 2)
    assert table(target, soft=True) == [(1, "b1", False), (2, "a2", True), (3, "b3", False), (4, "a4", True),
                                        (5, "b5", False)]
    res = replace(lake, loader, {"id": [1, 2], "name": ["c1", "c2"], "updated_at": [D2] * 2})  # 2 comes back
    assert res.deleted == 2  # 3 and 5 gone now; 4 was already
    assert table(target, soft=True) == [(1, "c1", False), (2, "c2", False), (3, "b3", True), (4, "a4", True),
                                        (5, "b5", True)]
    res = replace(lake, loader, {"id": [], "name": [], "updated_at": []})  # an empty snapshot: every row gone
    assert (res.rows, res.deleted) == (0, 2)
    assert [r[2] for r in table(target, soft=True)] == [True] * 5


def test_full_sync_soft_on_postgres_keeps_the_swap(pg_schema, lake):
    target = pg_target(pg_schema)
    loader = target.open()
    try:
        replace(lake, loader, rows(1, 3))
        oid = target.query(f"SELECT to_regclass('{target.name('t')}')::oid")[0][0]
        res = replace(lake, loader, {"id": [1, 2, 2], "name": ["x", "y", "z"], "updated_at": [D1, D1, D2]})
        assert res.deleted == 1  # a repeated key: row by row, the newest wins
        assert table(target, soft=True) == [(1, "x", False), (2, "z", False), (3, "a3", True)]
        assert target.query(f"SELECT to_regclass('{target.name('t')}')::oid")[0][0] == oid
        res = replace(lake, loader, {"id": [2, 4], "name": ["y", "w"], "updated_at": [D2] * 2})
        assert (res.rows, res.deleted) == (2, 1)
        assert target.query(f"SELECT to_regclass('{target.name('t')}')::oid")[0][0] != oid  # swapped in
        assert table(target, soft=True) == [(1, "x", True), (2, "y", False), (3, "a3", True), (4, "w", False)]
        key = target.query(f"SELECT conname FROM pg_constraint WHERE conrelid = to_regclass('{target.name('t')}') "
                       "AND contype = 'p'")
        assert key == [("t_pkey",)]
    finally:
        loader.close()


def test_full_sync_soft_swap_falls_back_with_the_marked_rows(pg_schema, lake, monkeypatch):
    """Readers holding the table: loaded row by row after all, the marked rows stay marked."""
    monkeypatch.setattr(swapmod, "SWAP_LOCK_TIMEOUT", "200ms")
    target = pg_target(pg_schema)
    loader = target.open()
    try:
        replace(lake, loader, rows(1, 3))
        replace(lake, loader, rows(1, 2))
        conn = target.connect()
        try:
            conn.autocommit = False
            conn.execute(f"SELECT * FROM {target.name('t')}")  # holds ACCESS SHARE until it ends
            import threading
            done = threading.Timer(5, conn.rollback)
            done.start()
            res = replace(lake, loader, rows(2, 2))
            done.cancel()
            conn.rollback()
        finally:
            conn.close()
        assert res.deleted == 1
        assert table(target, soft=True) == [(1, "a1", True), (2, "a2", False), (3, "a3", True)]
    finally:
        loader.close()
