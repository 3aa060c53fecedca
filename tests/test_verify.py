"""lakeshift verify against real MariaDB, PostgreSQL and DuckDB: a synced table
is equal; rows deleted from or added to the target are found exactly (key-only);
gone_keys returns the keys the target holds and MySQL no longer does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import mysql_exec
from kit.targets import make_target
from verify_kit import example_ids, pipeline_config, tamper, verify

TARGETS = ["postgres", "duckdb"]


def _items(mysql: Any, n: int = 500) -> None:
    mysql_exec(mysql, """CREATE TABLE items (
        id INT NOT NULL PRIMARY KEY, name VARCHAR(40) NOT NULL, amount DECIMAL(12,2) NULL,
        updated_at DATETIME(6) NOT NULL)""")
    with mysql.cursor() as cur:
        cur.executemany("INSERT INTO items VALUES (%s, %s, %s, %s)",
                        [(i, f"item {i}", f"{i}.50", f"2026-01-01 00:00:{i % 60:02d}.{i:06d}") for i in range(1, n + 1)])


@pytest.mark.parametrize("kind", TARGETS)
def test_key_only_finds_missing_and_extra_rows(kind: str, mysql: Any, mysql_db: str, tmp_path: Path, cli: Any,
                                               request: pytest.FixtureRequest) -> None:
    _items(mysql)
    target = make_target(kind, request, tmp_path)
    config = pipeline_config(tmp_path, mysql_db, target, {"items": {"cdc_strategy": "full_sync"}})
    assert cli("sync", "pipeline", "-p", "p1", "-t", "items", config_dir=config).exit_code == 0
    same = verify(config, ["items"])["items"]
    assert (same.equal, same.source_rows, same.target_rows, same.windows_differing) == (True, 500, 500, 0)

    tamper(target, "DELETE FROM items WHERE id IN (3, 77, 300)",
               "INSERT INTO items VALUES (1001, 'x', 1.00, TIMESTAMP '2026-01-01 00:00:00')",
               "UPDATE items SET name = 'changed' WHERE id = 10")
    r = verify(config, ["items"])["items"]
    assert (r.missing, r.extra, r.different, r.pending) == (3, 1, 0, 0)
    assert sorted(k["id"] for k in r.examples["missing"]) == [3, 77, 300]
    assert r.examples["extra"] == [{"id": 1001}]
    deep = verify(config, ["items"], deep=True)["items"]
    assert (deep.missing, deep.extra, deep.different) == (3, 1, 1)
    assert deep.examples["different"] == [{"id": 10}]


@pytest.mark.parametrize("kind", TARGETS)
def test_gone_keys(kind: str, mysql: Any, mysql_db: str, tmp_path: Path, cli: Any,
                   request: pytest.FixtureRequest) -> None:
    from lakeshift.config.loader import load_config
    from lakeshift.load import open_target
    from lakeshift.source import MySQLReader
    from lakeshift.verify import gone_keys

    _items(mysql)
    target = make_target(kind, request, tmp_path)
    config = pipeline_config(tmp_path, mysql_db, target, {"items": {"cdc_strategy": "hybrid", "cdc_id_column": "id",
                                                                    "cdc_timestamp_column": "updated_at"}})
    assert cli("sync", "pipeline", "-p", "p1", "-t", "items", config_dir=config).exit_code == 0
    mysql_exec(mysql, "DELETE FROM items WHERE id IN (5, 6, 499)", "INSERT INTO items VALUES (900, 'n', 1, NOW())")
    cfg = load_config(str(config))
    reader = MySQLReader(cfg.source("src"), cfg.settings)
    loader = open_target(cfg.target("dst"), cfg.settings)
    try:
        desc = reader.describe("items")
        keys = gone_keys(reader, desc, loader, "items", ["id"])
    finally:
        loader.close()
        reader.close()
    assert keys.schema.names == ["id"] and str(keys.schema.field("id").type) == "int32"
    assert sorted(keys.column("id").to_pylist()) == [5, 6, 499]


@pytest.mark.parametrize("kind", TARGETS)
def test_integer_keys_at_their_extremes(kind: str, mysql: Any, mysql_db: str, tmp_path: Path, cli: Any,
                                        request: pytest.FixtureRequest) -> None:
    """Keys only on one integer column use the key itself (no md5): negative keys, BIGINT UNSIGNED's
    maximum (numeric(20,0) in PostgreSQL, UBIGINT in DuckDB) land in the same windows on both sides."""
    mysql_exec(mysql, "CREATE TABLE u (id BIGINT UNSIGNED PRIMARY KEY)", "CREATE TABLE s (id BIGINT PRIMARY KEY)",
               "INSERT INTO u VALUES (0), (1), (18446744073709551615), (18446744073709551614), (9223372036854775808)",
               "INSERT INTO s VALUES (-9223372036854775808), (-1), (0), (1), (9223372036854775807), (-17)",
               # INT: (key mod p) * a must not overflow PostgreSQL's and DuckDB's 32-bit integer
               "CREATE TABLE i (id INT PRIMARY KEY)", "INSERT INTO i VALUES (-2147483648), (2147483647), (70000)",
               "CREATE TABLE w (id INT PRIMARY KEY)",
               "INSERT INTO w SELECT seq FROM seq_1_to_100",
               # BIGINT UNSIGNED below 2^63: cast to bigint as it is, while the target's keys are
               "CREATE TABLE n (id BIGINT UNSIGNED PRIMARY KEY)",
               "INSERT INTO n SELECT seq FROM seq_1_to_50", "INSERT INTO n VALUES (9223372036854775807)")
    target = make_target(kind, request, tmp_path)
    config = pipeline_config(tmp_path, mysql_db, target, {"u": {"cdc_strategy": "full_sync"},
                                                          "s": {"cdc_strategy": "full_sync"},
                                                          "i": {"cdc_strategy": "full_sync"},
                                                          "w": {"cdc_strategy": "full_sync"},
                                                          "n": {"cdc_strategy": "full_sync"}})
    assert cli("sync", "pipeline", "-p", "p1", "--all", config_dir=config).exit_code == 0
    assert all(r.equal for r in verify(config, ["u", "s", "i", "w", "n"]).values())
    tamper(target, "DELETE FROM n WHERE id = 7", "INSERT INTO n VALUES (9223372036854775808)")
    r = verify(config, ["n"])["n"]
    assert (r.missing, r.extra, example_ids(r, "missing"), example_ids(r, "extra")) == (1, 1, [7], [2 ** 63]), r
    tamper(target, "DELETE FROM n WHERE id = 9223372036854775808")
    assert verify(config, ["n"])["n"].missing == 1
    # w (16 windows): two keys of one window swapped for two others of the same sum in it; a checksum
    # linear in the key (a sum of (key mod p) * a mod p) would not see it
    tamper(target, "DELETE FROM w WHERE id IN (20, 68)", "INSERT INTO w VALUES (-28), (116)")
    r = verify(config, ["w"])["w"]
    assert (r.windows, r.missing, r.extra) == (16, 2, 2), r
    tamper(target, "DELETE FROM u WHERE id = 18446744073709551615", "DELETE FROM s WHERE id = -9223372036854775808",
           "INSERT INTO s VALUES (-2)")
    r = verify(config, ["u", "s"])
    assert (r["u"].missing, r["u"].extra, r["u"].examples) == (1, 0, {"missing": [{"id": 18446744073709551615}]})
    assert (r["s"].missing, r["s"].extra) == (1, 1)
    assert r["s"].examples == {"missing": [{"id": -9223372036854775808}], "extra": [{"id": -2}]}


def test_window_checksums_in_python_equal_mysql_s(mysql: Any, mysql_db: str) -> None:
    """verify/lookup.py explains a differing window by recomputing MySQL's aggregate from the keys
    it found: its Python sums must be MySQL's exactly (negative keys, BIGINT UNSIGNED above 2^63)."""
    from lakeshift.config.models import ConnectionSettings, MySQLSource
    from lakeshift.source import MySQLReader
    from lakeshift.source.convert import ref
    from lakeshift.source.positions import from_sql
    from lakeshift.verify import canonical as C
    from lakeshift.verify import lookup
    from lakeshift.verify import queries as Q

    mysql_exec(mysql, "CREATE TABLE u (id BIGINT UNSIGNED PRIMARY KEY)", "CREATE TABLE s (id BIGINT PRIMARY KEY)",
               "INSERT INTO u VALUES (0), (1), (18446744073709551615), (9223372036854775808), (4294967296), (77)",
               "INSERT INTO s VALUES (-9223372036854775808), (-1), (0), (9223372036854775807), (-2147483649), (33)")
    reader = MySQLReader(MySQLSource(host="127.0.0.1", port=3306, username="root", database=mysql_db),
                         ConnectionSettings())
    try:
        for table in ("u", "s"):
            desc = reader.describe(table)
            side = Q.Side(C.MYSQL, from_sql(desc), ref)
            shape = Q.Shape(desc.columns, desc.columns, 4)
            got = {int(b): tuple(int(v) for v in rest) for b, *rest in reader.pool.query(Q.aggregate_sql(side, shape))}
            keys = [int(k) for k, in reader.pool.query(f"SELECT {shape.hashes(side)[0]} FROM {side.table_sql}")]
            assert len(got) > 1 and min(keys) < 0
            assert got == {b: lookup.window_aggregate(k for k in keys if k & 3 == b) for b in got}, table
    finally:
        reader.close()
