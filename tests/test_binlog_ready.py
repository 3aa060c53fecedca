"""cdc_strategy: binlog refuses a server that cannot serve it before anything
runs, each refusal one line naming the server variable (or grant) and the
value needed; `connections test` says whether a source is ready. A throwaway
MariaDB that logs STATEMENTs (and no row metadata) for the module."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from binlog_kit import binlog_config, execute, new_database
from kit.cli import run_cli
from kit.targets import duck_target
from kit.servers import start_mariadb

pytestmark = pytest.mark.slow

TABLES = {"items": {"cdc_strategy": "binlog"}}


@pytest.fixture(scope="module")
def server() -> Any:
    s = start_mariadb(server_args=["--log-bin=mysql-bin", "--binlog-format=STATEMENT", "--server-id=2"])
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def config(server: Any, tmp_path: Path) -> Path:
    db = new_database(server)
    execute(server, db, "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(10))", "INSERT INTO items VALUES (1, 'a')")
    return binlog_config(tmp_path, server, db, duck_target(tmp_path / "t.duckdb").config, TABLES)


def error_line(run: Any) -> str:
    assert run.returncode != 0, run.stdout + run.stderr
    return next(x for x in run.stderr.splitlines() if x.startswith("Error:"))


def test_statement_logging_is_refused_before_anything_runs(config: Path, tmp_path: Path) -> None:
    line = error_line(run_cli(config, "sync", "pipeline", "-p", "p1", "--all"))
    assert "binlog_format is STATEMENT; binlog CDC needs binlog_format=ROW" in line
    assert "(and 1 more problem(s); `lakeshift connections test` lists them)" in line  # binlog_row_metadata
    assert not duck_target(tmp_path / "t.duckdb").exists("items") and not list((tmp_path / "lake").rglob("*.parquet"))
    probe = run_cli(config, "connections", "test", "src")
    assert probe.returncode == 0, probe.stderr
    assert "not ready for binlog CDC: binlog_format is STATEMENT" in probe.stdout
    assert "(and 1 more)" in probe.stdout


def test_compressed_binlog_is_refused_and_a_ready_server_says_so(server: Any, config: Path) -> None:
    execute(server, "mysql", "SET GLOBAL binlog_format = ROW", "SET GLOBAL binlog_row_metadata = FULL")
    try:
        probe = run_cli(config, "connections", "test", "src")
        assert "; ready for binlog CDC" in probe.stdout, probe.stdout + probe.stderr
        execute(server, "mysql", "SET GLOBAL log_bin_compress = ON")
        line = error_line(run_cli(config, "sync", "pipeline", "-p", "p1", "--all"))
        assert "log_bin_compress is ON; binlog CDC needs log_bin_compress=OFF" in line
    finally:
        execute(server, "mysql", "SET GLOBAL binlog_format = STATEMENT", "SET GLOBAL binlog_row_metadata = NO_LOG",
                "SET GLOBAL log_bin_compress = OFF")


def test_a_user_without_replication_grants_is_refused(server: Any, config: Path) -> None:
    execute(server, "mysql", "SET GLOBAL binlog_format = ROW", "SET GLOBAL binlog_row_metadata = FULL",
            "CREATE USER IF NOT EXISTS 'reader'@'%' IDENTIFIED BY 'pw'", "GRANT SELECT ON *.* TO 'reader'@'%'")
    try:
        from kit.config import set_source

        set_source(config, username="reader", password="pw")
        line = error_line(run_cli(config, "sync", "pipeline", "-p", "p1", "--all"))
        assert "lacks REPLICATION SLAVE; binlog CDC needs GRANT REPLICATION SLAVE ON *.* TO reader@%" in line
        assert "(and 1 more problem(s)" in line  # REPLICATION CLIENT
    finally:
        execute(server, "mysql", "SET GLOBAL binlog_format = STATEMENT", "SET GLOBAL binlog_row_metadata = NO_LOG",
                "DROP USER IF EXISTS 'reader'@'%'")
