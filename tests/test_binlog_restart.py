"""cdc_strategy: binlog across a restart of the source server: the restarted server starts a
new binary log file and numbers its tables anew, so a table id the read knew for this table
before the restart can name another table after it (the reader keeps each table's map from
its first sight until DDL or a new log file: source/binlog/stream.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from binlog_kit import binlog_config, binlog_server, execute, last_table_id, new_database, restart, rows
from kit.cli import run_cli
from kit.source import norm
from kit.targets import duck_target

pytestmark = pytest.mark.slow

DDL = "CREATE TABLE {} (id INT NOT NULL PRIMARY KEY, name VARCHAR(40) NOT NULL, amount DECIMAL(12,2) NULL)"


def test_rows_of_another_table_under_a_table_id_reused_after_a_restart_are_not_this_tables(tmp_path: Path) -> None:
    server = binlog_server()
    try:
        db = new_database(server)
        execute(server, db, DDL.format("items"), DDL.format("other"), "INSERT INTO items VALUES (1, 'one', 1.5)")
        t = duck_target(tmp_path / "t.duckdb")
        config = binlog_config(tmp_path, server, db, t.config, {"items": {"cdc_strategy": "binlog"}})
        assert run_cli(config, "sync", "pipeline", "-p", "p1", "--all").returncode == 0
        for i in range(60):  # each reopening of items takes a new table id: well above a fresh server's first
            execute(server, db, "FLUSH NO_WRITE_TO_BINLOG TABLES items", f"UPDATE items SET amount = {i} WHERE id = 1")
        before = last_table_id(server, "items")
        restart(server)
        for i in range(before + 1):  # reopen `other` until it takes the id items had before the restart
            execute(server, db, "FLUSH NO_WRITE_TO_BINLOG TABLES other", f"INSERT INTO other VALUES ({i}, 'ghost', 9)")
            if last_table_id(server, "other") >= before:
                break
        assert last_table_id(server, "other") == before, "the restarted server gave other tables other ids"
        execute(server, db, "UPDATE items SET name = 'after the restart' WHERE id = 1")
        run = run_cli(config, "sync", "pipeline", "-p", "p1", "--all")
        assert run.returncode == 0, run.stdout + run.stderr
        assert t.rows("items", ["id", "name", "amount"]) == [tuple(norm(v) for v in r) for r in rows(
            server, db, "items", "id, name, amount")] == [(1, "after the restart", norm(59))]
    finally:
        server.stop()
