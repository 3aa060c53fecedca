"""SCD type 2 end to end (real MariaDB, PostgreSQL, DuckDB, the CLI in a
subprocess): a scripted history over five runs of a hybrid dimension with a
composite business key (one with a NULL part), hard_deletes and a lookback
gives exactly the expected versions; `--dry-run` says it writes a history; a
business_key the table lacks fails in one line; killed at every fault point
in the run that loads a change and a delete, the next runs converge on the
same versions, none duplicated or missing."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest

from kit.cli import assert_one_line_error, killed, ok, run_cli, sync
from kit.config import build_config
from kit.lake import local_storage
from kit.targets import Target, make_target

pytestmark = pytest.mark.slow  # five to seven CLI runs per test

def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


TABLE: dict[str, Any] = {
    "full_name": "customers", "cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at",
    "cdc_id_column": "id", "lookback": "1h", "table_type": "dimension", "scd_type": "type_2",
    "business_key": ["region", "code"], "scd_columns": ["name", "tier"], "hard_deletes": "delete",
    "max_delete_fraction": 0.5,
}
# region, code, name, tier, note, is_current, is_deleted (valid_from/valid_to are checked apart)
EXPECTED = [
    ("eu", "a", "ann", 1, "x", False, False), ("eu", "a", "ann2", 1, "z", True, False),
    ("eu", "b", "bob", 1, "y", False, False), ("eu", "b", "bob", 1, "y", False, True),
    ("eu", "b", "bob4", 1, "y", True, False),
    ("eu", "c", "cat", 1, "x", True, False),
    ("us", None, "nul", 1, "x", False, False), ("us", None, "nul3", 1, "x", False, False),
    ("us", None, "nul", 1, "x", True, False),
]


def sql(mysql: Any, *statements: str) -> None:
    with mysql.cursor() as cur:
        for s in statements:
            cur.execute(s)


class Script:
    """The five runs' source changes. Times are real (UTC, as DATETIME): runs 1-3 change rows in
    the past, runs 4-5 when they run, so the tombstone (the time run 3 found the row gone) falls
    between the change before it and the re-insert after it."""

    def __init__(self) -> None:
        base = now()
        self.t = {10: base - dt.timedelta(hours=3), 11: base - dt.timedelta(hours=2),
                  11.5: base - dt.timedelta(minutes=90), 12: base - dt.timedelta(hours=1)}

    def run(self, mysql: Any, i: int) -> None:
        t = self.t
        if i >= 3:
            time.sleep(1.1)  # after the second in which run 3 found the row gone
            t[10 + i] = now()
        runs = [
            ["CREATE TABLE customers (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, region VARCHAR(8) NOT NULL, "
             "code VARCHAR(8) NULL, name VARCHAR(40), tier INT, note VARCHAR(40), updated_at DATETIME(6) NOT NULL)",
             f"INSERT INTO customers VALUES (1, 'eu', 'a', 'ann', 1, 'x', '{t[10]}'), "
             f"(2, 'eu', 'b', 'bob', 1, 'x', '{t[10]}'), (3, 'us', NULL, 'nul', 1, 'x', '{t[10]}')"],
            # tracked change, untracked change (in place), a no-op update (only the cursor moves)
            [f"UPDATE customers SET name = 'ann2', updated_at = '{t[11]}' WHERE id = 1",
             f"UPDATE customers SET note = 'y', updated_at = '{t[11]}' WHERE id = 2",
             f"UPDATE customers SET updated_at = '{t[11]}' WHERE id = 3"],
            # a delete (found by hard_deletes) and a change of the key with a NULL part
            ["DELETE FROM customers WHERE id = 2",
             f"UPDATE customers SET name = 'nul3', updated_at = '{t[12]}' WHERE id = 3"],
            # the key comes back (a new row), a late row behind the watermark but within the lookback
            [f"INSERT INTO customers VALUES (4, 'eu', 'b', 'bob4', 1, 'y', '{t.get(13)}'), "
             f"(5, 'eu', 'c', 'cat', 1, 'x', '{t[11.5]}')"] if i == 3 else [],
            # in place again; the NULL-part key back to an old value (a new version all the same)
            [f"UPDATE customers SET note = 'z', updated_at = '{t.get(14)}' WHERE id = 1",
             f"UPDATE customers SET name = 'nul', updated_at = '{t.get(14)}' WHERE id = 3"] if i == 4 else [],
        ]
        sql(mysql, *runs[i])


def versions(target: Target) -> list[tuple[Any, ...]]:
    return target.query(
        f'SELECT region, code, name, tier, note, "_lakeshift_is_current", "_lakeshift_is_deleted", '
        f'"_lakeshift_valid_from", "_lakeshift_valid_to" FROM {target.name("customers")} '
        'ORDER BY region, code NULLS FIRST, "_lakeshift_valid_from", "_lakeshift_valid_to" NULLS LAST')


def assert_history(target: Target, script: Script) -> None:
    rows = versions(target)
    assert [r[:7] for r in rows] == EXPECTED, rows
    by_key: dict[Any, list[Any]] = {}
    for r in rows:
        by_key.setdefault((r[0], r[1]), []).append(r)
    for vs in by_key.values():  # contiguous, exactly one current row (the last)
        assert all(a[8] == b[7] for a, b in zip(vs, vs[1:])) and vs[-1][8] is None
        assert [v[5] for v in vs] == [False] * (len(vs) - 1) + [True]
    t = script.t
    assert [r[7] for r in rows if not r[6]] == [t[10], t[11], t[10], t[13], t[11.5], t[10], t[12], t[14]]
    tomb = next(r for r in rows if r[6])[7]
    assert t[12] < tomb <= t[13]  # when the run found the row gone


def setup(mysql: Any, mysql_db: str, target: Target, tmp_path: Path, table: dict[str, Any] = TABLE) -> Path:
    return build_config(tmp_path / "config", mysql_db, target.config, local_storage(tmp_path / "lake"),
                        {"customers": table})


@pytest.mark.parametrize("target_kind", ["postgres"])  # DuckDB: the fault test below runs the same script
def test_five_runs_give_exactly_the_expected_versions(target_kind: str, mysql: Any, mysql_db: str, tmp_path: Path,
                                                      request: pytest.FixtureRequest) -> None:
    target = make_target(target_kind, request, tmp_path)
    config = setup(mysql, mysql_db, target, tmp_path)
    script = Script()
    script.run(mysql, 0)
    dry = ok(sync(config, "p1", ("customers",), "--dry-run"))
    assert "history (SCD2) on business_key region, code" in " ".join(dry.stdout.split())
    for i in range(5):
        if i:
            script.run(mysql, i)
        ok(sync(config, "p1", ("customers",)))
    assert_history(target, script)
    ok(sync(config, "p1", ("customers",)))  # nothing changed: no version
    assert_history(target, script)
    ok(run_cli(config, "verify", "-p", "p1", "-t", "customers", "--deep"))  # the live current versions = MySQL


def test_a_business_key_the_table_lacks_fails_in_one_line(mysql: Any, mysql_db: str, tmp_path: Path,
                                                         request: pytest.FixtureRequest) -> None:
    target = make_target("duckdb", request, tmp_path)
    config = setup(mysql, mysql_db, target, tmp_path, {**TABLE, "business_key": ["region", "cod"]})
    Script().run(mysql, 0)
    result = sync(config, "p1", ("customers",))
    assert_one_line_error(result, "tables.customers.business_key: column 'cod' is not a column of")


FAULTS = ["part_closed", "after_parts", "after_manifest", "after_delete_manifest", "in_load_transaction",
          "after_load_commit"]


def test_killed_at_every_fault_point_the_history_converges(mysql: Any, mysql_db: str, tmp_path: Path,
                                                          request: pytest.FixtureRequest) -> None:
    """Run 3 (a change, then a delete batch) is killed at each fault point in turn, each
    run going one step further: the merge batch's extract and load, then the delete batch's."""
    target = make_target("duckdb", request, tmp_path)
    config = setup(mysql, mysql_db, target, tmp_path)
    script = Script()
    for i in range(5):
        script.run(mysql, i)
        if i == 2:
            for fault in FAULTS:
                killed(sync(config, "p1", ("customers",), fault=fault))
        ok(sync(config, "p1", ("customers",)))
    assert_history(target, script)
