"""Case 16: the hostile value table, end to end through the CLI (MySQL ->
Parquet lake -> PostgreSQL, DuckDB, and the Redshift SQL), every value
compared with what MySQL holds. The policies asserted here are the ones in
docs/types.md:

- zero dates (NULL and NOT NULL columns, partial ones like 2020-05-00) -> NULL
  (`zero_dates: null`, the default) or the run stops (`zero_dates: error`);
- TINYINT(1) holding 2 or -1 stops the run with the way out while
  `tinyint1_as_boolean` is true; with false every value is kept;
- a NUL character in text cannot be stored by PostgreSQL: the batch is
  refused naming the column; DuckDB keeps it;
- MariaDB's JSON is LONGTEXT with a json_valid() check (information_schema
  says longtext): it arrives as its exact text (text / VARCHAR / VARCHAR(65535)),
  never re-normalised (duplicate keys, spacing and \\u0000 escapes kept);
  MySQL's own JSON type becomes jsonb / JSON / SUPER (tests/test_load_*.py);
- every other value arrives exactly (BIGINT UNSIGNED max, DECIMAL(65,30) and
  (38,10) extremes, float32/float64 extremes, subnormals and -0.0, emoji/CJK at
  the character and byte limits, '' vs NULL vs 'NULL', all 256 byte values, TIME
  beyond +-24h, BIT(64), ENUM/SET, YEAR, GEOMETRY as WKB)."""

from __future__ import annotations

import re
import struct
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from kit.cli import summary
from kit.config import build_config
from kit.lake import local_storage, s3_client
from kit.redshift import FakeRedshift, patch_redshift, redshift_config
from kit.targets import Target, make_target

from conftest import mysql_connect, mysql_exec

ALL_BYTES = bytes(range(256))
EMOJI10 = "😀" * 10  # VARCHAR(10) at its character limit: 40 bytes
CJK10 = "漢字" * 5
TINY255 = "😀" * 63 + "abc"  # TINYTEXT at its 255-byte limit
D65_MAX = "99999999999999999999999999999999999.999999999999999999999999999999"
D38_MAX = "9999999999999999999999999999.9999999999"

DDL = """CREATE TABLE hostile (
  id INT NOT NULL PRIMARY KEY,
  zd DATE NULL, zdn DATE NOT NULL, zdt DATETIME(6) NOT NULL, zts TIMESTAMP(6) NULL DEFAULT NULL,
  biu BIGINT UNSIGNED, bi BIGINT,
  d65 DECIMAL(65,30), d38 DECIMAL(38,10),
  f FLOAT, db DOUBLE,
  vc VARCHAR(10), tt TINYTEXT, ch CHAR(5), s VARCHAR(20),
  flag TINYINT(1),
  js JSON,
  bl BLOB, vb VARBINARY(256),
  tm TIME(6),
  b1 BIT(1), b64 BIT(64),
  en ENUM('a','b','c d','😀'), st SET('x','y','z'),
  yr YEAR,
  g GEOMETRY
) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"""

COLUMNS = ["id", "zd", "zdn", "zdt", "zts", "biu", "bi", "d65", "d38", "f", "db", "vc", "tt", "ch", "s", "flag",
           "js", "bl", "vb", "tm", "b1", "b64", "en", "st", "yr", "g"]

ROWS = [
    # zero dates everywhere; maxima; emoji/CJK at the limits; '' ; all bytes
    (1, "'0000-00-00'", "'0000-00-00'", "'0000-00-00 00:00:00'", "'0000-00-00 00:00:00'",
     "18446744073709551615", "-9223372036854775808", D65_MAX, D38_MAX, "3.4028234663852886e38",
     "1.7976931348623157e308", "%(emoji10)s", "%(tiny255)s", "'漢字漢字漢'", "''", "0",
     """'{"k": [1, 2.50, "é😀"], "n": null, "nested": {"a": [{}]}, "big": 123456789012345678901234567890}'""",
     "%(all)s", "%(all)s", "'838:59:59.000000'", "b'1'", "b'1111111111111111111111111111111111111111111111111111111111111111'",
     "'😀'", "'x,z'", "2155", "ST_GeomFromText('POLYGON((0 0, 10 0, 10 10, 0 10, 0 0))')"),
    # partial zero dates; minima; the text 'NULL' vs SQL NULL
    (2, "NULL", "'2020-05-00'", "'2020-00-15 10:00:00.5'", "NULL",
     "0", "9223372036854775807", "-" + D65_MAX, "-" + D38_MAX, "-3.4028234663852886e38",
     "-1.7976931348623157e308", "%(cjk10)s", "''", "'a'", "NULL", "1", "'[]'", "''", "x''",
     "'-838:59:59.000000'", "b'0'", "b'0'", "'c d'", "''", "1901", "ST_GeomFromText('POINT(1.5 -2.25)')"),
    # real dates at the ends of the ranges; smallest magnitudes; TINYINT(1) = 2
    (3, "'1000-01-01'", "'9999-12-31'", "'9999-12-31 23:59:59.999999'", "'1970-01-01 00:00:01.000001'",
     "9223372036854775808", "0", "0.000000000000000000000000000001", "0.0000000001", "1.401298464324817e-45",
     "5e-324", "'NULL'", "'NULL'", "'NULL'", "'NULL'", "2", "'\"just a string\"'", "x'00'", "x'ff'",
     "'-00:00:01.500000'", "NULL", "x'8000000000000000'", "'a'", "'x,y,z'", "0",
     "ST_GeomFromText('GEOMETRYCOLLECTION(POINT(1 2), LINESTRING(0 0, 1 1))')"),
    # TINYINT(1) = -1; quotes and control characters; duplicate JSON keys; TIME above 24h; -0.0
    (4, "'2024-02-29'", "'2024-02-29'", "'2038-01-19 03:14:08'", "'2038-01-19 03:14:07.999999'",
     "1", "-1", "-0.000000000000000000000000000001", "-0.0000000001", "-0e0", "-0e0",
     "'a''b\"c\\\\d'", "'tab\\there\\nnew'", "' x'", "'é'", "-1", """'{"a": 1, "a": 2}'""", "NULL", "NULL",
     "'25:00:00'", "b'1'", "b'101'", "'b'", "'y'", "1999", "NULL"),
    # NULL in every nullable column
    (5, "NULL", "'2000-01-01'", "'2000-01-01 00:00:00'", "NULL") + ("NULL",) * 21,
]
NUL_ROW = (6, "NULL", "'2000-01-01'", "'2000-01-01 00:00:00'", "NULL") + ("NULL",) * 9 + (
    "CONCAT('a', CHAR(0), 'b')", "NULL", """'{"k": "\\\\u0000"}'""") + ("NULL",) * 9


def insert_rows(conn: Any, rows: list[tuple[str, ...]]) -> None:
    mysql_exec(conn, "SET SESSION sql_mode = ''")  # zero dates are what old applications left behind
    for row in rows:
        assert len(row) == len(COLUMNS)
        mysql_exec(conn, f"INSERT INTO hostile ({', '.join(COLUMNS)}) VALUES ({', '.join(str(v) for v in row)})",
                   params={"emoji10": EMOJI10, "cjk10": CJK10, "tiny255": TINY255, "all": ALL_BYTES})


def f32(value: float) -> bytes:
    return struct.pack("<f", value)


def canon(column: str, value: Any) -> Any:
    """One comparable form per column for MySQL's values (read by PyMySQL in a
    UTC session) and each target's (psycopg / duckdb)."""
    if value is None:
        return None
    if column in ("zd", "zdn", "zdt", "zts"):
        if isinstance(value, str):  # PyMySQL hands zero dates over as text: the lake holds them as NULL
            assert re.match(r"^\d{4}-\d{2}-\d{2}", value) and ("-00" in value), value
            return None
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value.astimezone(timezone.utc).replace(tzinfo=None)
        return value
    if column in ("biu", "bi", "flag", "yr"):
        return int(value)
    if column in ("b1", "b64"):
        return int.from_bytes(value, "big") if isinstance(value, (bytes, bytearray)) else int(value)
    if column in ("d65", "d38"):
        return Decimal(str(value)).as_tuple()  # digits and exponent: 1.50 is not 1.5
    if column == "f":
        return f32(value)
    if column == "db":
        return struct.pack("<d", value)
    if column in ("bl", "vb", "g"):
        return bytes(value)
    return value  # text, ENUM/SET, TIME (timedelta everywhere)


TRUTH_SQL = ("SELECT id, zd, zdn, zdt, zts, biu, bi, CAST(d65 AS CHAR), d38, CAST(f AS DOUBLE), db, vc, tt, ch, s, "
             "flag, js, bl, vb, tm, b1, b64, en, st, yr, ST_AsBinary(g) FROM hostile ORDER BY id")


def source_truth(mysql_db: str) -> list[tuple[Any, ...]]:
    with mysql_connect(mysql_db, init_command="SET time_zone = '+00:00'") as conn, conn.cursor() as cur:
        cur.execute(TRUTH_SQL)
        return [tuple(canon(c, v) for c, v in zip(COLUMNS, row)) for row in cur.fetchall()]


def target_values(tgt: Target) -> list[tuple[Any, ...]]:
    return [tuple(canon(c, v) for c, v in zip(COLUMNS, row)) for row in tgt.raw_rows("hostile", COLUMNS, '"id"')]


def assert_same(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]]) -> None:
    assert [r[0] for r in got] == [r[0] for r in want]
    for g, w in zip(got, want):
        for column, a, b in zip(COLUMNS, g, w):
            assert a == b, (g[0], column, a, b)


def check_literals(rows: dict[int, tuple[Any, ...]]) -> None:
    """The source really holds what the test means (no silent truncation on insert)."""
    by = {i: dict(zip(COLUMNS, r)) for i, r in rows.items()}
    assert (by[1]["zd"], by[1]["zdn"], by[1]["zdt"], by[1]["zts"]) == (None, None, None, None)
    assert (by[2]["zdn"], by[2]["zdt"]) == (None, None)
    assert by[3]["zdt"] == datetime(9999, 12, 31, 23, 59, 59, 999999)
    assert by[3]["zts"] == datetime(1970, 1, 1, 0, 0, 1, 1) and by[3]["zd"] == date(1000, 1, 1)
    assert by[1]["biu"] == 2**64 - 1 and by[3]["biu"] == 2**63 and by[1]["bi"] == -(2**63)
    assert by[1]["d65"] == Decimal(D65_MAX).as_tuple() and by[3]["d65"] == Decimal("1E-30").as_tuple()
    assert by[1]["f"] == f32(3.4028234663852886e38) and by[3]["f"] == f32(1.401298464324817e-45)
    assert by[3]["db"] == struct.pack("<d", 5e-324)
    assert by[1]["vc"] == EMOJI10 and by[2]["vc"] == CJK10 and by[1]["tt"] == TINY255
    assert len(TINY255.encode()) == 255 and len(EMOJI10.encode()) == 40
    assert (by[1]["s"], by[2]["s"], by[3]["s"]) == ("", None, "NULL")
    assert [by[i]["flag"] for i in (1, 2, 3, 4, 5)] == [0, 1, 2, -1, None]
    assert by[1]["bl"] == ALL_BYTES == by[1]["vb"]
    assert by[1]["tm"] == timedelta(hours=838, minutes=59, seconds=59) and by[2]["tm"] == -by[1]["tm"]
    assert by[3]["tm"] == timedelta(seconds=-1.5) and by[4]["tm"] == timedelta(hours=25)
    assert (by[1]["b64"], by[3]["b64"], by[4]["b64"]) == (2**64 - 1, 2**63, 5)
    assert by[4]["js"] == '{"a": 1, "a": 2}' and "123456789012345678901234567890" in by[1]["js"]
    assert by[1]["g"][:5] == b"\x01\x03\x00\x00\x00"  # WKB little endian polygon


def table_cfg(**extra: Any) -> dict[str, Any]:
    return {"hostile": {"cdc_strategy": "full_sync", "tinyint1_as_boolean": False, **extra}}


def run(cli: Any, config: Path) -> Any:
    return cli("sync", "pipeline", "-p", "p1", "-t", "hostile", config_dir=config)


@pytest.fixture
def hostile(mysql: Any) -> None:
    mysql_exec(mysql, DDL)
    insert_rows(mysql, ROWS)


# ---------------------------------------------------------------- DuckDB: everything, NUL included


def test_every_hostile_value_reaches_duckdb_exactly(hostile: None, mysql: Any, mysql_db: str, tmp_path: Path,
                                                   cli: Any, request: pytest.FixtureRequest) -> None:
    insert_rows(mysql, [NUL_ROW])  # DuckDB VARCHAR and JSON hold NUL characters
    tgt = make_target("duckdb", request, tmp_path)
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(tmp_path / "lake"), table_cfg())
    result = run(cli, config)
    assert result.exit_code == 0, result.output + result.stderr
    want = source_truth(mysql_db)
    check_literals({r[0]: r for r in want})
    assert_same(target_values(tgt), want)
    got = {r[0]: r for r in tgt.rows("hostile", COLUMNS, '"id"')}
    assert got[6][14] == "a\x00b" and got[6][16] == '{"k": "\\u0000"}'
    assert got[4][16] == '{"a": 1, "a": 2}'  # MariaDB JSON text as it is
    assert got[1][7] == D65_MAX and got[2][7] == "-" + D65_MAX  # DECIMAL(65,30): exact text in VARCHAR
    types = dict(tgt.query("SELECT column_name, data_type FROM information_schema.columns "
                           "WHERE table_schema = 'lake' AND table_name = 'hostile'"))
    assert types == {
        "id": "INTEGER", "zd": "DATE", "zdn": "DATE", "zdt": "TIMESTAMP", "zts": "TIMESTAMP WITH TIME ZONE",
        "biu": "UBIGINT", "bi": "BIGINT", "d65": "VARCHAR", "d38": "DECIMAL(38,10)", "f": "FLOAT", "db": "DOUBLE",
        "vc": "VARCHAR", "tt": "VARCHAR", "ch": "VARCHAR", "s": "VARCHAR", "flag": "TINYINT", "js": "VARCHAR",
        "bl": "BLOB", "vb": "BLOB", "tm": "INTERVAL", "b1": "UBIGINT", "b64": "UBIGINT", "en": "VARCHAR",
        "st": "VARCHAR", "yr": "SMALLINT", "g": "BLOB"}


# ---------------------------------------------------------------- PostgreSQL: NUL refused, the rest exact


def test_every_hostile_value_reaches_postgres_exactly_and_nul_is_refused(hostile: None, mysql: Any, mysql_db: str,
                                                                       tmp_path: Path, cli: Any,
                                                                       request: pytest.FixtureRequest) -> None:
    tgt = make_target("postgres", request, tmp_path)
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(tmp_path / "lake"), table_cfg())

    insert_rows(mysql, [NUL_ROW])
    refused = run(cli, config)
    assert refused.exit_code == 1
    err = refused.stderr.strip().splitlines()[-1]
    assert err.startswith("Error: ") and "column 's' (varchar(20)) holds a NUL character" in err
    assert "PostgreSQL text/jsonb cannot store" in err and "VARBINARY/BLOB" in err
    assert not tgt.exists("hostile")  # nothing half-loaded
    assert [r[0] for r in tgt.runs()] == ["failed"]

    # MariaDB JSON is text: its \\u0000 escape is six characters, which PostgreSQL text holds
    mysql_exec(mysql, "UPDATE hostile SET s = NULL WHERE id = 6")
    result = run(cli, config)
    assert result.exit_code == 0, result.output + result.stderr
    want = source_truth(mysql_db)
    check_literals({r[0]: r for r in want})
    assert_same(target_values(tgt), want)
    types = dict(tgt.query("SELECT column_name, format_type(atttypid, atttypmod) FROM information_schema.columns c "
                           "JOIN pg_attribute a ON a.attname = c.column_name AND a.attrelid = "
                           f"'\"{tgt.schema}\".\"hostile\"'::regclass WHERE c.table_schema = '{tgt.schema}' "
                           "AND c.table_name = 'hostile'"))
    assert types == {
        "id": "integer", "zd": "date", "zdn": "date", "zdt": "timestamp(6) without time zone",
        "zts": "timestamp(6) with time zone", "biu": "numeric(20,0)", "bi": "bigint", "d65": "numeric(65,30)",
        "d38": "numeric(38,10)", "f": "real", "db": "double precision", "vc": "character varying(10)", "tt": "text",
        "ch": "character varying(5)", "s": "character varying(20)", "flag": "smallint", "js": "text",
        "bl": "bytea", "vb": "bytea", "tm": "interval", "b1": "numeric(20,0)", "b64": "numeric(20,0)",
        "en": "character varying(3)", "st": "character varying(5)", "yr": "smallint", "g": "bytea"}
    assert tgt.query(f'SELECT js FROM {tgt.name("hostile")} WHERE id = 6') == [('{"k": "\\u0000"}',)]
    # numeric keeps MySQL's scale: 1E-30 comes back as 0.000...001 with 30 digits
    assert tgt.query(f'SELECT d65::text FROM {tgt.name("hostile")} WHERE id = 3') == [("0.000000000000000000000000000001",)]


# ---------------------------------------------------------------- the policies that stop a run


@pytest.mark.parametrize("kind", ["postgres", "duckdb"])
def test_tinyint1_holding_2_or_minus_1_stops_the_run_while_read_as_boolean(kind: str, hostile: None, mysql_db: str,
                                                                          tmp_path: Path, cli: Any,
                                                                          request: pytest.FixtureRequest) -> None:
    tgt = make_target(kind, request, tmp_path)
    lake = tmp_path / "lake"
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(lake),
                          table_cfg(tinyint1_as_boolean=True))
    result = run(cli, config)
    assert result.exit_code == 1
    err = result.stderr.strip().splitlines()[-1]
    assert re.search(r"column 'flag' is tinyint\(1\) but holds (2|-1), which is not a boolean; set "
                     r"`tinyint1_as_boolean: false`", err), err
    assert not tgt.exists("hostile")
    assert not list(lake.rglob("*.parquet")) and not list(lake.rglob("_manifests/*.json"))


@pytest.mark.parametrize("kind", ["postgres", "duckdb"])
def test_zero_dates_stop_the_run_when_the_policy_is_error(kind: str, hostile: None, mysql_db: str, tmp_path: Path,
                                                          cli: Any, request: pytest.FixtureRequest) -> None:
    tgt = make_target(kind, request, tmp_path)
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(tmp_path / "lake"),
                          table_cfg(zero_dates="error"))
    result = run(cli, config)
    assert result.exit_code == 1
    err = result.stderr.strip().splitlines()[-1]
    assert "holds a zero date such as '0000-00-00' and zero_dates is 'error'" in err and "column 'z" in err
    assert not tgt.exists("hostile")


# ---------------------------------------------------------------- Redshift: the DDL and COPY for each column

REDSHIFT_TYPES = [  # column: (target type, COPY staging type for its Parquet column)
    ("id", "INTEGER", "INTEGER"), ("zd", "DATE", "DATE"), ("zdn", "DATE", "DATE"), ("zdt", "TIMESTAMP", "TIMESTAMP"),
    ("zts", "TIMESTAMPTZ", "TIMESTAMP"), ("biu", "DECIMAL(20,0)", "DECIMAL(20,0)"), ("bi", "BIGINT", "BIGINT"),
    ("d65", "VARCHAR(67)", "VARCHAR(65535)"), ("d38", "DECIMAL(38,10)", "DECIMAL(38,10)"), ("f", "REAL", "REAL"),
    ("db", "DOUBLE PRECISION", "DOUBLE PRECISION"), ("vc", "VARCHAR(40)", "VARCHAR(65535)"),
    ("tt", "VARCHAR(65535)", "VARCHAR(65535)"), ("ch", "VARCHAR(20)", "VARCHAR(65535)"),
    ("s", "VARCHAR(80)", "VARCHAR(65535)"), ("flag", "SMALLINT", "SMALLINT"), ("js", "VARCHAR(65535)", "VARCHAR(65535)"),
    ("bl", "VARBYTE(65535)", "VARBYTE(16777216)"), ("vb", "VARBYTE(256)", "VARBYTE(16777216)"),
    ("tm", "VARCHAR(20)", "VARCHAR(65535)"), ("b1", "DECIMAL(20,0)", "DECIMAL(20,0)"),
    ("b64", "DECIMAL(20,0)", "DECIMAL(20,0)"), ("en", "VARCHAR(12)", "VARCHAR(65535)"),
    ("st", "VARCHAR(20)", "VARCHAR(65535)"), ("yr", "SMALLINT", "SMALLINT"), ("g", "VARBYTE(16777216)", "VARBYTE(16777216)"),
]
ROLE = "arn:aws:iam::123456789012:role/lakeshift-copy"


def test_redshift_ddl_and_copy_for_every_hostile_column(hostile: None, mysql_db: str, tmp_path: Path, cli: Any,
                                                        s3_endpoint: str, s3_storage: dict[str, Any],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlglot

    emulator = FakeRedshift(s3_client(s3_endpoint))
    patch_redshift(monkeypatch, emulator)
    config = build_config(tmp_path / "config", mysql_db, redshift_config(iam_role=ROLE), s3_storage, table_cfg())
    result = run(cli, config)
    assert result.exit_code == 0, result.output + result.stderr
    assert summary(result.output, "hostile")[1] == 5

    stmts = emulator.statements()
    create = next(s for s in stmts if s.startswith('CREATE TABLE "analytics"."hostile"'))
    assert create == ('CREATE TABLE "analytics"."hostile" ('
                      + ", ".join(f'"{c}" {t}' for c, t, _ in REDSHIFT_TYPES) + ")")
    stage = next(s for s in stmts if s.startswith("CREATE TEMP TABLE"))
    # exactly the Parquet types (the emulated COPY checks each part against them), and the row ordinal
    assert stage.endswith("(" + ", ".join(f'"{c}" {t}' for c, _, t in REDSHIFT_TYPES) + ', "_lakeshift_ord" BIGINT)')
    copy = next(s for s in stmts if s.startswith("COPY "))
    bucket, prefix = s3_storage["bucket"], s3_storage["prefix"]
    assert re.fullmatch(rf'COPY "_ls_stage_[0-9a-f]{{24}}" FROM \'s3://{bucket}/{prefix}/p1/hostile/'
                        rf'[^\']+\.copy-manifest\' IAM_ROLE \'{re.escape(ROLE)}\' FORMAT AS PARQUET MANIFEST', copy), copy
    assert emulator.staged_rows == 5  # the COPY manifest lists the batch's parts: 5 rows
    insert = next(s for s in stmts if s.startswith('INSERT INTO "analytics"."hostile"'))
    assert '"_lakeshift_s"."js"' in insert and '"_lakeshift_s"."d65"' in insert and '"_lakeshift_s"."tm"' in insert  # all exact text
    replace = stmts.index('DELETE FROM "analytics"."hostile"')  # full_sync: DELETE + INSERT in one transaction
    begin = max(i for i, st in enumerate(stmts[:replace]) if st == "BEGIN")
    commit = stmts.index("COMMIT", replace)
    assert "COMMIT" not in stmts[begin:replace] and begin < replace < stmts.index(insert) < commit
    assert any(st.startswith('INSERT INTO "analytics"."_lakeshift_loads"') for st in stmts[replace:commit])
    for s in stmts:  # every statement is Redshift SQL
        tree = sqlglot.parse_one(s, read="redshift")
        assert not isinstance(tree, sqlglot.exp.Command) or s.startswith("LOCK "), s


# ---------------------------------------------------------------- charsets and wide decimals

CS_COLUMNS = ["id", "l1", "u16", "u3", "asc_", "en", "d650", "d6510", "bn", "cb"]


@pytest.mark.parametrize("kind", ["postgres", "duckdb"])
def test_other_charsets_and_65_digit_decimals_exactly(kind: str, mysql: Any, mysql_db: str, tmp_path: Path, cli: Any,
                                                      request: pytest.FixtureRequest) -> None:
    """latin1 (MySQL's is cp1252, including the five bytes cp1252 leaves
    undefined), utf16, utf8mb3, ascii, an invalid ENUM ('' in non-strict mode),
    DECIMAL(65,0)/(65,10) at full width (past Python's 28-digit default
    context), BINARY padding: all arrive as MySQL's own values."""
    mysql_exec(mysql, "SET SESSION sql_mode = ''", """CREATE TABLE cs (id INT PRIMARY KEY,
        l1 VARCHAR(300) CHARACTER SET latin1, u16 VARCHAR(20) CHARACTER SET utf16,
        u3 VARCHAR(10) CHARACTER SET utf8mb3, asc_ VARCHAR(10) CHARACTER SET ascii, en ENUM('a','b'),
        d650 DECIMAL(65,0), d6510 DECIMAL(65,10), bn BINARY(3), cb CHAR(4) CHARACTER SET binary)""")
    mysql_exec(mysql, "INSERT INTO cs VALUES (1, CONVERT(%s USING latin1), 'é😀z', 'ünï', 'abc', 'zzz', "
                      "99999999999999999999999999999999999999999999999999999999999999999, "
                      "1234567890123456789012345678901234567890123456789012345.1234567891, 'a', 'ab'), "
                      "(2, 'plain', NULL, NULL, NULL, 'b', "
                      "-12345678901234567890123456789012345678901234567890123456789012345, -1, NULL, NULL)",
               params=(bytes(range(1, 256)),))
    tgt = make_target(kind, request, tmp_path)
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(tmp_path / "lake"),
                          {"cs": {"cdc_strategy": "full_sync"}})
    result = cli("sync", "pipeline", "-p", "p1", "-t", "cs", config_dir=config)
    assert result.exit_code == 0, result.output + result.stderr

    def norm(row: tuple[Any, ...]) -> tuple[Any, ...]:
        out = []
        for c, v in zip(CS_COLUMNS, row):
            if c.startswith("d6") and v is not None:
                v = Decimal(str(v)).as_tuple()
            elif isinstance(v, (bytes, bytearray, memoryview)):
                v = bytes(v)
            out.append(v)
        return tuple(out)

    with mysql_connect(mysql_db) as conn, conn.cursor() as cur:
        cur.execute("SELECT id, CONVERT(l1 USING utf8mb4), CONVERT(u16 USING utf8mb4), u3, asc_, en, "
                    "CAST(d650 AS CHAR), CAST(d6510 AS CHAR), bn, cb FROM cs ORDER BY id")
        want = [norm(r) for r in cur.fetchall()]
    got = [norm(r) for r in tgt.raw_rows("cs", CS_COLUMNS, '"id"')]
    assert got == want
    assert want[0][1][127:132] == "€\x81‚ƒ„" and want[0][5] == "" and want[0][8] == b"a\x00\x00"
    assert want[0][6] == Decimal("9" * 65).as_tuple() and want[1][7] == Decimal("-1.0000000000").as_tuple()


# ---------------------------------------------------------------- zero-length columns

ZERO_COLUMNS = ["id", "v", "c", "cn", "b", "vb"]


@pytest.mark.parametrize("kind", ["postgres", "duckdb"])
def test_zero_length_columns_hold_empty_and_null(kind: str, mysql: Any, mysql_db: str, tmp_path: Path, cli: Any,
                                                 request: pytest.FixtureRequest) -> None:
    """VARCHAR(0) and CHAR(0) hold only '' and NULL (a flag column of old
    schemas); PostgreSQL refused the CREATE TABLE with varchar(0). They become
    varchar(1), the smallest length a target takes (DuckDB: VARCHAR)."""
    mysql_exec(mysql, "CREATE TABLE zero (id INT PRIMARY KEY, v VARCHAR(0), c CHAR(0), "
                      "cn CHAR(0) NOT NULL DEFAULT '', b BINARY(0), vb VARBINARY(0))",
               "INSERT INTO zero VALUES (1, '', '', '', '', ''), (2, NULL, NULL, '', NULL, NULL)")
    tgt = make_target(kind, request, tmp_path)
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(tmp_path / "lake"),
                          {"zero": {"cdc_strategy": "full_sync"}})
    result = cli("sync", "pipeline", "-p", "p1", "-t", "zero", config_dir=config)
    assert result.exit_code == 0, result.output + result.stderr
    got = [tuple(bytes(v) if isinstance(v, (bytes, bytearray, memoryview)) else v for v in r)
           for r in tgt.raw_rows("zero", ZERO_COLUMNS, '"id"')]
    assert got == [(1, "", "", "", b"", b""), (2, None, None, "", None, None)]
    if kind == "postgres":
        types = dict(tgt.query("SELECT column_name, format_type(atttypid, atttypmod) FROM information_schema.columns c "
                               "JOIN pg_attribute a ON a.attname = c.column_name AND a.attrelid = "
                               f"'\"{tgt.schema}\".\"zero\"'::regclass WHERE c.table_schema = '{tgt.schema}' "
                               "AND c.table_name = 'zero'"))
        assert types == {"id": "integer", "v": "character varying(1)", "c": "character varying(1)",
                         "cn": "character varying(1)", "b": "bytea", "vb": "bytea"}
    mysql_exec(mysql, "INSERT INTO zero VALUES (3, '', NULL, '', NULL, '')")  # a second run: no type change
    result = cli("sync", "pipeline", "-p", "p1", "-t", "zero", config_dir=config)
    assert result.exit_code == 0, result.output + result.stderr
    assert tgt.count("zero") == 3
