"""Issue 6, case 6: the MySQL connection is dropped in the middle of a table.

The server-side connection of the running read is KILLed from another
connection (found in information_schema.PROCESSLIST by its query text). To
kill it while the table is being read, and not before or after, the test
freezes the run (SIGSTOP) once the first Parquet part is in the lake, takes
LOCK TABLES ... WRITE on the source table, and lets the run go on: its next
page query then waits on the lock, where the test finds and kills it.

Transient errors are retried with a doubling delay up to `retry_attempts`
(the log shows each wait); permission and syntax errors are not retried;
every failure is one line; the next run ends with target == source."""

from __future__ import annotations

import re
import signal
import threading
from pathlib import Path
from typing import Any

import pymysql
import pytest
import yaml

from conftest import MYSQL, mysql_connect, unique
from kit.checks import assert_loaded_once, assert_mirrors
from kit.cli import assert_one_line_error, ok, running, start_sync, sync
from kit.config import build_config
from kit.lake import local_storage, manifest_ids, part_files
from kit.source import HYBRID, change_items, create_items
from kit.targets import make_target
from kit.wait import wait_for
from source_kit import SETTINGS, Sleeps, source_for

from lakeshift.errors import LakeshiftError, SourceError
from lakeshift.source import MySQLPool, MySQLReader

RETRY_DELAY = 0.2
RETRIES = re.compile(r"transient error, retry (\d+)/(\d+) in ([\d.]+)s")


def configure(config: Path, *, retry_attempts: int, retry_delay: float = RETRY_DELAY,
              username: str | None = None, password: str | None = None) -> None:
    path = config / "connections.yml"
    data = yaml.safe_load(path.read_text())
    src = data["connections"]["sources"]["src"]
    src["connection_pool"] = {"retry_attempts": retry_attempts}
    if username is not None:
        src["username"], src["password"] = username, password
    data["connection_settings"]["connection_retry_delay"] = retry_delay
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def page_queries(killer: Any, mysql_db: str, waiting: bool) -> list[tuple[int, str]]:
    """lakeshift's page queries on the source table (connectorx), optionally only
    those waiting for the table lock."""
    with killer.cursor() as cur:
        cur.execute("SELECT ID, STATE FROM information_schema.PROCESSLIST WHERE DB = %s AND ID <> CONNECTION_ID() "
                    "AND INFO LIKE %s AND INFO LIKE %s", (mysql_db, "%`items` AS `_ls`%", "%LIMIT%"))
        rows = [(int(r[0]), r[1] or "") for r in cur.fetchall()]
    return [r for r in rows if not waiting or "lock" in r[1].lower()]


class TableLock:
    """LOCK TABLES items WRITE on a connection of its own, taken on a thread
    (it waits for a statement in flight) and released by `release`."""

    def __init__(self, mysql_db: str) -> None:
        self.conn = mysql_connect(mysql_db)
        self.held = threading.Event()
        self.error: list[BaseException] = []
        self.thread = threading.Thread(target=self._take, daemon=True)
        self.thread.start()

    def _take(self) -> None:
        try:
            with self.conn.cursor() as cur:
                cur.execute("LOCK TABLES items WRITE")
            self.held.set()
        except BaseException as exc:  # noqa: BLE001
            self.error.append(exc)

    def release(self) -> None:
        self.thread.join(60)
        try:
            with self.conn.cursor() as cur:
                cur.execute("UNLOCK TABLES")
        finally:
            self.conn.close()


@pytest.mark.slow
@pytest.mark.parametrize("kills", [2, 3])
def test_connection_killed_mid_table(kills: int, mysql: Any, mysql_db: str, tmp_path: Path,
                                     request: pytest.FixtureRequest) -> None:
    """retry_attempts 2: two kills are retried (waits 0.2s then 0.4s) and the
    run completes; a third is one too many: the run fails with one line and
    nothing of it is loaded; the next run completes."""
    target = make_target("postgres", request, tmp_path)
    storage = local_storage(tmp_path / "lake")
    create_items(mysql, 20_000)
    config = build_config(tmp_path / "config", mysql_db, target.config, storage,
                          {"items": {**HYBRID, "processing": {"batch_size": 200}}}, s3={"max_file_rows": 1000})
    configure(config, retry_attempts=2)
    killer = mysql_connect()
    lock: TableLock | None = None
    try:
        with running(start_sync(config)) as proc:
            wait_for(lambda: part_files(storage), "the first Parquet part", proc=proc, delay=0.005, attempts=6000)
            proc.send_signal(signal.SIGSTOP)  # mid-table: rows read, more pages to come
            lock = TableLock(mysql_db)
            proc.send_signal(signal.SIGCONT)
            wait_for(lambda: lock.held.is_set() or lock.error, "LOCK TABLES")
            assert not lock.error, lock.error
            killed_ids: list[int] = []
            for _ in range(kills):
                found = wait_for(lambda: [q for q in page_queries(killer, mysql_db, True) if q[0] not in killed_ids],
                                 "a page query waiting for the table lock", proc=proc)
                with killer.cursor() as cur:
                    cur.execute(f"KILL CONNECTION {found[0][0]}")
                killed_ids.append(found[0][0])
            if kills <= 2:  # the retry is there again, waiting: let it through
                wait_for(lambda: [q for q in page_queries(killer, mysql_db, True) if q[0] not in killed_ids],
                         "the retried page query", proc=proc)
            lock.release()
            lock = None
            out, err = proc.communicate(timeout=180)
        waits = [float(m.group(3)) for m in RETRIES.finditer(err)]
        assert waits == [RETRY_DELAY, 2 * RETRY_DELAY], err  # backoff: delay, then twice the delay
        result = type("R", (), {"returncode": proc.returncode, "stdout": out, "stderr": err})()
        if kills <= 2:
            assert proc.returncode == 0, err
            assert_mirrors(target, mysql_db)
        else:
            line = assert_one_line_error(result, "items", "(giving up after 3 attempts)")
            assert "127.0.0.1:3306" in line
            assert not target.exists("items") and target.loads() == []  # nothing half-loaded
            assert manifest_ids(storage) == [] and target.staging_tables() == []
            ok(sync(config))
            assert_mirrors(target, mysql_db)
    finally:
        if lock is not None:
            lock.release()
        killer.close()
    change_items(mysql, 1)
    ok(sync(config))
    assert_mirrors(target, mysql_db)
    assert_loaded_once(target, storage)


@pytest.fixture
def select_denied_user(mysql_db: str) -> Any:
    """A user that sees the table (it may INSERT) but may not SELECT from it."""
    user, password = unique("ls_nosel"), "pw-" + unique("x")
    with mysql_connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
        try:
            yield user, password, cur
        finally:
            cur.execute("DROP USER IF EXISTS %s@'%%'", (user,))


@pytest.mark.slow
def test_permission_error_is_not_retried(select_denied_user: Any, mysql: Any, mysql_db: str, tmp_path: Path,
                                         request: pytest.FixtureRequest) -> None:
    user, password, root = select_denied_user
    create_items(mysql, 50)
    root.execute(f"GRANT INSERT ON `{mysql_db}`.`items` TO %s@'%%'", (user,))
    target = make_target("postgres", request, tmp_path)
    storage = local_storage(tmp_path / "lake")
    config = build_config(tmp_path / "config", mysql_db, target.config, storage, {"items": HYBRID})
    # a retry would log itself, and wait 60s, 120s, 240s: past the subprocess timeout
    configure(config, retry_attempts=3, retry_delay=60, username=user, password=password)
    result = sync(config, timeout=100)
    line = assert_one_line_error(result, "items", "(1142)", "denied")
    assert not RETRIES.search(result.stderr), result.stderr
    assert password not in result.stderr + result.stdout
    assert "giving up" not in line
    assert not target.exists("items") and manifest_ids(storage) == []


def test_syntax_and_unknown_table_errors_are_not_retried(mysql: Any, mysql_db: str) -> None:
    """Through the pool (PyMySQL) and connectorx alike, against the real server."""
    sleeps = Sleeps()
    src = source_for(mysql_db, connection_pool={"retry_attempts": 3})
    reader = MySQLReader(src, SETTINGS, sleep=sleeps)
    try:
        for run in (lambda: reader.pool.query("SELEC 1", what="pool"),
                    lambda: reader.pool.retry(lambda: reader.cx.fetch("SELEC 1", 10, "cx"), "cx"),
                    lambda: reader.pool.query("SELECT * FROM no_such_table", what="pool"),
                    lambda: reader.pool.retry(lambda: reader.cx.fetch("SELECT * FROM no_such_table", 10, "cx"), "cx")):
            with pytest.raises(SourceError) as err:
                run()
            assert re.search(r"\((1064|1146)\)", str(err.value)), err.value
            assert "\n" not in str(err.value)
        assert sleeps == []  # not one retry
    finally:
        reader.close()


def test_a_killed_pooled_connection_is_retried(mysql_db: str) -> None:
    """The control connections (PyMySQL pool): an idle pooled connection killed
    on the server is replaced on the next query after one backoff wait."""
    sleeps = Sleeps()
    pool = MySQLPool(source_for(mysql_db, connection_pool={"retry_attempts": 3}), SETTINGS, sleep=sleeps)
    try:
        (thread_id,), = pool.query("SELECT CONNECTION_ID()")
        with mysql_connect() as killer, killer.cursor() as cur:
            cur.execute(f"KILL CONNECTION {int(thread_id)}")
        (other,), = pool.query("SELECT CONNECTION_ID()")
        assert other != thread_id
        assert sleeps == [SETTINGS.connection_retry_delay]
    finally:
        pool.close()


def test_the_user_and_host_are_named_never_the_password(select_denied_user: Any, mysql_db: str) -> None:
    """A wrong password (1045) is permanent: one attempt, a message without it."""
    user, password, _ = select_denied_user
    sleeps = Sleeps()
    pool = MySQLPool(source_for(mysql_db, username=user, password=password + "-wrong",
                                connection_pool={"retry_attempts": 3}), SETTINGS, sleep=sleeps)
    try:
        with pytest.raises(LakeshiftError) as err:
            pool.query("SELECT 1")
        assert "(1045)" in str(err.value) and password not in str(err.value)
        assert sleeps == []
    finally:
        pool.close()
    assert MYSQL["host"] in str(err.value)
    with pytest.raises(pymysql.err.OperationalError):  # the user really cannot log in that way
        pymysql.connect(host=MYSQL["host"], port=MYSQL["port"], user=user, password=password + "-wrong").close()
