"""Control connections, retries, errors that name the table and never the
password, the pool, named locks, TLS settings and the SSH tunnel."""

from __future__ import annotations

import secrets
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pymysql
import pytest
from source_kit import SETTINGS, Sleeps, make_reader, reader, run, source_for, table_config  # noqa: F401
from kit.sshd import known_hosts, ssh_keys, sshd  # noqa: F401

from conftest import mysql_connect, mysql_exec
from lakeshift.config.models import MySQLSource, TLSSettings
from lakeshift.errors import ConnectionFailed, LockBusyError, SourceError, TransientSourceError
from lakeshift.source import MySQLPool, connect, named_lock, retry
from lakeshift.source.cx import Connectorx
from lakeshift.source.errors import error_code, is_transient
from lakeshift.source.tls import pymysql_ssl

FULL = table_config(cdc_strategy="full_sync")


def op_error(code: int, text: str = "boom") -> pymysql.err.OperationalError:
    return pymysql.err.OperationalError(code, text)


# ---------------------------------------------------------------- retry


class Flaky:
    def __init__(self, *errors: BaseException, result: Any = "ok") -> None:
        self.errors, self.result, self.calls = list(errors), result, 0

    def __call__(self) -> Any:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.result


@pytest.mark.parametrize("code", [2003, 2006, 2013, 2055, 1205, 1213, 1053, 1040, 1927])
def test_transient_errors_are_retried_with_backoff(code: int) -> None:
    sleeps = Sleeps()
    fn = Flaky(op_error(code), op_error(code), op_error(code))
    assert retry(fn, attempts=3, delay=0.5, sleep=sleeps) == "ok"
    assert fn.calls == 4 and sleeps == [0.5, 1.0, 2.0]


def test_backoff_is_capped_and_retries_end() -> None:
    sleeps = Sleeps()
    fn = Flaky(*[op_error(2013, "Lost connection")] * 10)
    with pytest.raises(TransientSourceError) as err:
        retry(fn, attempts=5, delay=10, max_delay=25, sleep=sleeps, what="MySQL h:1/db: table db.t")
    assert sleeps == [10, 20, 25, 25, 25] and fn.calls == 6
    assert "db.t" in str(err.value) and "giving up after 6 attempts" in str(err.value)


@pytest.mark.parametrize("code", [1044, 1045, 1142, 1143, 1064, 1146])
def test_permission_syntax_and_unknown_table_errors_are_not_retried(code: int) -> None:
    sleeps = Sleeps()
    fn = Flaky(pymysql.err.ProgrammingError(code, "nope") if code in (1064, 1146, 1142)
               else op_error(code, "denied"))
    with pytest.raises(pymysql.err.MySQLError):
        retry(fn, attempts=3, delay=1, sleep=sleeps)
    assert fn.calls == 1 and sleeps == []


def test_connectorx_error_texts_are_classified() -> None:
    lost = RuntimeError("MySqlError { ERROR 2013 (HY000): Lost connection to MySQL server during query }")
    denied = RuntimeError("MySqlError { ERROR 1142 (42000): SELECT command denied to user 'u'@'h' for table 't' }")
    refused = RuntimeError("timed out waiting for connection: DriverError { Could not connect to address "
                           "`127.0.0.1:3307': Connection refused (os error 111) }")
    assert (error_code(lost), error_code(denied), error_code(refused)) == (2013, 1142, 2003)
    assert is_transient(lost) and is_transient(refused) and not is_transient(denied)
    assert not is_transient(ValueError("ERROR 2013"))  # only driver errors count


# ---------------------------------------------------------------- errors and secrets


@pytest.fixture
def limited_user(mysql, mysql_db) -> Iterator[tuple[str, str]]:
    """A user with a password full of URL syntax, SELECT on table `ok` only."""
    name = f"ls_{secrets.token_hex(4)}"
    password = f"p@ss:w/rd%?#&= {secrets.token_hex(3)}"
    mysql_exec(mysql, "CREATE TABLE ok (id INT PRIMARY KEY, v VARCHAR(5))", "INSERT INTO ok VALUES (1, 'a'), (2, 'b')",
               "CREATE TABLE secret_t (id INT PRIMARY KEY)", "INSERT INTO secret_t VALUES (1)")
    mysql_exec(mysql, f"CREATE USER '{name}'@'%%' IDENTIFIED BY %s", params=(password,))
    mysql_exec(mysql, f"CREATE USER '{name}'@'localhost' IDENTIFIED BY %s", params=(password,))
    for host in ("%", "localhost"):
        mysql_exec(mysql, f"GRANT SELECT ON `{mysql_db}`.`ok` TO '{name}'@'{host}'")
    try:
        yield name, password
    finally:
        for host in ("%", "localhost"):
            mysql_exec(mysql, f"DROP USER IF EXISTS '{name}'@'{host}'")


def test_password_with_url_syntax_works_and_never_shows(limited_user, mysql_db, mysql) -> None:
    user, password = limited_user
    r = make_reader(mysql_db, username=user, password=password)
    try:
        table, _, _ = run(r, "ok", FULL)  # connectorx URL: user and password percent-encoded
        assert table.column("v").to_pylist() == ["a", "b"]
        # the table vanishes between describe and read: a connectorx error naming the table
        desc = r.describe("ok", FULL)
        window = r.plan_window(FULL, desc, None)
        mysql_exec(mysql, "DROP TABLE ok")
        with pytest.raises(SourceError) as err:
            list(r.read(FULL, desc, window, 10))
        msg = str(err.value)
        assert f"{mysql_db}.ok" in msg and "127.0.0.1:3306" in msg and "1146" in msg
        assert password not in msg and "p%40ss" not in msg and "\n" not in msg
    finally:
        r.close()


def test_permission_error_is_not_retried_and_names_the_table(limited_user, mysql_db) -> None:
    user, password = limited_user
    calls: list[str] = []

    def counting(*args: Any, **kwargs: Any) -> Any:
        import connectorx

        calls.append(args[1])
        return connectorx.read_sql(*args, **kwargs)

    admin = make_reader(mysql_db)
    desc = admin.describe("secret_t")  # root can see it, the user cannot
    admin.close()
    sleeps = Sleeps()
    r = make_reader(mysql_db, read_sql=counting, sleeps=sleeps, username=user, password=password)
    try:
        window = r.plan_window(FULL, desc, None)
        with pytest.raises(SourceError) as err:
            list(r.read(FULL, desc, window, 10))
        assert not isinstance(err.value, TransientSourceError)
        assert "1142" in str(err.value) and "secret_t" in str(err.value) and password not in str(err.value)
        assert len(calls) == 1 and sleeps == []
        with pytest.raises(SourceError, match="does not exist"):
            r.describe("secret_t")  # invisible to this user
    finally:
        r.close()


def test_wrong_password_fails_once_with_the_connection_named(mysql_db) -> None:
    sleeps = Sleeps()
    pool = MySQLPool(source_for(mysql_db, password="Wr0ng-Secret!"), SETTINGS, sleep=sleeps)
    with pytest.raises(ConnectionFailed) as err:
        with pool.connection():
            pass
    msg = str(err.value)
    assert f"127.0.0.1:3306/{mysql_db}" in msg and "1045" in msg and "Wr0ng-Secret!" not in msg
    assert sleeps == []  # access denied is not worth a retry
    pool.close()


def test_refused_connection_is_retried_then_fails() -> None:
    sleeps = Sleeps()
    src = MySQLSource(host="127.0.0.1", port=1, username="root", database="x")
    pool = MySQLPool(src, SETTINGS, sleep=sleeps)
    with pytest.raises(ConnectionFailed, match="127.0.0.1:1/x"):
        with pool.connection():
            pass
    assert len(sleeps) == src.connection_pool.retry_attempts == 3


def test_syntax_error_from_connectorx_is_not_retried(mysql_db) -> None:
    sleeps = Sleeps()
    r = make_reader(mysql_db, sleeps=sleeps)
    with pytest.raises(SourceError, match="1064"):
        r.cx.fetch("SELEC 1", 10, "test")
    with pytest.raises(SourceError, match="1064"):
        r.pool.retry(lambda: r.cx.fetch("SELEC 1", 10, "test"))
    assert sleeps == []
    r.close()


# ---------------------------------------------------------------- transient errors mid-read


@pytest.fixture
def rows100(mysql) -> str:
    mysql_exec(mysql, "CREATE TABLE r (id INT PRIMARY KEY, v INT)", "INSERT INTO r SELECT seq, seq FROM seq_1_to_100")
    return "r"


def test_a_lost_connection_mid_read_is_retried_without_losing_rows(mysql_db, rows100) -> None:
    calls = 0

    def flaky(*args: Any, **kwargs: Any) -> Any:
        import connectorx

        nonlocal calls
        calls += 1
        if calls in (3, 4):  # the second page fails twice
            raise RuntimeError("MySqlError { ERROR 2013 (HY000): Lost connection to MySQL server during query }")
        return connectorx.read_sql(*args, **kwargs)

    sleeps = Sleeps()
    r = make_reader(mysql_db, read_sql=flaky, sleeps=sleeps)
    table, _, sizes = run(r, rows100, FULL, batch_size=30)
    assert table.column("id").to_pylist() == list(range(1, 101)) and sizes == [30, 30, 30, 10]
    assert sleeps == [SETTINGS.connection_retry_delay, 2 * SETTINGS.connection_retry_delay]
    r.close()


KILLER = """
import sys, time, pymysql
db, table = sys.argv[1], sys.argv[2]
kw = dict(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
locker, admin = pymysql.connect(database=db, **kw), pymysql.connect(**kw)
locker.cursor().execute(f"LOCK TABLES `{table}` WRITE")
print("locked", flush=True)
killed = 0
try:
    for _ in range(400):
        cur = admin.cursor()
        cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND ID <> %s "
                    "AND STATE LIKE %s", (db, locker.thread_id(), "%lock%"))
        ids = [r[0] for r in cur.fetchall()]
        if ids:
            for pid in ids:
                cur.execute(f"KILL CONNECTION {int(pid)}")
                killed += 1
            break
        time.sleep(0.05)
finally:
    time.sleep(0.2)
    locker.cursor().execute("UNLOCK TABLES")
    print("killed", killed, flush=True)
"""


@pytest.mark.slow
def test_query_killed_by_the_server_is_retried(mysql_db, rows100) -> None:
    """A real KILL: the next page query waits on a table lock held by another
    process, which kills its connection; the reader retries and reads every
    row once. (A process, not a thread: connectorx holds the GIL while it waits.)"""
    sleeps = Sleeps()
    r = make_reader(mysql_db, sleeps=sleeps)
    desc = r.describe(rows100, FULL)
    window = r.plan_window(FULL, desc, None)
    batches = r.read(FULL, desc, window, 40)
    seen = next(batches).column("id").to_pylist()
    killer = subprocess.Popen([sys.executable, "-c", KILLER, mysql_db, rows100], stdout=subprocess.PIPE, text=True)
    try:
        assert killer.stdout.readline().strip() == "locked"
        for b in batches:
            seen += b.column("id").to_pylist()
        out, _ = killer.communicate(timeout=60)
    finally:
        if killer.poll() is None:
            killer.kill()
        r.close()
    assert out.strip() != "killed 0", "the reader's query was never seen waiting"
    assert seen == list(range(1, 101)) and len(sleeps) >= 1


# ---------------------------------------------------------------- pool


def test_pool_never_exceeds_its_size_and_replaces_killed_connections(mysql_db) -> None:
    src = source_for(mysql_db, connection_pool={"min_connections": 1, "max_connections": 2, "retry_attempts": 2})
    pool = MySQLPool(src, SETTINGS, sleep=Sleeps())
    active, peak, lock = 0, 0, threading.Lock()

    def work() -> None:
        nonlocal active, peak
        with pool.connection() as conn:
            with lock:
                active += 1
                peak = max(peak, active)
            with conn.cursor() as cur:
                cur.execute("SELECT SLEEP(0.05), @@session.time_zone")
                assert cur.fetchone()[1] == "+00:00"
            with lock:
                active -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak == 2
    # kill every idle pooled connection: the next query still succeeds (dead one dropped, retried)
    with mysql_connect() as admin, admin.cursor() as cur:
        cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND ID <> CONNECTION_ID()",
                    (mysql_db,))
        idle = [row[0] for row in cur.fetchall()]
        assert len(idle) == 2
        for thread_id in idle:
            cur.execute(f"KILL CONNECTION {thread_id}")
    assert pool.query("SELECT 41 + 1") == [(42,)]
    pool.close()
    with pytest.raises(SourceError, match="closed"):
        with pool.connection():
            pass


def test_the_connectorx_child_ends_with_its_reader(mysql_db, rows100) -> None:
    import gc

    r = make_reader(mysql_db)
    run(r, rows100, FULL)
    child = r.cx.worker.proc
    assert child is not None and child.poll() is None
    r.close()
    assert child.poll() is not None
    r = make_reader(mysql_db)  # a reader dropped without close() takes its child along
    run(r, rows100, FULL)
    child = r.cx.worker.proc
    del r
    gc.collect()
    assert child.wait(timeout=10) is not None


def test_readers_of_one_pool_share_its_connectorx_children(mysql_db, rows100) -> None:
    from lakeshift.source import MySQLReader
    from lakeshift.source.worker import WorkerPool

    workers = WorkerPool()
    workers.prestart()
    pool = MySQLPool(source_for(mysql_db), SETTINGS, cx_workers=workers)
    first, second = (MySQLReader(pool.src, SETTINGS, pool) for _ in range(2))
    assert first.cx.worker is None and first.cx.shared is workers  # no child of its own
    run(first, rows100, FULL)
    run(second, rows100, FULL)
    worker, other = workers.acquire(), workers.acquire()
    child = worker.proc  # the child started first served both readers, and there is no other
    assert child is not None and child.poll() is None and worker.queries >= 2 and other.proc is None
    workers.release(worker)
    pool.close()  # the pool ends its children with itself
    assert child.wait(timeout=10) is not None


def test_connect_sets_up_the_session(mysql_db) -> None:
    conn = connect(source_for(mysql_db), SETTINGS)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT @@session.time_zone, @@character_set_connection, @@autocommit, DATABASE()")
            assert cur.fetchone() == ("+00:00", "utf8mb4", 1, mysql_db)
    finally:
        conn.close()


# ---------------------------------------------------------------- locks


def test_named_lock_is_exclusive_and_released(mysql_db) -> None:
    a, b = connect(source_for(mysql_db), SETTINGS), connect(source_for(mysql_db), SETTINGS)
    try:
        with named_lock(a, "lakeshift:test-lock", 0):
            with pytest.raises(LockBusyError) as err:
                with named_lock(b, "lakeshift:test-lock", 0.2, what="p1.orders"):
                    pass
            assert "p1.orders" in str(err.value) and "another lakeshift run" in str(err.value)
        with named_lock(b, "lakeshift:test-lock", 0):
            pass
    finally:
        a.close()
        b.close()


def test_table_lock_serialises_one_pipeline_table(reader, mysql_db) -> None:  # noqa: F811
    other = make_reader(mysql_db)
    try:
        with reader.table_lock("p1", "orders"):
            with pytest.raises(LockBusyError, match="p1.orders"):
                with other.table_lock("p1", "orders"):
                    pass
            with other.table_lock("p1", "customers"), other.table_lock("p2", "orders"):
                pass  # other tables and other pipelines are independent
        with other.table_lock("p1", "orders"):
            pass
    finally:
        other.close()


# ---------------------------------------------------------------- TLS


def test_tls_settings_for_pymysql() -> None:
    assert pymysql_ssl(TLSSettings(mode="disable")) is None
    req = pymysql_ssl(TLSSettings(mode="require"))
    assert req["verify_mode"] == ssl.CERT_NONE and not req["check_hostname"]
    with_ca = pymysql_ssl(TLSSettings(mode="require", ca="/etc/ca.pem"))
    assert with_ca["verify_mode"] == ssl.CERT_REQUIRED and with_ca["ca"] == "/etc/ca.pem"  # a CA is always checked
    full = pymysql_ssl(TLSSettings(mode="verify-full", ca="/etc/ca.pem", cert="/c.pem", key="/k.pem"))
    assert full["check_hostname"] and full["verify_mode"] == ssl.CERT_REQUIRED and full["cert"] == "/c.pem"


@pytest.mark.parametrize("tls, params", [
    ({"mode": "disable"}, {}),
    ({"mode": "prefer"}, {}),  # this server has no TLS: connectorx goes plain like the control connection
    ({"mode": "require"}, {"ssl-mode": "REQUIRED"}),
    ({"mode": "require", "ca": "/ca.pem"}, {"ssl-mode": "VERIFY_CA", "ssl-ca": "/ca.pem"}),
    ({"mode": "verify-ca", "ca": "/ca.pem"}, {"ssl-mode": "VERIFY_CA", "ssl-ca": "/ca.pem"}),
    ({"mode": "verify-full"}, {"ssl-mode": "VERIFY_IDENTITY"}),
])
def test_tls_settings_for_connectorx(mysql_db, tls, params) -> None:
    pool = MySQLPool(source_for(mysql_db, ssl=tls), SETTINGS)
    try:
        assert Connectorx(pool.src, SETTINGS, pool).tls_params() == params
    finally:
        pool.close()


def test_required_tls_against_a_server_without_it_fails_clearly(mysql_db) -> None:
    with pytest.raises(ConnectionFailed, match="SSL is required"):
        connect(source_for(mysql_db, ssl={"mode": "require"}), SETTINGS)
    conn = connect(source_for(mysql_db, ssl={"mode": "prefer"}), SETTINGS)  # falls back to plain text
    conn.close()


# ---------------------------------------------------------------- SSH tunnel


def test_reads_through_a_real_ssh_tunnel(sshd, ssh_keys, known_hosts, mysql_db, rows100) -> None:  # noqa: F811
    tunnel = {"enabled": True, "host": "127.0.0.1", "port": sshd, "username": "tester",
              "private_key_path": str(ssh_keys.client_key), "known_hosts": str(known_hosts)}
    r = make_reader(mysql_db, ssh_tunnel=tunnel)
    try:
        table, _, _ = run(r, rows100, FULL, batch_size=25)
        assert table.column("id").to_pylist() == list(range(1, 101))
        host, port = r.pool.endpoint()
        assert port != 3306  # the local end of the tunnel, used by PyMySQL and connectorx alike
    finally:
        r.close()


def test_connect_opens_and_closes_its_own_tunnel(monkeypatch, mysql_db) -> None:
    from lakeshift.connections import ssh

    events: list[str] = []

    @contextmanager
    def fake_tunnel(cfg: Any, remote_host: str, remote_port: int, *a: Any, **k: Any) -> Iterator[tuple[str, int]]:
        events.append(f"open {remote_host}:{remote_port}")
        yield "127.0.0.1", 3306
        events.append("close")

    monkeypatch.setattr(ssh, "tunnel", fake_tunnel)
    src = source_for(mysql_db, host="db.internal", ssh_tunnel={"enabled": True, "host": "bastion", "username": "u"})
    conn = connect(src, SETTINGS)
    assert events == ["open db.internal:3306"]
    conn.close()
    assert events == ["open db.internal:3306", "close"]
    pool = MySQLPool(src, SETTINGS)
    for _ in range(3):
        with pool.connection() as c, c.cursor() as cur:
            cur.execute("SELECT 1")
    pool.close()
    assert events.count("close") == 2 and events.count("open db.internal:3306") == 2  # one tunnel per pool
