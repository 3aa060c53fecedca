"""cdc_strategy: binlog against a throwaway MariaDB with a row-based binary log
(one server for the module): snapshot + hand-off, inserts/updates/deletes and
key changes across transactions and across two tables, applied in PostgreSQL
and DuckDB; a purged binlog (fail, then resnapshot); an event the reader does
not understand (a compressed binlog) fails the run; kills at every fault point
converge."""

from __future__ import annotations

import signal
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute
import pyarrow.parquet as pq
import pytest

from binlog_kit import (binlog_config, binlog_files, binlog_server, execute, new_database, rows, transaction)
from kit.cli import run_cli, running, start_sync
from kit.config import set_pipeline
from kit.source import norm
from kit.targets import Target, duck_target, pg_target

from lakeshift import faults

pytestmark = pytest.mark.slow

ITEMS_DDL = ("CREATE TABLE items (id INT NOT NULL PRIMARY KEY, name VARCHAR(40) NOT NULL, "
             "amount DECIMAL(12,2) NULL, at TIMESTAMP(6) NULL DEFAULT NULL) CHARACTER SET utf8mb4")
ORDERS_DDL = ("CREATE TABLE orders (tenant VARCHAR(8) NOT NULL, no INT NOT NULL, item INT NOT NULL, "
              "qty SMALLINT UNSIGNED NOT NULL, PRIMARY KEY (tenant, no))")
ITEM_COLS = ["id", "name", "amount", "at"]
ORDER_COLS = ["tenant", "no", "item", "qty"]
BINLOG = {"cdc_strategy": "binlog"}


@pytest.fixture(scope="module")
def server() -> Any:
    s = binlog_server()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def db(server: Any) -> str:
    name = new_database(server)
    execute(server, name, ITEMS_DDL, ORDERS_DDL,
            "INSERT INTO items VALUES (1, 'one', 1.50, '2026-03-29 01:30:00.123456'), (2, 'two', NULL, NULL), "
            "(3, 'three', 3.00, '2026-10-25 00:59:59.999999')",
            "INSERT INTO orders VALUES ('a', 1, 1, 5), ('a', 2, 2, 65535), ('b', 1, 3, 0)")
    return name


@pytest.fixture(params=["postgres", "duckdb"])
def target(request: pytest.FixtureRequest, pg: Any, tmp_path: Path) -> Any:
    if request.param == "duckdb":
        yield duck_target(tmp_path / "t.duckdb")
        return
    schema = f"ls_binlog_{tmp_path.name[-12:].lower().replace('-', '_')}"
    yield pg_target(schema)
    pg.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def sync(config: Path, *extra: str, env: dict[str, str] | None = None) -> Any:
    return run_cli(config, "sync", "pipeline", "-p", "p1", "--all", *extra, env=env)


def assert_same(server: Any, db: str, t: Target) -> None:
    assert t.rows("items", ITEM_COLS) == [tuple(norm(v) for v in r) for r in rows(server, db, "items",
                                                                                    ", ".join(ITEM_COLS))]
    assert t.rows("orders", ORDER_COLS, "tenant, no") == [tuple(norm(v) for v in r) for r in rows(
        server, db, "orders", ", ".join(ORDER_COLS))]


def round_of_changes(server: Any, db: str, n: int) -> None:
    """Inserts, updates, deletes, a key change, a row born and gone in one transaction,
    and a transaction that spans both tables."""
    base = 100 * n
    transaction(server, db, [f"INSERT INTO items VALUES ({base + 1}, 'new {n}', {n}.25, NOW(6))",
                             f"UPDATE items SET name = 'changed {n}', amount = NULL WHERE id = 2",
                             f"UPDATE items SET name = 'changed again {n}' WHERE id = 2"])
    transaction(server, db, [f"UPDATE items SET id = {base + 50} WHERE id = 3" if n == 1 else
                             f"UPDATE items SET id = {base + 50} WHERE id = {base - 50}",
                             f"INSERT INTO items VALUES ({base + 2}, 'short-lived', NULL, NULL)",
                             f"DELETE FROM items WHERE id = {base + 2}"])
    transaction(server, db, [f"INSERT INTO orders VALUES ('c', {n}, {base + 1}, {n})",
                             "UPDATE orders SET qty = qty + 1 WHERE tenant = 'a' AND no = 1",
                             f"UPDATE orders SET tenant = 'z{n}' WHERE tenant = 'b'" if n == 1 else
                             f"UPDATE orders SET tenant = 'z{n}' WHERE tenant = 'z{n - 1}'",
                             f"UPDATE items SET amount = {n} WHERE id = 1"])
    execute(server, db, f"DELETE FROM items WHERE id = {base + 1}" if n > 1 else "DELETE FROM items WHERE id = 999")


def test_snapshot_then_changes_converge(server: Any, db: str, target: Target, tmp_path: Path) -> None:
    config = binlog_config(tmp_path, server, db, target.config, {"items": BINLOG, "orders": BINLOG})
    first = sync(config)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "snapshot at binlog position mysql-bin." in first.stdout
    assert_same(server, db, target)
    for n in (1, 2):
        round_of_changes(server, db, n)
        run = sync(config)
        assert run.returncode == 0, run.stdout + run.stderr
        assert_same(server, db, target)
    ops = dict(target.query(f'SELECT "id", "_lakeshift_op" FROM {target.name("items")}'))
    assert ops[1] == "update" and ops[250] == "update"
    modes = [r[0] for r in target.query(f'SELECT "mode" FROM {target.name("_lakeshift_loads")} '
                                        "WHERE \"table_name\" = 'items' ORDER BY \"batch_id\"")]
    assert modes == ["replace", "changes", "changes"]
    idle = sync(config)
    assert idle.returncode == 0 and "no new changes" in idle.stdout
    shown = run_cli(config, "watermark", "get", "-p", "p1", "-t", "items")
    assert "Extract watermark: binlog mysql-bin.0000" in shown.stdout, shown.stdout
    dry = run_cli(config, "sync", "pipeline", "-p", "p1", "-t", "items", "--dry-run", env={"COLUMNS": "400"})
    assert dry.returncode == 0 and "changes from binlog mysql-bin.0000" in dry.stdout, dry.stdout + dry.stderr
    assert "(none committed since)" in dry.stdout and "apply changes on key id" in dry.stdout


def test_purged_binlog_fails_then_resnapshots(server: Any, db: str, pg: Any, tmp_path: Path) -> None:
    t = pg_target(f"ls_binlog_purge_{tmp_path.name[-8:].lower().replace('-', '_')}")
    try:
        config = binlog_config(tmp_path, server, db, t.config, {"items": BINLOG, "orders": BINLOG})
        assert sync(config).returncode == 0
        execute(server, db, "FLUSH BINARY LOGS", "INSERT INTO items VALUES (7, 'seven', 7, NULL)",
                "DELETE FROM items WHERE id = 1", "FLUSH BINARY LOGS")
        execute(server, db, f"PURGE BINARY LOGS TO '{binlog_files(server)[-1]}'")
        failed = sync(config)
        assert failed.returncode != 0
        line = next(x for x in failed.stderr.splitlines() if x.startswith("Error:"))
        assert "is lost: binlog file mysql-bin." in line and "was purged" in line
        assert "`lakeshift watermark reset -p p1 -t items`" in line and "on_position_lost: resnapshot" in line
        assert t.rows("items", ["id"]) == [(1,), (2,), (3,)]  # nothing changed
        set_pipeline(config, "binlog", {"on_position_lost": "resnapshot"})
        again = sync(config)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "lost" in again.stdout and "new snapshot" in again.stdout
        assert_same(server, db, t)
    finally:
        pg.execute(f'DROP SCHEMA IF EXISTS "{t.schema}" CASCADE')


def test_an_event_the_reader_does_not_understand_fails_the_run(server: Any, db: str, tmp_path: Path) -> None:
    """MariaDB's compressed row events are dropped by the library as unknown: the
    reader stops instead. Compression on while a change is written, off again
    before the run (so the precondition check passes and the reader meets it)."""
    t = duck_target(tmp_path / "t.duckdb")
    config = binlog_config(tmp_path, server, db, t.config, {"items": BINLOG})
    assert sync(config).returncode == 0
    execute(server, db, "SET GLOBAL log_bin_compress = ON", "SET GLOBAL log_bin_compress_min_len = 10")
    try:
        execute(server, db, "INSERT INTO items VALUES (8, REPEAT('x', 40), 8, NULL)",
                "UPDATE items SET name = REPEAT('y', 40) WHERE id < 4")
    finally:
        execute(server, db, "SET GLOBAL log_bin_compress = OFF")
    failed = sync(config)
    assert failed.returncode != 0
    assert "is not understood by binlog CDC" in failed.stderr and "log_bin_compress" in failed.stderr
    assert t.rows("items", ["id"]) == [(1,), (2,), (3,)]


# every point a sync passes (the delete and repair batches are hard_deletes' and verify's)
SYNC_POINTS = [p for p in faults.POINTS if p not in ("after_delete_manifest", "after_repair_manifest")]


@pytest.mark.parametrize("point", SYNC_POINTS)
def test_a_kill_at_every_fault_point_converges(server: Any, db: str, point: str, tmp_path: Path) -> None:
    t = duck_target(tmp_path / "t.duckdb")
    config = binlog_config(tmp_path, server, db, t.config, {"items": BINLOG, "orders": BINLOG})
    assert sync(config).returncode == 0
    round_of_changes(server, db, 1)
    killed = sync(config, env={"LAKESHIFT_FAULT": point})
    assert killed.returncode == -9, killed.stdout + killed.stderr
    round_of_changes(server, db, 2)
    after = sync(config)
    assert after.returncode == 0, after.stdout + after.stderr
    assert_same(server, db, t)
    loads = t.query(f'SELECT "table_name", "batch_id", COUNT(*) FROM {t.name("_lakeshift_loads")} GROUP BY 1, 2')
    assert all(r[2] == 1 for r in loads)


def lake_batches(root: Path, table: str) -> list[tuple[Any, pa.Table]]:
    """(manifest, rows) of every batch of `table` in the test's local lake, oldest first."""
    from lakeshift.config.models import LocalStorage
    from lakeshift.lake import Lake, TableLake

    lake = Lake.from_config(LocalStorage(type="local", path=str(root / "lake")))
    tl = TableLake(lake, "p1", table)
    out = []
    for m in tl.manifests():
        parts = [pq.read_table(lake.full_path(tl.rel(f.path))) for f in m.files]
        out.append((m, pa.concat_tables(parts) if parts else None))
    return out


def test_hostile_values_decode_from_the_binlog_exactly_as_the_snapshot_reads_them(
        server: Any, db: str, tmp_path: Path) -> None:
    """Every value of the type suite's hostile table (tests/test_types_e2e.py), written
    by INSERT (after images), moved by a key UPDATE (before and after images), then read
    again by a new snapshot: the lake holds the same values, of the same Arrow types."""
    from test_types_e2e import COLUMNS, DDL, NUL_ROW, ROWS, insert_rows

    execute(server, db, DDL)
    config = binlog_config(tmp_path, server, db, duck_target(tmp_path / "t.duckdb").config,
                           {"hostile": {**BINLOG, "tinyint1_as_boolean": False}})
    assert sync(config, "--backup-only").returncode == 0
    with server.connect(database=db) as conn:
        insert_rows(conn, [*ROWS, NUL_ROW])
    assert sync(config, "--backup-only").returncode == 0
    execute(server, db, "UPDATE hostile SET id = id + 100")
    assert sync(config, "--backup-only").returncode == 0
    reset = run_cli(config, "watermark", "reset", "-p", "p1", "-t", "hostile", "-y")
    assert reset.returncode == 0, reset.stderr
    run = sync(config, "--backup-only")
    assert run.returncode == 0, run.stdout + run.stderr
    (_, empty), (m1, inserts), (m2, moved), (m3, snapshot) = lake_batches(tmp_path, "hostile")
    assert (m1.mode, m2.mode, m3.mode) == ("changes", "changes", "replace") and empty is None
    assert inserts.select(COLUMNS).schema == snapshot.select(COLUMNS).schema  # the same Arrow types
    assert inserts.column("_lakeshift_op").to_pylist() == ["insert"] * 6
    assert moved.column("_lakeshift_op").to_pylist() == ["delete", "update"] * 6
    assert moved.column("_lakeshift_seq").to_pylist() == list(range(6, 18))  # total order across batches

    def image(t: pa.Table, op: str | None = None) -> list[dict[str, Any]]:
        if op is not None:
            t = t.filter(pa.compute.equal(t.column("_lakeshift_op"), op))
        return t.select([c for c in COLUMNS if c != "id"]).to_pylist()

    want = image(snapshot.sort_by("id"))
    assert len(want) == 6 and {"-00:00:01.500000", "838:59:59.000000"} <= {r["tm"] for r in want}
    assert image(inserts.sort_by("id")) == want
    assert image(moved, "delete") == want and image(moved, "update") == want
    assert [r + 100 for r in inserts.column("id").to_pylist()] == snapshot.column("id").to_pylist()


@pytest.mark.parametrize("statement", ["SET SESSION binlog_format = 'STATEMENT'; UPDATE {db}.items SET name = 's'",
                                       "TRUNCATE TABLE items"])
def test_a_statement_on_the_table_outside_row_events_stops_it(server: Any, db: str, tmp_path: Path,
                                                              statement: str) -> None:
    """A statement-logged change (issued from another default schema, qualified) and TRUNCATE
    (without hard_deletes) leave no row events: the run stops with the way out instead of missing
    them; same-named tables elsewhere do not count."""
    t = duck_target(tmp_path / "t.duckdb")
    config = binlog_config(tmp_path, server, db, t.config, {"items": BINLOG})
    assert sync(config).returncode == 0
    other = new_database(server)
    execute(server, other, ITEMS_DDL, "ALTER TABLE items ADD COLUMN unrelated INT", "TRUNCATE TABLE items")
    execute(server, db, "UPDATE items SET name = 'before' WHERE id = 1")
    assert sync(config).returncode == 0 and t.rows("items", ["name"])[0] == ("before",)
    execute(server, other if "{db}" in statement else db, *statement.format(db=db).split("; "))
    failed = sync(config)
    assert failed.returncode != 0
    line = next(x for x in failed.stderr.splitlines() if x.startswith("Error:"))
    assert "a statement changed the table outside the row events" in line
    assert "`lakeshift watermark reset` for this table" in line


def test_schema_changes_mid_stream_follow_schema_evolution(server: Any, db: str, tmp_path: Path) -> None:
    """A widening and a dropped column are applied at their point in the stream (changes before
    them take the new shape); an added column takes a new snapshot (existing rows need its values);
    a type change the target cannot take stops the table with the way out."""
    t = duck_target(tmp_path / "t.duckdb")
    config = binlog_config(tmp_path, server, db, t.config, {"items": BINLOG})
    assert sync(config).returncode == 0
    execute(server, db, "UPDATE items SET name = 'short' WHERE id = 1",
            "ALTER TABLE items MODIFY name VARCHAR(200) NOT NULL, MODIFY amount DECIMAL(20,2) NULL",
            "UPDATE items SET name = REPEAT('w', 150), amount = 123456789012.5 WHERE id = 2")
    widened = sync(config)
    assert widened.returncode == 0, widened.stdout + widened.stderr
    assert "column 'name' changed type: varchar(40) -> varchar(200)" in widened.stdout
    assert t.rows("items", ["id", "name", "amount"]) == [tuple(norm(v) for v in r) for r in rows(
        server, db, "items", "id, name, amount")]
    execute(server, db, "UPDATE items SET at = '2026-01-01 00:00:00', amount = 3.5 WHERE id = 3",
            "ALTER TABLE items DROP COLUMN at", "INSERT INTO items VALUES (4, 'four', 4)")
    dropped = sync(config)
    assert dropped.returncode == 0, dropped.stdout + dropped.stderr
    assert "column(s) at of changes before position" in dropped.stdout and "are not kept" in dropped.stdout
    assert t.rows("items", ["id", "name", "amount"]) == [tuple(norm(v) for v in r) for r in rows(
        server, db, "items", "id, name, amount")]
    # the target keeps `at`: the row not changed since keeps its value, those written from now on have NULL
    assert [(i, a is None) for i, a in t.rows("items", ["id", "at"])] == [(1, False), (2, True), (3, True), (4, True)]
    execute(server, db, "UPDATE items SET name = 'before add' WHERE id = 1",
            "ALTER TABLE items ADD COLUMN extra INT NOT NULL DEFAULT 7", "INSERT INTO items VALUES (5, 'five', 5, 8)")
    added = sync(config)
    assert added.returncode == 0, added.stdout + added.stderr
    assert "new column(s) extra" in added.stdout and "new snapshot" in added.stdout
    assert t.rows("items", ["id", "name", "extra"]) == rows(server, db, "items", "id, name, extra")
    assert lake_batches(tmp_path, "items")[-1][0].mode == "replace"
    execute(server, db, "UPDATE items SET amount = 2 WHERE id = 1", "ALTER TABLE items MODIFY amount VARCHAR(30)",
            "UPDATE items SET amount = 'n/a' WHERE id = 2")
    stopped = sync(config)
    assert stopped.returncode != 0
    line = next(x for x in stopped.stderr.splitlines() if x.startswith("Error:"))
    assert "amount" in line and "Way out:" in line and "watermark reset" in line


def test_a_large_transaction_is_one_batch_never_split(server: Any, db: str, tmp_path: Path) -> None:
    t = duck_target(tmp_path / "t.duckdb")
    config = binlog_config(tmp_path, server, db, t.config, {"items": BINLOG})
    assert sync(config).returncode == 0
    transaction(server, db, ["INSERT INTO items SELECT seq + 10, CONCAT('bulk ', seq), seq / 100, NULL "
                             "FROM seq_1_to_100000", "DELETE FROM items WHERE id = 11",
                             "UPDATE items SET name = 'last' WHERE id = 100010"])
    run = sync(config)
    assert run.returncode == 0, run.stdout + run.stderr
    (_, _), (m, changes) = lake_batches(tmp_path, "items")
    assert m.mode == "changes" and changes.num_rows == m.rows == 100_002
    assert t.query(f'SELECT COUNT(*), MAX("_lakeshift_seq") FROM {t.name("items")}') == [(100_002, 100_001)]
    assert t.rows("items", ITEM_COLS) == [tuple(norm(v) for v in r) for r in rows(server, db, "items",
                                                                                    ", ".join(ITEM_COLS))]


def test_soft_deletes_mark_the_row_and_a_key_that_comes_back_is_live(server: Any, db: str, target: Target,
                                                                   tmp_path: Path) -> None:
    """hard_deletes: soft: a delete sets _lakeshift_deleted_at to its commit time (a key changed by an
    update marks the old key), a key inserted again is live; a new snapshot keeps the marked rows."""
    config = binlog_config(tmp_path, server, db, target.config, {"items": {**BINLOG, "hard_deletes": "soft"}})
    assert sync(config).returncode == 0
    transaction(server, db, ["DELETE FROM items WHERE id = 1", "UPDATE items SET name = 'last' WHERE id = 2",
                             "DELETE FROM items WHERE id = 2", "INSERT INTO items VALUES (9, 'nine', 9, NULL)",
                             "DELETE FROM items WHERE id = 9", "UPDATE items SET id = 30 WHERE id = 3"])
    before = datetime.now(timezone.utc).replace(microsecond=0)
    run = sync(config)
    assert run.returncode == 0, run.stdout + run.stderr

    def state() -> list[tuple[Any, ...]]:
        return target.query(f'SELECT "id", "name", "_lakeshift_deleted_at" IS NULL, "_lakeshift_op" '
                            f'FROM {target.name("items")} ORDER BY 1')

    assert state() == [(1, "one", False, "delete"), (2, "two", False, "delete"), (3, "three", False, "delete"),
                       (30, "three", True, "update")]  # the row's last image, the delete's change columns
    (first_mark,), = target.query(f'SELECT "_lakeshift_deleted_at" FROM {target.name("items")} WHERE "id" = 1')
    # the delete's commit time (whole seconds), not the load's
    assert target.query(f'SELECT COUNT(*) FROM {target.name("items")} WHERE "_lakeshift_deleted_at" IS NOT NULL '
                        f'AND "_lakeshift_deleted_at" <> "_lakeshift_commit_ts"') == [(0,)]
    assert first_mark.microsecond == 0 and before - timedelta(seconds=30) <= first_mark <= before + timedelta(5)
    execute(server, db, "INSERT INTO items VALUES (1, 'back', NULL, NULL)", "DELETE FROM items WHERE id = 30")
    assert sync(config).returncode == 0
    assert state() == [(1, "back", True, "insert"), (2, "two", False, "delete"), (3, "three", False, "delete"),
                       (30, "three", False, "delete")]
    assert run_cli(config, "watermark", "reset", "-p", "p1", "-t", "items", "-y").returncode == 0
    again = sync(config)  # a new snapshot: the rows it lacks stay, marked
    assert again.returncode == 0, again.stdout + again.stderr
    assert [r[:3] for r in state()] == [(1, "back", True), (2, "two", False), (3, "three", False),
                                        (30, "three", False)]
    assert target.query(f'SELECT "_lakeshift_deleted_at" FROM {target.name("items")} WHERE "id" = 2') != [(None,)]


def test_truncate_with_hard_deletes_deletes_every_row_under_the_guard(server: Any, db: str, tmp_path: Path) -> None:
    """With hard_deletes, a TRUNCATE is a change of its own: refused above max_delete_fraction
    (nothing loaded), then with --force-deletes every row goes (soft: is marked) and the changes
    after it in the same batch are applied. DuckDB only: the soft test runs the same SQL on both."""
    target = duck_target(tmp_path / "t.duckdb")
    config = binlog_config(tmp_path, server, db, target.config, {"items": {**BINLOG, "hard_deletes": "delete"},
                                                                 "orders": {**BINLOG, "hard_deletes": "soft"}})
    assert sync(config).returncode == 0
    execute(server, db, "UPDATE items SET name = 'gone anyway' WHERE id = 1", "TRUNCATE TABLE items",
            "INSERT INTO items VALUES (2, 'two again', NULL, NULL), (5, 'five', 5, NULL)",
            "TRUNCATE TABLE orders", "INSERT INTO orders VALUES ('a', 1, 9, 9)")
    refused = run_cli(config, "sync", "pipeline", "-p", "p1", "-t", "items")
    assert refused.returncode != 0
    line = next(x for x in refused.stderr.splitlines() if x.startswith("Error:"))
    assert "max_delete_fraction" in line and "--force-deletes" in line and "a TRUNCATE of MySQL" in line
    assert target.rows("items", ["id"]) == [(1,), (2,), (3,)]
    run = sync(config, "--force-deletes")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "the 3 row(s) of the target go" in run.stdout
    assert target.rows("items", ITEM_COLS) == [tuple(norm(v) for v in r) for r in rows(
        server, db, "items", ", ".join(ITEM_COLS))]  # only the rows after the TRUNCATE
    live = target.query(f'SELECT "tenant", "no", "qty", "_lakeshift_deleted_at" IS NULL, "_lakeshift_op" '
                        f'FROM {target.name("orders")} ORDER BY 1, 2')
    assert live == [("a", 1, 9, True, "insert"), ("a", 2, 65535, False, "truncate"), ("b", 1, 0, False, "truncate")]


def binlog_dumps(server: Any) -> list[int]:
    """The ids of the server's connections that stream the binlog (a replica's, or lakeshift's)."""
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'")
        return [r[0] for r in cur.fetchall()]


def test_a_dropped_connection_mid_stream_is_read_again_from_the_last_commit(server: Any, db: str,
                                                                            tmp_path: Path) -> None:
    """The binlog connection is killed (KILL from another session) while a run reads many
    transactions: the reader opens it again from the last commit it read; nothing lost or doubled."""
    t = duck_target(tmp_path / "t.duckdb")
    config = binlog_config(tmp_path, server, db, t.config, {"items": BINLOG})
    assert sync(config).returncode == 0
    execute(server, db, "CREATE TABLE wide (id INT PRIMARY KEY, body LONGTEXT)")
    for n in range(40):  # with a bulky row of another table each: the server is still sending when killed
        transaction(server, db, [f"INSERT INTO items SELECT seq + {10 + n * 1000}, 'x', seq, NULL "
                                 f"FROM seq_1_to_1000", f"UPDATE items SET amount = {n} WHERE id = 1",
                                 f"INSERT INTO wide VALUES ({n}, REPEAT('w', 1000000))"])
    with running(start_sync(config, "p1", ("items",))) as proc:
        killed = 0
        while proc.poll() is None and not killed:
            for conn_id in binlog_dumps(server):
                execute(server, db, f"KILL {conn_id}")
                killed += 1
            time.sleep(0.005)
        out, err = proc.communicate(timeout=120)
    assert killed and proc.returncode == 0, out + err
    assert "the binlog connection dropped after" in out and "read again from that commit" in out
    (_, _), (m, changes) = lake_batches(tmp_path, "items")
    assert m.rows == changes.num_rows == 40 * 1001
    assert changes.column("_lakeshift_seq").to_pylist() == list(range(40 * 1001))  # each change once
    assert t.rows("items", ITEM_COLS) == [tuple(norm(v) for v in r) for r in rows(server, db, "items",
                                                                                    ", ".join(ITEM_COLS))]


def test_two_pipelines_read_one_server_at_once_under_their_own_server_ids(server: Any, db: str,
                                                                          tmp_path: Path) -> None:
    """Two pipelines (default server_ids from their names, which differ) stream the same
    server's binlog at the same time: neither drops the other's connection, both converge."""
    targets = {name: duck_target(tmp_path / f"{name}.duckdb") for name in ("pa", "pb")}
    configs = {name: binlog_config(tmp_path / name, server, db, t.config, {"items": BINLOG}, pipeline=name)
               for name, t in targets.items()}
    for name, config in configs.items():
        assert run_cli(config, "sync", "pipeline", "-p", name, "--all").returncode == 0
    for n in range(20):
        transaction(server, db, [f"INSERT INTO items SELECT seq + {10 + n * 1000}, 'x', seq, NULL FROM seq_1_to_1000",
                                 f"UPDATE items SET amount = {n} WHERE id = 1"])
    with running(start_sync(configs["pa"], "pa", ("items",))) as a, \
            running(start_sync(configs["pb"], "pb", ("items",))) as b:
        outs = [p.communicate(timeout=180) for p in (a, b)]
    assert a.returncode == 0 and b.returncode == 0, outs
    want = [tuple(norm(v) for v in r) for r in rows(server, db, "items", ", ".join(ITEM_COLS))]
    assert all(t.rows("items", ITEM_COLS) == want for t in targets.values())



def test_follow_loads_as_changes_come_and_sigterm_ends_it_after_the_current_batch(
        server: Any, db: str, pg: Any, tmp_path: Path) -> None:
    t = pg_target(f"ls_binlog_follow_{tmp_path.name[-8:].lower().replace('-', '_')}")
    try:
        follow_then_resume(server, db, t, tmp_path)
    finally:
        pg.execute(f'DROP SCHEMA IF EXISTS "{t.schema}" CASCADE')


def follow_then_resume(server: Any, db: str, t: Target, tmp_path: Path) -> None:
    config = binlog_config(tmp_path, server, db, t.config, {"items": BINLOG, "orders": BINLOG})
    assert sync(config).returncode == 0
    with running(start_sync(config, "p1", ("items", "orders"), "--follow", "--interval", "300ms",
                            "--max-changes", "500")) as proc:
        execute(server, db, "UPDATE items SET name = 'followed' WHERE id = 1")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and t.rows("items", ["name"])[0] != ("followed",):
            time.sleep(0.3)
        assert t.rows("items", ["name"])[0] == ("followed",)  # loaded while following
        transaction(server, db, ["INSERT INTO items SELECT seq + 10, 'bulk', seq, NULL FROM seq_1_to_1200"])
        execute(server, db, "INSERT INTO orders VALUES ('c', 1, 1, 1)", "DELETE FROM items WHERE id = 2")
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    assert "Stopped by SIGTERM" in out
    after = sync(config)  # resumes from the last committed position
    assert after.returncode == 0, after.stdout + after.stderr
    assert_same(server, db, t)
    loads = t.query(f'SELECT "batch_id", COUNT(*) FROM {t.name("_lakeshift_loads")} GROUP BY 1')
    assert all(r[1] == 1 for r in loads)
    sizes = [m.rows for m, _ in lake_batches(tmp_path, "items")[1:]]
    assert sum(sizes) == 1 + 1200 + 1 and max(sizes) == 1200  # a transaction is never split by --max-changes
    mixed = binlog_config(tmp_path / "mixed", server, db, t.config, {"items": BINLOG, "orders": {"cdc_strategy": "full_sync"}})
    refused = run_cli(mixed, "sync", "pipeline", "-p", "p1", "--all", "--follow")
    assert refused.returncode != 0
    line = next(x for x in refused.stderr.splitlines() if x.startswith("Error:"))
    assert "--follow reads the binlog only, but table(s) orders use another cdc_strategy" in line



def deleted_cell(output: str, table: str = "items") -> int:
    """The summary's `deleted` of `table`."""
    for line in output.splitlines():
        cells = [c.strip() for c in line.replace("│", "|").split("|") if c.strip()]
        if len(cells) >= 5 and cells[0] == table:
            return int(cells[4].replace(",", ""))
    raise AssertionError(output)


@pytest.mark.parametrize("hard_deletes", ["ignore", "soft"])
def test_the_deletes_a_binlog_batch_applies_are_counted_as_deleted(
        server: Any, db: str, target: Target, hard_deletes: str, tmp_path: Path) -> None:
    """A delete, and an update of the key (its old key is gone), are rows deleted: the summary, the load
    record and the run history say 2. A row born and deleted within the batch, and a replaced row, are not."""
    config = binlog_config(tmp_path, server, db, target.config,
                           {"items": {**BINLOG, "hard_deletes": hard_deletes}, "orders": BINLOG})
    assert sync(config).returncode == 0
    transaction(server, db, ["DELETE FROM items WHERE id = 2", "UPDATE items SET id = 30 WHERE id = 3",
                             "UPDATE items SET name = 'kept' WHERE id = 1"])
    transaction(server, db, ["INSERT INTO items VALUES (4, 'born', NULL, NULL)", "DELETE FROM items WHERE id = 4"])
    execute(server, db, "UPDATE orders SET qty = 1 WHERE tenant = 'a'")
    run = sync(config, env={"COLUMNS": "250"})
    assert run.returncode == 0, run.stdout + run.stderr
    assert deleted_cell(run.stdout) == 2 and deleted_cell(run.stdout, "orders") == 0
    loads = target.query(f'SELECT "mode", "deleted" FROM {target.name("_lakeshift_loads")} '
                         "WHERE \"table_name\" = 'items' ORDER BY \"batch_id\"")
    assert [(m, int(d or 0)) for m, d in loads] == [("replace", 0), ("changes", 2)]
    runs = target.query(f'SELECT "rows_deleted" FROM {target.name("_lakeshift_runs")} '
                        "WHERE \"table_name\" = 'items' ORDER BY \"started_at\"")
    assert [int(r[0]) for r in runs] == [0, 2]
    live = 'WHERE "_lakeshift_deleted_at" IS NULL ' if hard_deletes == "soft" else ""
    assert target.query(f'SELECT "id", "name" FROM {target.name("items")} {live}ORDER BY 1') == [
        (1, "kept"), (30, "three")]


def test_another_server_resumes_by_gtid_when_its_binlog_holds_the_position_else_it_is_lost(
        server: Any, db: str, tmp_path: Path) -> None:
    """The position is recorded with MariaDB's GTID of exactly its file/offset and read from by GTID.
    Another server behind the address (MariaDB has no server_uuid: its server_id names it) whose
    binlog holds that GTID (a promoted replica) is resumed from; one that does not is a lost position.
    Last in the module: it resets the server's binary log."""
    t = duck_target(tmp_path / "t.duckdb")
    config = binlog_config(tmp_path, server, db, t.config, {"items": BINLOG})
    assert sync(config).returncode == 0
    shown = run_cli(config, "watermark", "get", "-p", "p1", "-t", "items")
    assert "(GTID 0-1-" in shown.stdout, shown.stdout
    try:
        execute(server, db, "SET GLOBAL server_id = 5", "UPDATE items SET name = 'on five' WHERE id = 1")
        moved = sync(config)
        assert moved.returncode == 0, moved.stdout + moved.stderr
        assert "the server is another one now (server_id:5" in moved.stdout and "resuming from it" in moved.stdout
        assert t.rows("items", ["id", "name"])[0] == (1, "on five")
        execute(server, db, "UPDATE items SET name = 'again' WHERE id = 2")
        assert sync(config).returncode == 0 and t.rows("items", ["id", "name"])[1] == (2, "again")
        assert "(GTID 0-5-" in run_cli(config, "watermark", "get", "-p", "p1", "-t", "items").stdout
        execute(server, db, "SET GLOBAL server_id = 6", "RESET MASTER")  # another history: the GTIDs are gone
        failed = sync(config)
        assert failed.returncode != 0
        assert ("is lost: the server is another one now (server_id:6, the position was taken on server_id:5)"
                in failed.stderr)
    finally:
        execute(server, db, "SET GLOBAL server_id = 1")
