"""SCD type 2 history (scd_type: type_2) loaded for real on PostgreSQL and
DuckDB: a scripted history over five runs (tracked change, untracked change,
no-op update, delete, re-insert, a composite key with a NULL part, two changes
of one key in one batch, a late row re-read by the lookback) gives exactly the
expected versions, contiguous per key, one current row per live key; binlog
changes keep every intermediate version; a snapshot's missing key is a
tombstone; the max_delete_fraction guard refuses and --force-deletes passes; a
batch loaded twice writes nothing twice."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import pyarrow as pa
import pytest
from load_kit import Lake, batch, col, load
from test_load_targets import lake, loader, target  # noqa: F401 - the same fixtures: PostgreSQL and DuckDB

from lakeshift.batch import History, change_columns
from lakeshift.errors import DeletesRefused

COLS = [col("id", pa.int64()), col("region", pa.string(), "varchar(8)", "varchar"),
        col("code", pa.string(), "varchar(8)", "varchar"), col("name", pa.string(), "varchar(20)", "varchar"),
        col("tier", pa.int32()), col("note", pa.string(), "varchar(20)", "varchar"),
        col("updated_at", pa.timestamp("us"))]
HIST = History(("region", "code"), ("name", "tier"))


def t(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, 1, hour, minute)


def data(*rows: tuple[Any, ...]) -> dict[str, list[Any]]:
    return {c.name: [r[i] for r in rows] for i, c in enumerate(COLS)}


def run(lake: Lake, loader: Any, rows: list[tuple[Any, ...]], at: datetime, *, mode: str = "merge",
        hist: History = HIST, columns: list[Any] = COLS, **kw: Any) -> Any:
    payload = data(*rows) if columns is COLS else {c.name: [r[i] for r in rows] for i, c in enumerate(columns)}
    m, p = batch(lake, columns, [payload], mode=mode, ts="updated_at" if mode == "merge" else None, **kw)
    m = dataclasses.replace(m, history=hist, created_at=at.isoformat() + "+00:00",
                            strategy="full_sync" if mode == "replace" else m.strategy)
    return load(loader, lake, m, p), m, p


def versions(target: Any) -> list[tuple[Any, ...]]:
    return target.query(
        f'SELECT region, code, name, tier, note, "_lakeshift_valid_from", "_lakeshift_valid_to", '
        f'"_lakeshift_is_current", "_lakeshift_is_deleted" FROM {target.name("t")} '
        f'ORDER BY region, code NULLS FIRST, "_lakeshift_valid_from", "_lakeshift_valid_to" NULLS LAST')


def assert_contiguous(rows: list[tuple[Any, ...]]) -> None:
    """Per key: each version ends where the next starts; exactly the last one is current."""
    by_key: dict[tuple[Any, Any], list[tuple[Any, ...]]] = {}
    for r in rows:
        by_key.setdefault((r[0], r[1]), []).append(r)
    for key, vs in by_key.items():
        for a, b in zip(vs, vs[1:]):
            assert a[6] == b[5] and not a[7], (key, a, b)
        assert vs[-1][6] is None and vs[-1][7], (key, vs[-1])


def test_a_scripted_history_gives_exactly_the_expected_versions(target, lake, loader):
    # run 1: three keys, one with a NULL part in its composite key
    run(lake, loader, [(1, "eu", "a", "ann", 1, "x", t(10)), (2, "eu", "b", "bob", 1, "x", t(10)),
                       (3, "us", None, "nul", 1, "x", t(10))], t(10, 5))
    # run 2: A changes twice in the batch at the same time (the batch's order decides), B only in an
    # untracked column (in place), the NULL-part key is updated with no tracked change (no version)
    run(lake, loader, [(1, "eu", "a", "ann2", 1, "x", t(11)), (2, "eu", "b", "bob", 1, "y", t(11)),
                       (1, "eu", "a", "ann2", 2, "x", t(11)), (3, "us", None, "nul", 1, "x", t(11))], t(11, 5))
    # run 3: B deleted in the source (a delete batch of its id), the NULL-part key changes
    run(lake, loader, [(3, "us", None, "nul3", 1, "x", t(12))], t(12, 5))
    res, _, _ = run(lake, loader, [(2,)], t(12, 6), mode="delete", columns=COLS[:1],
                    hist=dataclasses.replace(HIST, force_deletes=True))
    assert res.deleted == 1
    # run 4: B comes back; the lookback reads A again unchanged and a late row of a new key C (11:30)
    run(lake, loader, [(2, "eu", "b", "bob4", 1, "y", t(13)), (1, "eu", "a", "ann2", 2, "x", t(11)),
                       (4, "eu", "c", "cat", 1, "x", t(11, 30))], t(13, 5))
    # run 5: A in place again, the NULL-part key back to an older value (a new version)
    run(lake, loader, [(1, "eu", "a", "ann2", 2, "z", t(14)), (3, "us", None, "nul", 1, "x", t(14))], t(14, 5))

    rows = versions(target)
    assert rows == [
        ("eu", "a", "ann", 1, "x", t(10), t(11), False, False),
        ("eu", "a", "ann2", 1, "x", t(11), t(11), False, False),  # the first of two changes at 11:00
        ("eu", "a", "ann2", 2, "z", t(11), None, True, False),  # updated in place at 14:00
        ("eu", "b", "bob", 1, "y", t(10), t(12, 6), False, False),  # note y in place at 11:00
        ("eu", "b", "bob", 1, "y", t(12, 6), t(13), False, True),  # the tombstone
        ("eu", "b", "bob4", 1, "y", t(13), None, True, False),
        ("eu", "c", "cat", 1, "x", t(11, 30), None, True, False),
        ("us", None, "nul", 1, "x", t(10), t(12), False, False),
        ("us", None, "nul3", 1, "x", t(12), t(14), False, False),
        ("us", None, "nul", 1, "x", t(14), None, True, False),
    ]
    assert_contiguous(rows)


def test_a_batch_loaded_again_writes_nothing_twice(target, lake, loader):
    run(lake, loader, [(1, "eu", "a", "ann", 1, "x", t(10))], t(10))
    res, m, p = run(lake, loader, [(1, "eu", "a", "ann2", 1, "x", t(11))], t(11))
    assert (res.status, res.rows) == ("loaded", 1)
    assert load(loader, lake, m, p).status == "skipped"  # its load record, in the same transaction
    assert len(versions(target)) == 2


def test_binlog_changes_keep_every_version_in_log_order(target, lake, loader):
    cols = COLS + change_columns()

    def change(i: int, name: str, op: str, seq: int, ts: datetime) -> tuple[Any, ...]:
        return (i, "eu", "a", name, 1, "x", ts, op, seq, ts)

    snap = [(1, "eu", "a", "ann", 1, "x", t(9), None, None, None)]
    run(lake, loader, snap, t(9), mode="replace", columns=cols)
    # three changes committed in one second, then a delete and an insert of the key: the log's order
    # decides; a commit time behind the one before (a clock step) never starts a version earlier
    changes = [change(1, "b", "update", 1, t(10)), change(1, "c", "update", 2, t(10)),
               change(1, "c", "delete", 3, t(10)), change(1, "d", "insert", 4, t(9, 59))]
    run(lake, loader, changes, t(10, 5), mode="changes", columns=cols,
        hist=dataclasses.replace(HIST, force_deletes=True))
    assert sorted((r[2:] for r in versions(target)), key=repr) == sorted([
        ("ann", 1, "x", t(9), t(10), False, False),
        ("b", 1, "x", t(10), t(10), False, False),
        ("c", 1, "x", t(10), t(10), False, False),
        ("c", 1, "x", t(10), t(10), False, True),
        ("d", 1, "x", t(10), None, True, False),
    ], key=repr)


def test_a_snapshot_missing_a_key_writes_a_tombstone_within_the_guard(target, lake, loader):
    keys = [(i, "eu", f"k{i}", "n", 1, "x", t(10)) for i in range(20)]
    run(lake, loader, keys, t(10), mode="replace")
    with pytest.raises(DeletesRefused, match=r"tables\.t: .* would close 3 of the 20 current"):
        run(lake, loader, keys[3:], t(11), mode="replace")
    assert len(versions(target)) == 20  # nothing written
    res, _, _ = run(lake, loader, keys[2:], t(12), mode="replace")  # 2 of 20: within 10%
    assert res.deleted == 2
    res, _, _ = run(lake, loader, keys[3:], t(13), mode="replace",
                    hist=dataclasses.replace(HIST, force_deletes=True))
    rows = versions(target)
    assert len(rows) == 23 and sum(1 for r in rows if r[7]) == 20
    assert [r for r in rows if r[8]] == [("eu", "k0", "n", 1, "x", t(12), None, True, True),
                                         ("eu", "k1", "n", 1, "x", t(12), None, True, True),
                                         ("eu", "k2", "n", 1, "x", t(13), None, True, True)]
    assert_contiguous(rows)


@pytest.mark.parametrize(("mode", "facts", "expected"), [
    ("merge", {"exists": True}, "WriteHistory"), ("changes", {"exists": False}, "WriteHistory"),
    ("append", {"exists": True}, "WriteHistory"), ("delete", {"exists": True}, "WriteHistory"),
    ("delete", {"exists": False}, "NoRows"), ("merge", {"exists": True, "staged": False}, "NoRows"),
    ("replace", {"exists": True, "staged": False}, "WriteHistory"),  # an empty snapshot: every key gone
    ("replace", {"exists": False, "staged": False}, "NoRows"),
])
def test_every_mode_of_a_history_table_is_written_as_versions(mode: str, facts: dict[str, Any], expected: str):
    from lakeshift.load.strategies import TableFacts, plan_move

    assert type(plan_move(mode, TableFacts(history=True, **facts))).__name__ == expected
