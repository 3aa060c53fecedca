"""verify --deep on the type tests' hostile values (tests/test_types_e2e.py):
equal values hash equally in MariaDB, PostgreSQL and DuckDB (a synced table is
equal, every window), and a target tampered with in every column type is found
exactly: the keys changed, deleted and added, no more."""

from __future__ import annotations

import dataclasses

from pathlib import Path
from typing import Any

import pytest
from kit.targets import make_target
from test_types_e2e import ROWS, insert_rows, table_cfg
from verify_kit import deep_finds, example_ids, pipeline_config, synced, tamper, verify

from conftest import mysql_exec
from test_types_e2e import DDL

COPIES = (10, 20, 30, 40, 50, 60)  # rows 1-5 copied to 11-15, 21-25, ... : one change per row
CHANGES = {  # id: the change (the copy of row id % 10)
    11: "zdn = DATE '2001-01-01'",
    12: "zdt = TIMESTAMP '2020-01-01 00:00:00.000001'",
    13: "ch = 'NULl'",
    14: "zts = TIMESTAMPTZ '2038-01-19 04:14:08.000000+01'",  # 1 µs after MySQL's instant
    15: "flag = 1",  # NULL -> 1
    21: "biu = 18446744073709551614",
    22: "bi = 9223372036854775806",
    23: "d65 = '0.000000000000000000000000000002'",
    24: "d38 = -0.0000000002",
    25: "zts = TIMESTAMPTZ '2000-01-01 00:00:00+00'",  # NULL -> a value
    31: "f = CAST('3.4028232635611926e38' AS REAL)",  # the next float32 down
    32: "db = CAST('-1.7976931348623155e308' AS DOUBLE PRECISION)",
    33: "vc = NULL",  # the text 'NULL' -> SQL NULL
    34: "tt = 'tab\there\nnew '",  # a trailing space
    35: "s = ''",  # NULL -> ''
    41: "js = '{\"k\": 1}'",
    42: "bl = '\\x00'::bytea",  # '' -> one zero byte
    43: "vb = '\\xfe'::bytea",
    44: "tm = INTERVAL '25:00:00.000001'",
    45: "b1 = 0",
    51: "b64 = 18446744073709551614",
    52: "en = 'a'",
    53: "st = 'x,y'",
    54: "yr = 2000",
    55: "g = '\\x01'::bytea",
    61: "vc = '😀😀😀😀😀😀😀😀😀😁'",
    62: "zd = DATE '2020-01-01'",  # NULL -> a date
}
SAME = ["UPDATE hostile SET zts = TIMESTAMPTZ '1970-01-01 02:00:01.000001+02' WHERE id = 63"]  # the same instant


@pytest.fixture
def copied(mysql: Any) -> None:
    mysql_exec(mysql, DDL)
    insert_rows(mysql, ROWS)
    cols = "zd, zdn, zdt, zts, biu, bi, d65, d38, f, db, vc, tt, ch, s, flag, js, bl, vb, tm, b1, b64, en, st, yr, g"
    mysql_exec(mysql, "SET SESSION sql_mode = ''", *[
        f"INSERT INTO hostile (id, {cols}) SELECT id + {n}, {cols} FROM hostile WHERE id <= 5" for n in COPIES])


@pytest.mark.parametrize("kind", ["postgres", "duckdb"])
def test_hostile_values_hash_equally_and_every_change_is_found(kind: str, copied: None, mysql_db: str,
                                                               tmp_path: Path, cli: Any,
                                                               request: pytest.FixtureRequest) -> None:
    tgt = make_target(kind, request, tmp_path)
    config = pipeline_config(tmp_path, mysql_db, tgt, table_cfg())
    result = cli("sync", "pipeline", "-p", "p1", "-t", "hostile", config_dir=config)
    assert result.exit_code == 0, result.output + result.stderr

    same = verify(config, ["hostile"], deep=True)["hostile"]
    assert (same.source_rows, same.target_rows, same.windows_differing) == (35, 35, 0)
    assert same.equal and not same.examples, same
    assert any("tm, g: compared in Arrow" in n for n in same.notes), same.notes  # floats: hashed in SQL

    tamper(tgt, *[f"UPDATE hostile SET {change} WHERE id = {i}" for i, change in CHANGES.items()], *SAME,
           "DELETE FROM hostile WHERE id IN (64, 65)",
           "INSERT INTO hostile (id, zdn, zdt) VALUES (1000, DATE '2000-01-01', TIMESTAMP '2000-01-01 00:00:00'), "
           "(1001, DATE '2000-01-01', TIMESTAMP '2000-01-01 00:00:00')")
    r = verify(config, ["hostile"], deep=True)["hostile"]
    assert (r.missing, r.extra, r.different, r.pending) == (2, 2, len(CHANGES), 0)
    assert example_ids(r, "missing") == [64, 65] and example_ids(r, "extra") == [1000, 1001]
    assert len(r.examples["different"]) == 10  # up to 10 examples
    keys_only = verify(config, ["hostile"])["hostile"]
    assert (keys_only.missing, keys_only.extra, keys_only.different) == (2, 2, 0)


def test_changed_keys_are_exactly_the_changed_rows(copied: None, mysql_db: str, tmp_path: Path, cli: Any,
                                                   request: pytest.FixtureRequest) -> None:
    """All the different keys, not only the examples (DuckDB, the library's Outcome)."""
    from lakeshift.config.loader import load_config
    from lakeshift.load import open_target
    from lakeshift.source import MySQLReader
    from lakeshift.verify.table import TableJob, run

    tgt = make_target("duckdb", request, tmp_path)
    config = pipeline_config(tmp_path, mysql_db, tgt, table_cfg())
    assert cli("sync", "pipeline", "-p", "p1", "-t", "hostile", config_dir=config).exit_code == 0
    tamper(tgt, *[f"UPDATE hostile SET {change} WHERE id = {i}" for i, change in CHANGES.items()], *SAME)
    cfg = load_config(str(config))
    reader = MySQLReader(cfg.source("src"), cfg.settings)
    loader = open_target(cfg.target("dst"), cfg.settings)
    try:
        desc = reader.describe("hostile", cfg.pipeline("p1").tables["hostile"])
        outcome = run(TableJob(reader, desc, loader, "hostile", ["id"], deep=True))
    finally:
        loader.close()
        reader.close()
    assert sorted(k[0] for k in outcome.diff.different) == sorted(CHANGES)


@pytest.mark.parametrize("kind", ["postgres", "duckdb"])
def test_canonical_text_of_every_hostile_value_is_equal_across_engines(kind: str, mysql: Any, mysql_db: str,
                                                                       tmp_path: Path, cli: Any,
                                                                       request: pytest.FixtureRequest) -> None:
    """Column by column: MySQL's canonical text of each hostile value equals the target's."""
    from lakeshift.config.loader import load_config
    from lakeshift.source import MySQLReader
    from lakeshift.source.convert import ref
    from lakeshift.verify import canonical as C
    from lakeshift.verify.queries import Side
    from lakeshift.verify.sides import SourceSide

    mysql_exec(mysql, DDL)
    insert_rows(mysql, ROWS)
    tgt = make_target(kind, request, tmp_path)
    config = pipeline_config(tmp_path, mysql_db, tgt, table_cfg())
    assert cli("sync", "pipeline", "-p", "p1", "-t", "hostile", config_dir=config).exit_code == 0
    cfg = load_config(str(config))
    reader = MySQLReader(cfg.source("src"), cfg.settings)
    try:
        desc = reader.describe("hostile", cfg.pipeline("p1").tables["hostile"])
        engine = "PostgreSQL" if kind == "postgres" else "DuckDB"
        src = SourceSide(reader, desc, None).all_rows  # as verify reads it (utf8mb4 text: no conversion)
        assert src.utf8mb4 and src.utf8mb4 <= {c.name for c in desc.columns}
        dst = Side(engine, tgt.name("hostile"), lambda n: f'"{n}"')
        checked = []
        # a text column above INLINE_CHARS is hashed by md5: the same values, as if declared TEXT
        longer = [dataclasses.replace(c, name=c.name, data_type="text", char_max_length=65535)
                  for c in desc.columns if C.kind(c) == "text"]
        assert {C.kind(c) for c in longer} == {"long_text"} and len(longer) >= 5
        for c in [*desc.columns, *longer]:
            if C.sql_kind(c, engine) is None:
                continue
            want = dict(reader.pool.query(f"SELECT {ref('id')}, {src.text(c)} FROM {src.table_sql}"))
            got = dict(tgt.query(f'SELECT "id", {dst.text(c)} FROM {dst.table_sql}'))
            assert got == want, c.name
            checked.append(c.name)
    finally:
        reader.close()
    assert len(checked) >= 25


@pytest.mark.parametrize("kind", ["postgres", "duckdb"])
def test_short_texts_cannot_fake_a_separator_or_a_null(kind: str, mysql: Any, mysql_db: str, tmp_path: Path,
                                                       cli: Any, request: pytest.FixtureRequest) -> None:
    """Short text goes into the row's text as it is, after its length in bytes: a '|' moved from one
    column to the next, the text '~' (the NULL mark) and a text that looks like a length prefix are changes."""
    mysql_exec(mysql, "CREATE TABLE sep (id INT NOT NULL PRIMARY KEY, a VARCHAR(10), b VARCHAR(10), t TEXT) "
                      "CHARACTER SET utf8mb4",
               "INSERT INTO sep VALUES (1, 'a', 'b|c', 'x'), (2, NULL, '~', NULL), (3, '1:x', '', 'é'), "
               "(4, 'é', 'y', '')")
    tgt, config = synced(kind, request, tmp_path, mysql_db, cli, "sep")
    deep_finds(tgt, config, "sep", ["UPDATE sep SET a = 'a|b', b = 'c' WHERE id = 1",  # 'a|b|c' joined either way
                                    "UPDATE sep SET a = '~', b = NULL WHERE id = 2",
                                    "UPDATE sep SET a = 'x', b = '1:' WHERE id = 3",
                                    "UPDATE sep SET a = 'e' WHERE id = 4"], [1, 2, 3, 4])  # 'é': 2 bytes -> 1


@pytest.mark.parametrize("kind", ["postgres", "duckdb"])
def test_charsets_collations_and_fractional_digits(kind: str, mysql: Any, mysql_db: str, tmp_path: Path, cli: Any,
                                                   request: pytest.FixtureRequest) -> None:
    """Text in other charsets than utf8mb4 is hashed as its UTF-8 bytes, utf8mb4 text of different collations
    mixes in one row, and a DATETIME/TIMESTAMP of 0 to 6 fractional digits is hashed with 6 (the target's
    column holds microseconds: a change below the source's precision is found)."""
    mysql_exec(mysql, """CREATE TABLE mix (id INT NOT NULL PRIMARY KEY, l1 VARCHAR(20) CHARACTER SET latin1,
        u16 VARCHAR(20) CHARACTER SET utf16, u3 VARCHAR(20) CHARACTER SET utf8mb3,
        ci VARCHAR(20) COLLATE utf8mb4_unicode_ci, gi VARCHAR(20) COLLATE utf8mb4_general_ci,
        lt TEXT CHARACTER SET latin1, ut TEXT COLLATE utf8mb4_unicode_ci,
        d0 DATETIME NULL, d3 DATETIME(3) NULL, t2 TIMESTAMP(2) NULL DEFAULT NULL, dd DATE NULL)
        CHARACTER SET utf8mb4 COLLATE utf8mb4_bin""",
               "INSERT INTO mix VALUES (1, 'café', 'é😀z', 'ünï', 'Straße', 'ÀB', 'naïve', '北京 😀', "
               "'2024-03-31 01:59:59', '1999-12-31 23:59:59.999', '2038-01-19 03:14:07.99', '1000-01-01'), "
               "(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL), "
               "(3, '', '', '', '', '', '', '', '9999-12-31 23:59:59', '1000-01-01 00:00:00.001', "
               "'1970-01-01 00:00:01.01', '9999-12-31')")
    tgt, config = synced(kind, request, tmp_path, mysql_db, cli, "mix")
    same = verify(config, ["mix"], deep=True)["mix"]
    assert same.equal and not any("Arrow" in n for n in same.notes), same
    tamper(tgt, "UPDATE mix SET l1 = 'cafe' WHERE id = 1",
           "UPDATE mix SET d3 = TIMESTAMP '1999-12-31 23:59:59.999001' WHERE id = 1",
           "UPDATE mix SET u3 = 'ÜNÏ' WHERE id = 3")
    r = verify(config, ["mix"], deep=True)["mix"]
    assert (r.missing, r.extra, r.different) == (0, 0, 2) and example_ids(r, "different") == [1, 3]
    tamper(tgt, "UPDATE mix SET l1 = 'café' WHERE id = 1", "UPDATE mix SET u3 = '' WHERE id = 3",
           "UPDATE mix SET d3 = TIMESTAMP '1999-12-31 23:59:59.999' WHERE id = 1",
           "UPDATE mix SET d0 = TIMESTAMP '9999-12-31 23:59:59.000001' WHERE id = 3")
    r = verify(config, ["mix"], deep=True)["mix"]
    assert (r.missing, r.extra, r.different) == (0, 0, 1) and example_ids(r, "different") == [3]


@pytest.mark.parametrize("kind", ["postgres", "duckdb"])
def test_not_null_columns_and_a_null_in_the_target(kind: str, mysql: Any, mysql_db: str, tmp_path: Path, cli: Any,
                                                   request: pytest.FixtureRequest) -> None:
    """MySQL hashes a NOT NULL number as CONCAT_WS writes it and without COALESCE (canonical.row_hash); the
    target's column takes NULL, and a NULL there where MySQL holds 0, '' or '~' is a change."""
    mysql_exec(mysql, "CREATE TABLE nn (id BIGINT UNSIGNED NOT NULL PRIMARY KEY, n INT NOT NULL, "
                      "d DECIMAL(65,30) NOT NULL, b TINYINT(1) NOT NULL, s VARCHAR(10) NOT NULL, u BIGINT UNSIGNED NOT NULL)",
               "INSERT INTO nn VALUES (1, 0, 0, 0, '', 0), (2, -2147483648, -1.5, 1, '~', 18446744073709551615), "
               "(3, 7, 99999999999999999999999999999999999.999999999999999999999999999999, 1, 'a|b', 1)")
    tgt, config = synced(kind, request, tmp_path, mysql_db, cli, "nn")
    deep_finds(tgt, config, "nn", ["UPDATE nn SET n = NULL WHERE id = 1", "UPDATE nn SET s = NULL WHERE id = 2",
                                   "UPDATE nn SET d = NULL WHERE id = 3"], [1, 2, 3])
