"""Issue 10: a source that is down, a statement that never ends, a connection
that stops answering. Each fails the run in one line, in bounded time.

- A pipeline of several tables on a port where nothing listens: the first
  table's retries end with the source unreachable, it is marked down for the
  run, and the other tables fail at once with the same line (not one round of
  retries each).
- statement_timeout: a page query waiting on LOCK TABLES is stopped by the
  server (MariaDB max_statement_time) and the run says which setting.
- stall_timeout: a TCP proxy between lakeshift and MariaDB stops forwarding in
  the middle of a result, both ends left open; the reader's watchdog kills the
  connectorx child and the run fails naming the table, the wait and the setting.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import MYSQL, mysql_connect
from kit.cli import assert_one_line_error, sync
from kit.config import build_config, set_source
from kit.lake import local_storage, manifest_ids
from kit.net import TcpProxy, free_port
from kit.source import create_items
from kit.targets import duckdb_config, make_target
from source_kit import make_reader

from lakeshift.config.models import MySQLSource
from lakeshift.source.limits import stall_seconds, statement_limit_sql

RETRIES = re.compile(r"transient error, retry \d+/\d+")
FAILED = re.compile(r"ERROR lakeshift\.engine: (\w+): FAILED: (.*)")
FULL_SYNC = {"cdc_strategy": "full_sync"}


# ---------------------------------------------------------------- a source that is down


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["sequential", "parallel"])
def test_a_down_source_fails_every_table_after_one_tables_retries(strategy: str, mysql_db: str,
                                                                  tmp_path: Path) -> None:
    tables = {f"t{i}": FULL_SYNC for i in range(6)}
    config = build_config(tmp_path / "config", mysql_db, duckdb_config(tmp_path / "t.duckdb"),
                          local_storage(tmp_path / "lake"), tables,
                          processing={"strategy": strategy, "max_parallel_tables": 2})
    delay, port = 1.5, free_port()  # one table's retries wait 1.5 s + 3 s; nothing listens on the port
    set_source(config, retry_delay=delay, port=port, connection_pool={"retry_attempts": 2})
    started = time.monotonic()
    result = sync(config, "p1", tuple(tables), timeout=120)
    elapsed = time.monotonic() - started

    line = assert_one_line_error(result, "6 table(s) failed", "(2003)")
    failed = dict(FAILED.findall(result.stderr))
    assert sorted(failed) == sorted(tables), result.stderr
    assert len(set(failed.values())) == 1, failed  # every table: the same one line
    assert f"127.0.0.1:{port}/" in line
    # one table retried (two at once when parallel); before, each of the six did: 12 retries, 27 s of waits
    retries = RETRIES.findall(result.stderr)
    assert (len(retries) == 2) if strategy == "sequential" else (2 <= len(retries) <= 4), result.stderr
    assert elapsed < 3 * delay + 8, (elapsed, result.stderr)
    assert "is unreachable; the run's other tables on it fail without trying again" in result.stderr


@pytest.mark.slow
def test_a_failing_query_of_one_table_does_not_mark_the_source_down(mysql: Any, mysql_db: str,
                                                                     tmp_path: Path) -> None:
    """Only 'cannot reach' marks the source down: a table that does not exist
    fails alone, the next table is read."""
    create_items(mysql, 10)
    config = build_config(tmp_path / "config", mysql_db, duckdb_config(tmp_path / "t.duckdb"),
                          local_storage(tmp_path / "lake"), {"missing": FULL_SYNC, "items": FULL_SYNC})
    result = sync(config, "p1", ("missing", "items"), timeout=120)
    assert_one_line_error(result, "1 table(s) failed (missing)")
    assert "unreachable" not in result.stderr
    assert manifest_ids(local_storage(tmp_path / "lake")) != []


# ---------------------------------------------------------------- statement_timeout


@pytest.mark.slow
def test_a_statement_held_up_on_the_server_is_stopped_by_statement_timeout(mysql: Any, mysql_db: str,
                                                                         tmp_path: Path,
                                                                         request: pytest.FixtureRequest) -> None:
    create_items(mysql, 100)
    target = make_target("duckdb", request, tmp_path)
    storage = local_storage(tmp_path / "lake")
    config = build_config(tmp_path / "config", mysql_db, target.config, storage, {"items": FULL_SYNC})
    set_source(config, statement_timeout="2s")
    locker = mysql_connect(mysql_db)
    try:
        with locker.cursor() as cur:
            cur.execute("LOCK TABLES items WRITE")  # the page query waits for it (without a limit: for a day)
        started = time.monotonic()
        result = sync(config, timeout=90)
        elapsed = time.monotonic() - started
    finally:
        locker.close()  # releases the lock
    line = assert_one_line_error(result, "table", "items", "statement_timeout (2s)", "(1969)")
    assert "max_statement_time exceeded" in line and elapsed < 30, (elapsed, line)
    assert not target.exists("items") and manifest_ids(storage) == []


def test_the_statement_limit_reaches_the_server_session(mysql_db: str) -> None:
    """The connectorx session really carries it (MariaDB here: max_statement_time)."""
    for timeout, want in (("90m", 5400.0), (0, None)):
        reader = make_reader(mysql_db, statement_timeout=timeout)
        try:
            got = reader.cx.fetch("SELECT @@session.max_statement_time AS t", 10, "probe")[0].to_pylist()[0]["t"]
            with mysql_connect() as conn, conn.cursor() as cur:
                cur.execute("SELECT @@global.max_statement_time")
                server_default = float(cur.fetchone()[0])
            assert float(got) == (want if want is not None else server_default)
        finally:
            reader.close()


def test_the_statement_limit_in_each_server_flavour() -> None:
    """The SQL text for servers not running here (MySQL: milliseconds, read-only SELECTs)."""
    assert statement_limit_sql("8.0.36", 3600) == ["SET SESSION max_execution_time = 3600000"]
    assert statement_limit_sql("5.7.8-log", 1.5) == ["SET SESSION max_execution_time = 1500"]
    assert statement_limit_sql("5.6.51", 60) == []  # no such variable before 5.7.8
    assert statement_limit_sql("5.5.5-10.11.6-MariaDB-0+deb12u1", 60) == ["SET SESSION max_statement_time = 60.000000"]
    assert statement_limit_sql("11.4.2-MariaDB", 0.5) == ["SET SESSION max_statement_time = 0.500000"]
    assert statement_limit_sql("5.5.5-10.0.38-MariaDB", 60) == []  # before 10.1.1
    assert statement_limit_sql("8.0.36", 0) == []
    src = MySQLSource(host="h", statement_timeout="1h")
    assert stall_seconds(src) == 3660 and stall_seconds(MySQLSource(host="h", statement_timeout=0)) is None
    assert stall_seconds(MySQLSource(host="h", stall_timeout="5m")) == 300
    assert stall_seconds(MySQLSource(host="h", stall_timeout=0)) is None
    assert MySQLSource(host="h").statement_timeout == timedelta(hours=1)


# ---------------------------------------------------------------- stall_timeout


@pytest.mark.slow
def test_a_connection_that_stops_answering_mid_result_fails_in_stall_timeout(mysql: Any, mysql_db: str,
                                                                           tmp_path: Path,
                                                                           request: pytest.FixtureRequest) -> None:
    create_items(mysql, 60_000)  # ~4 MB of rows: the data connection passes 1 MB, the control ones never do
    proxy = TcpProxy(MYSQL["port"], stall_after=1 << 20)
    target = make_target("duckdb", request, tmp_path)
    storage = local_storage(tmp_path / "lake")
    config = build_config(tmp_path / "config", mysql_db, target.config, storage, {"items": FULL_SYNC})
    set_source(config, port=proxy.port, stall_timeout=4)
    try:
        started = time.monotonic()
        result = sync(config, timeout=90)  # before: blocked for ever
        elapsed = time.monotonic() - started
    finally:
        proxy.cut()
    line = assert_one_line_error(result, "table", "items", "MySQL sent nothing for 4s (stall_timeout)")
    assert proxy.stalled >= 1 and elapsed < 20, (proxy.stalled, elapsed)
    assert not target.exists("items") and manifest_ids(storage) == []
    assert "127.0.0.1" in line
