"""Issue 6, case 7: PostgreSQL restarts during a load.

The target is a PostgreSQL cluster of the test's own (same binaries as the
shared server, its own port and data folder), so restarting it cannot hurt
tests running at the same time against the shared server.

- In the commit transaction: the test holds a SHARE lock on the load-record
  table, so the run stops inside its one transaction right after it changed
  the target table and before it records the batch; readers meanwhile see the
  old rows. Then `pg_ctl restart -m fast` ends every session. The run fails
  with one line, nothing of the batch is visible, the next run converges.
- While parts are being staged (COPY during the extract): the run is frozen
  once the first part is staged, PostgreSQL restarts (or stops), the run goes
  on. The extract is kept in the lake: loaded from there by the same run when
  PostgreSQL is back, by the next one otherwise; stale staging is dropped."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from kit.checks import assert_loaded_once, assert_mirrors
from kit.cli import assert_one_line_error, ok, running, start_sync, summary, sync
from kit.config import build_config
from kit.lake import local_storage, manifest_ids
from kit.servers import PgCluster, start_pg_cluster
from kit.source import FULL_SYNC, HYBRID, change_items, create_items, insert_items
from kit.targets import Target, pg_target
from kit.wait import wait_for

pytestmark = pytest.mark.slow  # a throwaway PostgreSQL cluster restarted under CLI subprocesses


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    c = start_pg_cluster()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def target(cluster: PgCluster) -> Iterator[Target]:
    from conftest import unique

    t = pg_target(unique("ls_restart"), port=cluster.port)
    try:
        yield t
    finally:
        cluster.wait_up()
        with psycopg.connect(cluster.dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{t.schema}" CASCADE')


def backend_waiting_on(conn: psycopg.Connection, fragment: str) -> list[int]:
    return [r[0] for r in conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
        (f"%{fragment}%",)).fetchall()]


def completed(proc: Any) -> Any:
    out, err = proc.communicate(timeout=180)
    return type("R", (), {"returncode": proc.returncode, "stdout": out, "stderr": err})()


@pytest.mark.parametrize("strategy", ["hybrid", "full_sync"])
def test_restart_inside_the_load_transaction(strategy: str, cluster: PgCluster, target: Target, mysql: Any,
                                             mysql_db: str, tmp_path: Path) -> None:
    storage = local_storage(tmp_path / "lake")
    table = {**(HYBRID if strategy == "hybrid" else FULL_SYNC), "processing": {"batch_size": 100}}
    create_items(mysql, 500)
    config = build_config(tmp_path / "config", mysql_db, target.config, storage, {"items": table})
    ok(sync(config))
    assert_mirrors(target, mysql_db)
    before_rows, before_loads = target.rows(), target.loads()

    change_items(mysql, 1, inserts=300)
    if strategy == "full_sync":
        mysql.cursor().execute("DELETE FROM items WHERE id BETWEEN 10 AND 60")
    blocker = psycopg.connect(cluster.dsn)
    try:
        blocker.execute(f'LOCK TABLE {target.name("_lakeshift_loads")} IN SHARE MODE')
        with running(start_sync(config)) as proc:
            with psycopg.connect(cluster.dsn, autocommit=True) as watcher:
                wait_for(lambda: backend_waiting_on(watcher, "_lakeshift_loads"),
                         "the run to wait inside its load transaction", proc=proc)
            # the batch's rows are in the target, uncommitted: nobody else sees them
            assert target.rows() == before_rows
            # frozen while the server restarts, so that the run meets a server that is back
            # (and sessions it kept that are dead) rather than one still shutting down
            proc.send_signal(signal.SIGSTOP)
            cluster.restart()
            proc.send_signal(signal.SIGCONT)
            result = completed(proc)
    finally:
        blocker.close()
    assert_one_line_error(result, "items")
    assert target.rows() == before_rows and target.loads() == before_loads  # no partial batch
    runs = target.query(f'SELECT "status" FROM {target.name("_lakeshift_runs")} ORDER BY "started_at"')
    assert [r[0] for r in runs] == ["ok", "failed"], result.stderr  # the failure is in the run history

    result = ok(sync(config))
    assert_mirrors(target, mysql_db)
    assert_loaded_once(target, storage, snapshots=strategy == "full_sync")
    assert target.staging_tables() == []


@pytest.mark.parametrize("outage", ["restart", "down until the next run"])
def test_target_lost_while_parts_are_staged(outage: str, cluster: PgCluster, target: Target, mysql: Any,
                                            mysql_db: str, tmp_path: Path) -> None:
    """PostgreSQL goes away while the extract COPYs its parts into staging.
    The extract itself is fine, so its batch is kept: the run loads it from the
    lake if it can, or fails with one line and leaves it waiting in the lake
    for the next run, which loads it without reading MySQL again."""
    storage = local_storage(tmp_path / "lake")
    create_items(mysql, 200)
    config = build_config(tmp_path / "config", mysql_db, target.config, storage,
                          {"items": {**HYBRID, "processing": {"batch_size": 500}}}, s3={"max_file_rows": 500})
    ok(sync(config))
    before_rows = target.rows()
    insert_items(mysql, 30_000, name="staged")
    try:
        with running(start_sync(config)) as proc:
            # the first part has reached the staging table (COPY committed by the staging connection)
            def staged() -> bool:
                try:
                    return any(target.query(f'SELECT count(*) FROM {target.name(t)}')[0][0] > 0
                               for t in target.staging_tables())
                except psycopg.Error:
                    return False

            wait_for(staged, "rows in the staging table", proc=proc, delay=0.01)
            proc.send_signal(signal.SIGSTOP)
            cluster.restart() if outage == "restart" else cluster.halt()
            proc.send_signal(signal.SIGCONT)
            result = completed(proc)
    finally:
        if outage != "restart":
            cluster.start()
    assert "staging into the target failed" in result.stderr and "kept in the lake" in result.stderr
    assert len(manifest_ids(storage)) == 2  # the extract is in the lake either way
    if result.returncode == 0:  # PostgreSQL was back: loaded from the lake in the same run
        assert outage == "restart"
        assert summary(result.stdout)[1:] == (30_000, 30_000)
    else:  # the load met the outage (or a session that died with it): one line, nothing half-loaded
        assert_one_line_error(result, "items")
        assert target.rows() == before_rows
        assert summary(ok(sync(config)).stdout)[1:] == (0, 30_000)  # no second read of MySQL
    assert_mirrors(target, mysql_db)
    assert_loaded_once(target, storage)
    ok(sync(config))
    assert target.staging_tables() == []
