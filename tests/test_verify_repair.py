"""`verify --repair`: a target tampered with in every column type is mended
through the lake (a merge batch of the rows read again, a delete batch of the
extra keys, both loaded with their `_lakeshift_loads` records) and a second
verify exits 0; the watermark does not move; rows not yet synced stay pending;
a repair killed after its first batch converges; a keyless table is not repaired."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kit.cli import run_cli
from kit.targets import make_target
from test_types_e2e import table_cfg
from test_verify_deep import CHANGES, SAME, copied  # noqa: F401 - the fixture
from verify_kit import pipeline_config, tamper

from conftest import mysql_exec

TAMPER = [*[f"UPDATE hostile SET {change} WHERE id = {i}" for i, change in CHANGES.items()], *SAME,
          "DELETE FROM hostile WHERE id IN (64, 65)",
          "INSERT INTO hostile (id, zdn, zdt) VALUES (1000, DATE '2000-01-01', TIMESTAMP '2000-01-01 00:00:00')"]


@pytest.mark.parametrize("kind", ["postgres", "duckdb"])
def test_repair_mends_every_change_and_a_second_verify_exits_0(kind: str, copied: None, mysql_db: str,  # noqa: F811
                                                               tmp_path: Path, cli: Any,
                                                               request: pytest.FixtureRequest) -> None:
    tgt = make_target(kind, request, tmp_path)
    config = pipeline_config(tmp_path, mysql_db, tgt, table_cfg())
    assert cli("sync", "pipeline", "-p", "p1", "-t", "hostile", config_dir=config).exit_code == 0
    tamper(tgt, *TAMPER)
    assert cli("verify", "-p", "p1", "-t", "hostile", "--deep", config_dir=config).exit_code == 3

    mended = cli("verify", "-p", "p1", "-t", "hostile", "--deep", "--repair", config_dir=config)
    assert mended.exit_code == 0, mended.output
    assert (f"hostile: repaired: {len(CHANGES) + 2} row(s) read again from MySQL and merged, 1 extra key(s) "
            "deleted") in mended.stdout
    again = cli("verify", "-p", "p1", "-t", "hostile", "--deep", config_dir=config)
    assert again.exit_code == 0, again.output
    loads = tgt.query(f'SELECT "mode", "rows", "deleted" FROM {tgt.name("_lakeshift_loads")} ORDER BY "batch_id"')
    assert [(m, r, d or 0) for m, r, d in loads] == [("replace", 35, 0), ("merge", len(CHANGES) + 2, 0),
                                                     ("delete", 0, 1)]  # the snapshot, then the repair batches


def _hybrid(mysql: Any) -> dict[str, Any]:
    mysql_exec(mysql, """CREATE TABLE items (id INT NOT NULL PRIMARY KEY, name VARCHAR(20) NOT NULL,
        updated_at DATETIME(6) NOT NULL, KEY ix (updated_at, id))""")
    with mysql.cursor() as cur:
        cur.executemany("INSERT INTO items VALUES (%s, %s, %s)",
                        [(i, f"n{i}", f"2026-01-01 00:00:{i % 60:02d}") for i in range(1, 201)])
    return {"items": {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id"}}


def test_repair_keeps_the_watermark_and_leaves_pending_rows_to_the_next_run(mysql: Any, mysql_db: str,
                                                                            tmp_path: Path, cli: Any,
                                                                            request: pytest.FixtureRequest) -> None:
    tgt = make_target("postgres", request, tmp_path)
    config = pipeline_config(tmp_path, mysql_db, tgt, _hybrid(mysql))
    assert cli("sync", "pipeline", "-p", "p1", "-t", "items", config_dir=config).exit_code == 0
    def watermark() -> str:  # the cursor, not which file holds it
        return cli("watermark", "get", "-p", "p1", "-t", "items", config_dir=config).stdout.splitlines()[1].split("[")[0]

    before = watermark()
    mysql_exec(mysql, "INSERT INTO items VALUES (500, 'new', '2026-02-01')",  # pending: not synced yet
               "DELETE FROM items WHERE id = 3")
    tamper(tgt, "UPDATE items SET name = 'x' WHERE id = 10", "DELETE FROM items WHERE id = 11")
    mended = cli("verify", "-p", "p1", "-t", "items", "--deep", "--repair", "--json", config_dir=config)
    assert mended.exit_code == 0, mended.output
    import json

    (t,) = json.loads(mended.stdout)["tables"]
    assert (t["repaired_rows"], t["repaired_deletes"], t["pending"], t["equal"]) == (2, 1, 1, True)
    assert watermark() == before and "timestamp=2026-01-01T00:00:59" in before
    assert cli("sync", "pipeline", "-p", "p1", "-t", "items", config_dir=config).exit_code == 0
    after = cli("verify", "-p", "p1", "-t", "items", "--deep", "--json", config_dir=config)
    assert after.exit_code == 0 and json.loads(after.stdout)["tables"][0]["pending"] == 0


@pytest.mark.slow
def test_a_repair_killed_after_its_rows_batch_converges(mysql: Any, mysql_db: str, tmp_path: Path, cli: Any,
                                                        request: pytest.FixtureRequest) -> None:
    tgt = make_target("postgres", request, tmp_path)
    config = pipeline_config(tmp_path, mysql_db, tgt, _hybrid(mysql))
    assert cli("sync", "pipeline", "-p", "p1", "-t", "items", config_dir=config).exit_code == 0
    tamper(tgt, "UPDATE items SET name = 'x' WHERE id = 10", "INSERT INTO items VALUES (999, 'e', '2026-01-01')")
    killed = run_cli(config, "verify", "-p", "p1", "-t", "items", "--deep", "--repair",
                     env={"LAKESHIFT_FAULT": "after_repair_manifest"})
    assert killed.returncode == -9
    assert cli("verify", "-p", "p1", "-t", "items", "--deep", config_dir=config).exit_code == 3  # nothing loaded
    again = cli("verify", "-p", "p1", "-t", "items", "--deep", "--repair", config_dir=config)
    assert again.exit_code == 0, again.output
    assert cli("verify", "-p", "p1", "-t", "items", "--deep", config_dir=config).exit_code == 0
    assert tgt.count("items") == 200 and tgt.count("items", distinct='"id"') == 200


def test_a_keyless_table_is_not_repaired(mysql: Any, mysql_db: str, tmp_path: Path, cli: Any,
                                         request: pytest.FixtureRequest) -> None:
    mysql_exec(mysql, "CREATE TABLE events (ts DATETIME(6) NOT NULL, what VARCHAR(20))",
               "INSERT INTO events VALUES ('2026-01-01', 'a'), ('2026-01-02', 'b')")
    tgt = make_target("duckdb", request, tmp_path)
    config = pipeline_config(tmp_path, mysql_db, tgt, {"events": {"cdc_strategy": "full_sync"}})
    assert cli("sync", "pipeline", "-p", "p1", "-t", "events", config_dir=config).exit_code == 0
    tamper(tgt, "DELETE FROM events WHERE what = 'a'")
    result = cli("verify", "-p", "p1", "-t", "events", "--repair", config_dir=config)
    assert result.exit_code == 3
    assert "events: not repaired: a table without a key" in result.stdout
