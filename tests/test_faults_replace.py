"""Issue 6, case 9: a full_sync killed in the middle of replacing the table.
Readers must see the old table or the new one, never an empty or a half one.

PostgreSQL: a reader on another connection polls COUNT(*) and a checksum of
every column while the runs go on. The first run is held inside its load
transaction (a SHARE lock on the load records stops it right after it replaced
the rows, before it records the batch) and SIGKILLed there by the test; the
second kills itself there (LAKESHIFT_FAULT=in_load_transaction); the third
completes. A reader in a REPEATABLE READ transaction that began before the
load must still see the old rows after the new ones are committed (an
MVCC-unsafe replace would show it an empty table).

DuckDB: a reader process polls the file (read-only, when it can open it)
during the same sequence; after each kill the file holds the old snapshot."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from conftest import PG_DSN
from kit.checks import assert_loaded_once, assert_mirrors
from kit.cli import killed, ok, running, start_sync, sync
from kit.config import build_config
from kit.lake import local_storage
from kit.source import FULL_SYNC, create_items, insert_items
from kit.targets import Target, duck_target, make_target
from kit.wait import wait_for

pytestmark = pytest.mark.slow  # CLI subprocesses killed during replaces

CHECKSUM = ("SELECT count(*), coalesce(sum(hashtext(name || '|' || coalesce(amount::text, 'null') || '|' || "
            "updated_at::text || '|' || id::text)::bigint), 0) FROM {table}")


def change_snapshot(mysql: Any) -> None:
    """Deletes, updates and inserts: the new snapshot differs in count and content."""
    with mysql.cursor() as cur:
        cur.execute("DELETE FROM items WHERE id % 7 = 0")
        cur.execute("UPDATE items SET name = CONCAT(name, ' v2') WHERE id % 5 = 0")
    insert_items(mysql, 1_500, name="new")


class Poller:
    """Polls COUNT(*) + checksum of the target on its own connection until stopped."""

    def __init__(self, table: str) -> None:
        self.sql = CHECKSUM.format(table=table)
        self.seen: list[tuple[int, int]] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            for _ in range(200_000):
                if self.stop.is_set():
                    return
                try:
                    row = conn.execute(self.sql).fetchone()
                    self.seen.append((int(row[0]), int(row[1])))
                except psycopg.Error as exc:
                    self.errors.append(str(exc).splitlines()[0])
                time.sleep(0.002)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(60)


def loaded_snapshot(mysql: Any, mysql_db: str, target: Target, tmp_path: Path,
                    rows: int) -> tuple[Path, dict[str, Any]]:
    """`rows` items full_synced into `target` (500-row pages, 1000-row parts);
    returns the config folder and the lake's storage."""
    storage = local_storage(tmp_path / "lake")
    create_items(mysql, rows)
    config = build_config(tmp_path / "config", mysql_db, target.config, storage,
                          {"items": {**FULL_SYNC, "processing": {"batch_size": 500}}}, s3={"max_file_rows": 1000})
    ok(sync(config))
    return config, storage


def waiting_on_loads(conn: psycopg.Connection, schema: str) -> bool:
    return bool(conn.execute(
        "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
        (f'%"{schema}"."_lakeshift_loads"%',)).fetchall())


def test_postgres_readers_see_old_or_new(mysql: Any, mysql_db: str, pg_schema: str, tmp_path: Path,
                                         request: pytest.FixtureRequest) -> None:
    target = make_target("postgres", request, tmp_path)
    config, storage = loaded_snapshot(mysql, mysql_db, target, tmp_path, 3_000)
    table = target.name("items")
    old = tuple(target.query(CHECKSUM.format(table=table))[0])
    change_snapshot(mysql)

    poller = Poller(table)
    try:
        # 1. held inside the load transaction, then SIGKILLed there by the test
        with psycopg.connect(PG_DSN) as blocker:
            blocker.execute(f'LOCK TABLE {target.name("_lakeshift_loads")} IN SHARE MODE')
            with running(start_sync(config)) as proc, psycopg.connect(PG_DSN, autocommit=True) as watcher:
                wait_for(lambda: waiting_on_loads(watcher, target.schema), "the run inside its load transaction",
                         proc=proc)
                seen = len(poller.seen)
                wait_for(lambda: len(poller.seen) >= seen + 20, "the reader to poll during the replace")
                assert tuple(target.query(CHECKSUM.format(table=table))[0]) == old
                proc.send_signal(signal.SIGKILL)
                proc.wait(60)
            blocker.rollback()
        assert tuple(target.query(CHECKSUM.format(table=table))[0]) == old

        # 2. killed by itself at the same point
        killed(sync(config, fault="in_load_transaction"))
        assert tuple(target.query(CHECKSUM.format(table=table))[0]) == old

        # 3. the run that completes
        ok(sync(config))
        new = tuple(target.query(CHECKSUM.format(table=table))[0])
        assert new != old
        wait_for(lambda: poller.seen and poller.seen[-1] == new, "the reader to see the new table")
    finally:
        poller.close()
    assert poller.errors == []
    assert set(poller.seen) == {old, new}, set(poller.seen) - {old, new}  # never empty, never half
    assert_mirrors(target, mysql_db)
    assert_loaded_once(target, storage, snapshots=True)
    assert target.staging_tables() == []


@pytest.fixture
def plain_role(pg: psycopg.Connection) -> Any:
    """A login role that is not a superuser and cannot see other users' sessions."""
    from conftest import unique

    role = unique("ls_loader")
    pg.execute(f'CREATE ROLE "{role}" LOGIN')
    pg.execute(f'GRANT CREATE ON DATABASE test TO "{role}"')
    try:
        yield role
    finally:
        pg.execute(f'REVOKE CREATE ON DATABASE test FROM "{role}"')
        pg.execute(f'DROP OWNED BY "{role}" CASCADE')
        pg.execute(f'DROP ROLE "{role}"')


@pytest.mark.parametrize("loader_role", ["superuser", "plain role"])
def test_a_snapshot_older_than_the_load_never_sees_an_empty_table(loader_role: str, mysql: Any, mysql_db: str,
                                                                   pg_schema: str, tmp_path: Path,
                                                                   request: pytest.FixtureRequest) -> None:
    """A REPEATABLE READ transaction that began before the load (and had not
    touched the table) reads it after the new snapshot is committed: it must
    see the old rows. A plain-role loader cannot see the other user's session,
    so it must assume the worst."""
    target = make_target("postgres", request, tmp_path)
    if loader_role == "plain role":
        target.config["username"] = request.getfixturevalue("plain_role")
    config, _ = loaded_snapshot(mysql, mysql_db, target, tmp_path, 2_000)
    table = target.name("items")
    old = tuple(target.query(CHECKSUM.format(table=table))[0])
    change_snapshot(mysql)
    with psycopg.connect(PG_DSN) as snap:
        snap.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        snap.execute("SELECT count(*) FROM pg_catalog.pg_class").fetchone()  # the snapshot is taken here
        ok(sync(config))
        assert tuple(snap.execute(CHECKSUM.format(table=table)).fetchone()) == old  # the old rows, not none
        snap.rollback()
    new = tuple(target.query(CHECKSUM.format(table=table))[0])
    assert new != old
    assert_mirrors(target, mysql_db)
    # with no old snapshot around, the next full_sync may swap again and is as correct
    change_snapshot(mysql)
    ok(sync(config))
    assert_mirrors(target, mysql_db)
    assert target.staging_tables() == []


DUCK_READER = r"""
import sys, time, duckdb
path, schema, stop = sys.argv[1], sys.argv[2], sys.argv[3]
import os
for _ in range(100000):
    if os.path.exists(stop):
        break
    try:
        con = duckdb.connect(path, read_only=True)
    except Exception:
        time.sleep(0.01)
        continue
    try:
        n, s = con.execute(f'SELECT count(*), coalesce(sum(hash(name, amount, updated_at, id) % 1000003), 0) FROM "{schema}".items').fetchone()
        print(n, s, flush=True)
    except Exception as exc:
        print("ERR", str(exc).splitlines()[0], flush=True)
    finally:
        con.close()
    time.sleep(0.02)
"""


def test_duckdb_readers_see_old_or_new(mysql: Any, mysql_db: str, tmp_path: Path) -> None:
    target: Target = duck_target(tmp_path / "target.duckdb")
    config, storage = loaded_snapshot(mysql, mysql_db, target, tmp_path, 3_000)
    checksum = (f'SELECT count(*), coalesce(sum(hash(name, amount, updated_at, id) % 1000003), 0) '
                f'FROM {target.name("items")}')
    old = tuple(target.query(checksum)[0])
    change_snapshot(mysql)
    stop = tmp_path / "stop-reader"
    reader = subprocess.Popen([sys.executable, "-c", DUCK_READER, str(target.path), target.schema, str(stop)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(2):
            killed(sync(config, fault="in_load_transaction"))
            assert tuple(target.query(checksum)[0]) == old
        ok(sync(config))
        new = tuple(target.query(checksum)[0])
    finally:
        stop.touch()
        try:
            out, err = reader.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            reader.kill()
            out, err = reader.communicate(timeout=30)
    seen = {tuple(int(v) for v in line.split()) for line in out.splitlines() if line and not line.startswith("ERR")}
    errors = [line for line in out.splitlines() if line.startswith("ERR")]
    assert errors == [] and reader.returncode == 0, err
    assert seen and seen <= {old, new}, seen - {old, new}
    assert_mirrors(target, mysql_db)
    assert_loaded_once(target, storage, snapshots=True)
