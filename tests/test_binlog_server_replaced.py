"""cdc_strategy binlog when the server behind the address is replaced for real
(mariadbd stopped, started again with another server_id and a binary log of
its own that holds none of the old GTIDs): on_position_lost fail stops the
table with one line and changes nothing; resnapshot takes a new snapshot that
converges, rows deleted meanwhile included, and the stream goes on from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from binlog_kit import binlog_config, binlog_server, execute, new_database, replace_server, rows
from kit.cli import run_cli
from kit.config import set_pipeline
from kit.targets import duck_target

pytestmark = pytest.mark.slow

DDL = "CREATE TABLE items (id INT NOT NULL PRIMARY KEY, name VARCHAR(40) NOT NULL)"


def sync(config: Path) -> Any:
    return run_cli(config, "sync", "pipeline", "-p", "p1", "--all")


def test_a_replaced_server_is_a_lost_position_fail_then_resnapshot(tmp_path: Path) -> None:
    server = binlog_server()
    try:
        db = new_database(server)
        execute(server, db, DDL, "INSERT INTO items VALUES (1, 'one'), (2, 'two'), (3, 'three')")
        t = duck_target(tmp_path / "t.duckdb")
        config = binlog_config(tmp_path, server, db, t.config, {"items": {"cdc_strategy": "binlog"}})
        assert sync(config).returncode == 0
        execute(server, db, "UPDATE items SET name = 'uno' WHERE id = 1")
        assert sync(config).returncode == 0 and t.rows("items", ["id", "name"])[0] == (1, "uno")
        # committed on the old server, never read from its log: only a new snapshot can see them
        execute(server, db, "DELETE FROM items WHERE id = 2", "INSERT INTO items VALUES (4, 'four')")
        replace_server(server, server_id=2)
        execute(server, db, "UPDATE items SET name = 'tres' WHERE id = 3")
        before = t.rows("items", ["id", "name"])

        failed = sync(config)
        assert failed.returncode != 0
        errors = [x for x in failed.stderr.splitlines() if x.startswith("Error:")]
        assert len(errors) == 1, failed.stderr
        assert ("is lost: the server is another one now (server_id:2, the position was taken on server_id:1)"
                in errors[0]), errors[0]
        assert "`lakeshift watermark reset -p p1 -t items`" in errors[0] and "on_position_lost: resnapshot" in errors[0]
        assert t.rows("items", ["id", "name"]) == before  # nothing changed

        set_pipeline(config, "binlog", {"on_position_lost": "resnapshot"})
        again = sync(config)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "server_id:2" in again.stdout and "new snapshot" in again.stdout, again.stdout
        assert t.rows("items", ["id", "name"]) == rows(server, db, "items", "id, name") == [
            (1, "uno"), (3, "tres"), (4, "four")]
        execute(server, db, "DELETE FROM items WHERE id = 1", "INSERT INTO items VALUES (5, 'five')")
        after = sync(config)  # read from the new server's log, from the snapshot's position
        assert after.returncode == 0 and "snapshot" not in after.stdout, after.stdout + after.stderr
        assert t.rows("items", ["id", "name"]) == rows(server, db, "items", "id, name")
        assert "(GTID 0-2-" in run_cli(config, "watermark", "get", "-p", "p1", "-t", "items").stdout
    finally:
        server.stop()
