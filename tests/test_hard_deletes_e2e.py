"""hard_deletes end to end (real MariaDB, PostgreSQL, DuckDB, the CLI in a
subprocess): rows deleted in MySQL leave the target (delete) or are marked in
_lakeshift_deleted_at (soft) by the same run that loads the inserts and
updates; the max_delete_fraction guard refuses a large delete in one line
naming the table and the count, and --force-deletes lets it through; a run
killed while a delete batch is written or loaded converges on the next run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import mysql_connect
from kit.config import build_config
from kit.lake import local_storage
from kit.source import source_rows
from kit.checks import assert_loaded_once
from kit.cli import error_lines, killed, ok, summary, sync
from kit.lake import manifest_ids, table_lake
from kit.source import HYBRID, ITEMS, change_items, create_items, insert_items
from kit.targets import Target, make_target

pytestmark = pytest.mark.slow  # every test runs the CLI in several subprocesses (20-75 s each)

STRATEGIES = {
    "hybrid": HYBRID,
    "timestamp_only": {"cdc_strategy": "timestamp_only", "cdc_timestamp_column": "updated_at"},
    "id_only": {"cdc_strategy": "id_only", "cdc_id_column": "id"},
}


def delete_ids(mysql: Any, ids: list[int]) -> None:
    with mysql.cursor() as cur:
        cur.execute(f"DELETE FROM items WHERE id IN ({', '.join(map(str, ids))})")


def setup(mysql: Any, mysql_db: str, target: Target, storage: dict[str, Any], tmp_path: Path, table: dict[str, Any],
          rows: int = 200) -> Path:
    create_items(mysql, rows)
    return build_config(tmp_path / "config", mysql_db, target.config, storage, {"items": table})


def live(target: Target, soft: bool) -> list[tuple[Any, ...]]:
    if not soft:
        return target.rows()
    cols = ", ".join(f'"{c}"' for c in ITEMS)
    from kit.source import norm
    return [tuple(norm(v) for v in r) for r in target.query(
        f'SELECT {cols} FROM {target.name("items")} WHERE "_lakeshift_deleted_at" IS NULL ORDER BY id')]


def marked(target: Target) -> list[int]:
    return [int(r[0]) for r in target.query(
        f'SELECT id FROM {target.name("items")} WHERE "_lakeshift_deleted_at" IS NOT NULL ORDER BY id')]


def deleted_cell(output: str) -> int:
    for line in output.splitlines():
        cells = [c.strip() for c in line.replace("│", "|").split("|") if c.strip()]
        if len(cells) >= 5 and cells[0] == "items":
            return int(cells[4].replace(",", ""))
    raise AssertionError(output)


@pytest.mark.parametrize("mode", ["delete", "soft"])
@pytest.mark.parametrize("strategy", list(STRATEGIES))
@pytest.mark.parametrize("target_kind", ["postgres", "duckdb"])
def test_deletes_inserts_and_updates_in_one_run_target_equals_source(strategy: str, mode: str, target_kind: str,
                                                                     mysql: Any, mysql_db: str, tmp_path: Path,
                                                                     request: pytest.FixtureRequest) -> None:
    target = make_target(target_kind, request, tmp_path)
    config = setup(mysql, mysql_db, target, local_storage(tmp_path / "lake"), tmp_path,
                   {**STRATEGIES[strategy], "hard_deletes": mode})
    ok(sync(config))
    # id_only reads new ids only (an update is never read, by design): deletes and inserts
    if strategy == "id_only":
        insert_items(mysql, 20, name="round 1")
    else:
        change_items(mysql, 1, inserts=20, updates=(3, 4, 100))
    delete_ids(mysql, [1, 2, 4, 50, 199])  # 4 was just updated
    result = ok(sync(config))
    assert deleted_cell(result.stdout) == 5
    soft = mode == "soft"
    assert live(target, soft) == source_rows(mysql_db, "items", ITEMS, "id")
    if soft:
        assert marked(target) == [1, 2, 4, 50, 199]
    # a deleted key that comes back is live again (id_only: its cursor never reads an id at or below the
    # watermark again; the key comparison finds it and reads it again); a second delete of the same keys
    # deletes nothing more
    with mysql.cursor() as cur:
        cur.execute("INSERT INTO items (id, name, amount, updated_at) "
                    "VALUES (50, 'back', 1.00, '2026-03-09 00:00:00')")
    delete_ids(mysql, [10])
    result = ok(sync(config))
    assert deleted_cell(result.stdout) == 1
    assert live(target, soft) == source_rows(mysql_db, "items", ITEMS, "id")
    if soft:
        assert marked(target) == [1, 2, 4, 10, 199]
    runs = target.query(f'SELECT "rows_deleted" FROM {target.name("_lakeshift_runs")} ORDER BY "started_at"')
    assert [int(r[0]) for r in runs] == [0, 5, 1]
    loads = target.query(f'SELECT "mode", "deleted" FROM {target.name("_lakeshift_loads")} '
                         "WHERE \"mode\" = 'delete' ORDER BY \"batch_id\"")
    assert [(m, int(d)) for m, d in loads] == [("delete", 5), ("delete", 1)]


@pytest.mark.parametrize("target_kind", ["postgres", "duckdb"])
def test_the_guard_refuses_half_the_table_and_force_deletes_applies_it(target_kind: str, mysql: Any, mysql_db: str,
                                                                      tmp_path: Path,
                                                                      request: pytest.FixtureRequest) -> None:
    target = make_target(target_kind, request, tmp_path)
    storage = local_storage(tmp_path / "lake")
    config = setup(mysql, mysql_db, target, storage, tmp_path, {**HYBRID, "hard_deletes": "delete"}, rows=100)
    ok(sync(config))
    delete_ids(mysql, list(range(1, 51)))
    before = manifest_ids(storage)
    refused = sync(config)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    line = error_lines(refused.stderr)
    assert len(line) == 1 and "tables.items: 50 row(s) are gone from MySQL, 50% of the 100" in line[0], line
    assert "--force-deletes" in line[0] and "max_delete_fraction 0.1" in line[0]
    assert len(target.rows()) == 100 and manifest_ids(storage) == before  # nothing deleted, no delete batch
    dry = ok(sync(config, "p1", ("items",), "--force-deletes", "--dry-run"))
    assert "deletes: detected after the load by a key-only comparison" in dry.stdout
    forced = ok(sync(config, "p1", ("items",), "--force-deletes"))
    assert deleted_cell(forced.stdout) == 50
    assert target.rows() == source_rows(mysql_db, "items", ITEMS, "id")
    assert_loaded_once(target, storage)


@pytest.mark.parametrize("target_kind", ["postgres", "duckdb"])
def test_full_sync_soft_marks_rows_the_snapshot_lacks(target_kind: str, mysql: Any, mysql_db: str, tmp_path: Path,
                                                      request: pytest.FixtureRequest) -> None:
    target = make_target(target_kind, request, tmp_path)
    config = setup(mysql, mysql_db, target, local_storage(tmp_path / "lake"), tmp_path,
                   {"cdc_strategy": "full_sync", "hard_deletes": "soft"}, rows=60)
    ok(sync(config))
    delete_ids(mysql, [7, 8])
    change_items(mysql, 1, inserts=5, updates=(9,))
    result = ok(sync(config))
    assert deleted_cell(result.stdout) == 2
    assert live(target, True) == source_rows(mysql_db, "items", ITEMS, "id") and marked(target) == [7, 8]
    # the guard: a snapshot lacking half the live rows is refused (one line, nothing marked or loaded)
    before = target.query(f'SELECT count(*) FROM {target.name("items")} WHERE "_lakeshift_deleted_at" IS NULL')
    delete_ids(mysql, list(range(20, 52)))
    refused = sync(config)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    line = error_lines(refused.stderr)
    assert len(line) == 1 and "tables.items: 32 row(s) of the target are not in the new snapshot" in line[0], line
    assert "51% of the 63 live row(s)" in line[0] and "--force-deletes" in line[0], line
    assert int(before[0][0]) == 63 and marked(target) == [7, 8]
    assert "max_delete_fraction" in ok(sync(config, "p1", ("items",), "--dry-run")).stdout
    forced = ok(sync(config, "p1", ("items",), "--force-deletes"))
    assert deleted_cell(forced.stdout) == 32
    assert live(target, True) == source_rows(mysql_db, "items", ITEMS, "id")
    assert marked(target) == [7, 8] + list(range(20, 52))


def test_a_delete_batch_in_the_s3_lake_is_listed_and_replayed_by_load_only(mysql: Any, mysql_db: str, tmp_path: Path,
                                                                         s3_storage: dict[str, Any],
                                                                         request: pytest.FixtureRequest) -> None:
    """Killed right after the delete batch's manifest: the lake holds it (pending, listed by
    `batches list`, kept by `s3clean` until loaded), and `--load-only` loads it; nothing is lost
    or doubled, and cleaning it afterwards leaves the watermark alone."""
    target = make_target("postgres", request, tmp_path)
    config = setup(mysql, mysql_db, target, s3_storage, tmp_path, {**HYBRID, "hard_deletes": "delete"}, rows=50)
    ok(sync(config))
    delete_ids(mysql, [3, 5])
    killed(sync(config, fault="after_delete_manifest"))
    tl = table_lake(s3_storage)
    newest = tl.read_manifest(tl.manifest_ids()[-1])
    assert newest.mode == "delete" and newest.rows == 2
    listed = ok(sync(config, "p1", ("items",), "--load-only", "--dry-run"))
    assert newest.batch_id in listed.stdout
    from kit.cli import run_cli
    batches = run_cli(config, "batches", "list", "-p", "p1", "-t", "items")
    assert newest.batch_id in batches.stdout and "pending" in batches.stdout, batches.stdout + batches.stderr
    kept = run_cli(config, "s3clean", "clean", "-p", "p1", "-t", "items", "--keep-last", "0")  # the loaded batch goes, the delete stays
    assert "kept 1 pending batch(es)" in kept.stdout, kept.stdout + kept.stderr
    assert tl.manifest_ids() == [newest.batch_id]
    ok(sync(config, "p1", ("items",), "--load-only"))
    assert target.rows() == source_rows(mysql_db, "items", ITEMS, "id")
    assert [b for b, _ in target.loads()][-1] == newest.batch_id
    run_cli(config, "s3clean", "clean", "-p", "p1", "-t", "items", "--keep-last", "0")
    assert tl.manifest_ids() == [] and tl.effective_watermark()[0] is not None  # the watermark stays


@pytest.mark.parametrize("mode", ["delete", "soft"])
@pytest.mark.parametrize("fault", ["after_delete_manifest", "in_load_transaction", "after_load_commit"])
@pytest.mark.parametrize("target_kind", ["postgres", "duckdb"])
def test_killed_during_a_delete_batch_the_next_run_converges(fault: str, mode: str, target_kind: str, mysql: Any,
                                                            mysql_db: str, tmp_path: Path,
                                                            request: pytest.FixtureRequest) -> None:
    target = make_target(target_kind, request, tmp_path)
    storage = local_storage(tmp_path / "lake")
    config = setup(mysql, mysql_db, target, storage, tmp_path, {**HYBRID, "hard_deletes": mode}, rows=80)
    ok(sync(config))
    delete_ids(mysql, [2, 3, 40])  # no insert or update: the first load transaction is the delete batch's
    killed(sync(config, fault=fault))
    assert manifest_ids(storage)[-1] > manifest_ids(storage)[0]  # the delete batch is in the lake
    change_items(mysql, 1, inserts=10)
    delete_ids(mysql, [41])
    ok(sync(config))
    soft = mode == "soft"
    assert live(target, soft) == source_rows(mysql_db, "items", ITEMS, "id")
    if soft:
        assert marked(target) == [2, 3, 40, 41]
    assert_loaded_once(target, storage)
    again = ok(sync(config))
    assert summary(again.stdout)[1:] == (0, 0) and deleted_cell(again.stdout) == 0
    assert live(target, soft) == source_rows(mysql_db, "items", ITEMS, "id")
