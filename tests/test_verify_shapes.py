"""verify on tables of every shape: composite keys whose names hold spaces and
non-ASCII letters, a keyless table (counts and multiset checksums), rows not
yet synced (pending, not differences), and TIMESTAMP(6) values across a DST
change read by targets whose session zone is not UTC."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kit.targets import make_target
from verify_kit import example_ids, pipeline_config, tamper, verify

from conftest import mysql_exec

TARGETS = ["postgres", "duckdb"]


@pytest.mark.parametrize("kind", TARGETS)
def test_composite_key_with_spaces_and_unicode_in_its_names(kind: str, mysql: Any, mysql_db: str, tmp_path: Path,
                                                            cli: Any, request: pytest.FixtureRequest) -> None:
    mysql_exec(mysql, """CREATE TABLE `order lines` (`order id` INT NOT NULL, `línea` VARCHAR(20) NOT NULL,
        `qty ñ` INT NULL, price DOUBLE NULL, PRIMARY KEY (`order id`, `línea`)) CHARACTER SET utf8mb4""")
    with mysql.cursor() as cur:  # price: compared in Arrow, matched by the composite key's hash
        cur.executemany("INSERT INTO `order lines` VALUES (%s, %s, %s, %s)",
                        [(o, line, o * 10, o / 3) for o in range(1, 101) for line in ("a", "B", "ç 😀")])
    tgt = make_target(kind, request, tmp_path)
    config = pipeline_config(tmp_path, mysql_db, tgt, {"order lines": {"cdc_strategy": "full_sync"}})
    assert cli("sync", "pipeline", "-p", "p1", "-t", "order lines", config_dir=config).exit_code == 0
    assert verify(config, ["order lines"], deep=True)["order lines"].equal

    tamper(tgt, """DELETE FROM "order lines" WHERE "order id" = 7 AND "línea" = 'ç 😀'""",
           """INSERT INTO "order lines" VALUES (7, 'b', 1, 0)""",  # 'b' is not 'B'
           """UPDATE "order lines" SET "qty ñ" = NULL WHERE "order id" = 9 AND "línea" = 'a'""",
           """UPDATE "order lines" SET price = price + 1e-13 WHERE "order id" = 12 AND "línea" = 'B'""")
    r = verify(config, ["order lines"], deep=True)["order lines"]
    assert (r.missing, r.extra, r.different) == (1, 1, 2)
    assert r.key == ["order id", "línea"]
    assert r.examples == {"missing": [{"order id": 7, "línea": "ç 😀"}], "extra": [{"order id": 7, "línea": "b"}],
                          "different": [{"order id": 9, "línea": "a"}, {"order id": 12, "línea": "B"}]}
    # --repair by the composite key: the missing and changed rows read again, the extra key deleted
    mended = verify(config, ["order lines"], deep=True, repair=True)["order lines"]
    assert (mended.repaired_rows, mended.repaired_deletes) == (3, 1) and mended.equal
    assert verify(config, ["order lines"], deep=True)["order lines"].equal


@pytest.mark.parametrize("kind", TARGETS)
def test_keyless_table_counts_and_multiset_checksums(kind: str, mysql: Any, mysql_db: str, tmp_path: Path,
                                                     cli: Any, request: pytest.FixtureRequest) -> None:
    mysql_exec(mysql, "CREATE TABLE events (ts DATETIME(6) NOT NULL, what VARCHAR(20) NULL, n DOUBLE NULL)")
    with mysql.cursor() as cur:  # repeated rows: a multiset, not a set
        cur.executemany("INSERT INTO events VALUES (%s, %s, %s)",
                        [(f"2026-01-01 00:00:{i % 50:02d}", "same" if i % 3 else None, 0.5) for i in range(200)])
    tgt = make_target(kind, request, tmp_path)
    config = pipeline_config(tmp_path, mysql_db, tgt, {"events": {"cdc_strategy": "full_sync"}})
    assert cli("sync", "pipeline", "-p", "p1", "-t", "events", config_dir=config).exit_code == 0
    same = verify(config, ["events"], deep=True)["events"]
    assert same.equal and not same.keyed
    assert any("no key: row counts and multiset checksums only" in n for n in same.notes)
    assert not any("not compared" in n for n in same.notes)  # n DOUBLE: hashed in SQL, so compared too

    # one copy of a repeated row gone, one more copy of another, one value changed
    tamper(tgt, "DELETE FROM events WHERE rowid IN (SELECT rowid FROM events WHERE what IS NULL LIMIT 1)"
           if kind == "duckdb" else
           "DELETE FROM events WHERE ctid IN (SELECT ctid FROM events WHERE what IS NULL LIMIT 1)",
           "INSERT INTO events SELECT * FROM events WHERE what = 'same' LIMIT 1",
           "UPDATE events SET what = 'other' WHERE ts = TIMESTAMP '2026-01-01 00:00:49' AND what = 'same'")
    r = verify(config, ["events"])["events"]
    n_updated = sum(1 for i in range(200) if i % 50 == 49 and i % 3)  # the rows the UPDATE changed
    assert (r.missing, r.extra, r.different) == (1 + n_updated, 1 + n_updated, 0)
    tamper(tgt, "UPDATE events SET n = 0.5000000000000001 WHERE ts = TIMESTAMP '2026-01-01 00:00:48'")  # next double
    n_floats = sum(1 for i in range(200) if i % 50 == 48)
    r = verify(config, ["events"], deep=True)["events"]
    assert (r.missing, r.extra) == (1 + n_updated + n_floats, 1 + n_updated + n_floats)
    assert r.examples == {} and r.target_rows == 200


@pytest.mark.parametrize("kind", TARGETS)
def test_rows_beyond_the_loaded_watermark_are_pending_not_differences(kind: str, mysql: Any, mysql_db: str,
                                                                      tmp_path: Path, cli: Any,
                                                                      request: pytest.FixtureRequest) -> None:
    mysql_exec(mysql, """CREATE TABLE items (id INT NOT NULL PRIMARY KEY, name VARCHAR(20) NOT NULL,
        updated_at DATETIME(6) NOT NULL, KEY ix (updated_at, id))""")
    with mysql.cursor() as cur:
        cur.executemany("INSERT INTO items VALUES (%s, %s, %s)",
                        [(i, f"n{i}", f"2026-01-01 00:00:{i % 60:02d}") for i in range(1, 301)])
    tgt = make_target(kind, request, tmp_path)
    table = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id"}
    config = pipeline_config(tmp_path, mysql_db, tgt, {"items": table})
    assert cli("sync", "pipeline", "-p", "p1", "-t", "items", config_dir=config).exit_code == 0
    mysql_exec(mysql, "INSERT INTO items VALUES (301, 'new', '2026-02-01'), (302, 'new', '2026-02-01')",
               "UPDATE items SET name = 'changed', updated_at = '2026-02-01' WHERE id IN (5, 6, 7)",
               "DELETE FROM items WHERE id = 9")
    r = verify(config, ["items"], deep=True)["items"]
    assert (r.source_rows, r.target_rows, r.pending) == (301, 300, 5)
    assert (r.missing, r.extra, r.different) == (0, 1, 0)  # the deleted row is a real difference
    assert example_ids(r, "extra") == [9]

    assert cli("sync", "pipeline", "-p", "p1", "-t", "items", config_dir=config).exit_code == 0
    after = verify(config, ["items"], deep=True)["items"]
    assert (after.pending, after.missing, after.extra, after.different) == (0, 0, 1, 0)


@pytest.mark.parametrize("kind", TARGETS)
def test_timestamps_across_dst_in_a_target_session_that_is_not_utc(kind: str, mysql: Any, mysql_db: str,
                                                                   tmp_path: Path, cli: Any,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   request: pytest.FixtureRequest) -> None:
    mysql_exec(mysql, "SET time_zone = '+00:00'",
               "CREATE TABLE t (id INT PRIMARY KEY, ts TIMESTAMP(6) NULL, wall DATETIME(6) NULL)",
               # 01:30 in New York twice on 2026-11-01 (EDT, then EST), and the spring gap
               "INSERT INTO t VALUES (1, '2026-11-01 05:30:00.000001', '2026-11-01 01:30:00'),"
               " (2, '2026-11-01 06:30:00.000001', '2026-11-01 01:30:00'), (3, '2026-03-08 07:00:00', '2026-03-08 02:30:00')")
    tgt = make_target(kind, request, tmp_path)
    config = pipeline_config(tmp_path, mysql_db, tgt, {"t": {"cdc_strategy": "full_sync"}})
    assert cli("sync", "pipeline", "-p", "p1", "-t", "t", config_dir=config).exit_code == 0
    monkeypatch.setenv("PGTZ", "America/New_York")
    monkeypatch.setenv("TZ", "America/New_York")
    assert verify(config, ["t"], deep=True)["t"].equal
    tamper(tgt, "UPDATE t SET ts = ts - INTERVAL '1 hour' WHERE id = 2")  # the same wall time in New York as id 1
    r = verify(config, ["t"], deep=True)["t"]
    assert (r.different, example_ids(r, "different")) == (1, [2])
