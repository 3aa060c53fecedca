"""Every MySQL type read through the source into Parquet and back, compared
value by value with what MySQL holds (literal expectations and PyMySQL reads)."""

from __future__ import annotations

import math
import struct
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from source_kit import reader, run, table_config  # noqa: F401

from conftest import mysql_connect, mysql_exec
from lakeshift.errors import SourceError

ALL_BYTES = bytes(range(256))


def f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


TYPES_DDL = """
CREATE TABLE types (
  id INT PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
  mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
  flag TINYINT(1), flag_bool BOOL,
  d DECIMAL(12,2), d38 DECIMAL(38,10), d65 DECIMAL(65,30), d0 DECIMAL(20,0),
  f FLOAT, db DOUBLE,
  dt DATE, dtm DATETIME, dtm6 DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL, tm TIME(6), tm0 TIME, yr YEAR,
  b1 BIT(1), b64 BIT(64),
  c CHAR(10), vc VARCHAR(200), tx TEXT, ltx LONGTEXT, en ENUM('a','b','c d'), st SET('x','y','z'), js JSON,
  bn BINARY(4), vb VARBINARY(300), bl BLOB, lbl LONGBLOB,
  g GEOMETRY, p POINT
) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin
"""

ROWS = [
    # maxima
    """(1, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807,
        18446744073709551615, 1, 1,
        9999999999.99, 9999999999999999999999999999.9999999999,
        99999999999999999999999999999999999.999999999999999999999999999999, 99999999999999999999,
        3.4028234663852886e38, 1.7976931348623157e308,
        '9999-12-31', '9999-12-31 23:59:59', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999',
        '838:59:59.000000', '838:59:59', 2155,
        b'1', b'1111111111111111111111111111111111111111111111111111111111111111',
        'ab', '😀 emoji 𝄞 ü', REPEAT('long text é ', 5000), REPEAT('😀', 70000), 'c d', 'x,z',
        '{"k": [1, 2.50, "é😀"], "n": null}',
        x'00ff0102', %(all)s, %(all_many)s, %(all_many)s,
        ST_GeomFromText('POLYGON((0 0, 10 0, 10 10, 0 10, 0 0))'), ST_GeomFromText('POINT(1.5 -2.25)'))""",
    # minima
    """(2, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0, 0, 0,
        -9999999999.99, -9999999999999999999999999999.9999999999,
        -99999999999999999999999999999999999.999999999999999999999999999999, -99999999999999999999,
        -3.4028234663852886e38, -1.7976931348623157e308,
        '1000-01-01', '1000-01-01 00:00:00', '1000-01-01 00:00:00.000000', '1970-01-01 00:00:01.000000',
        '-838:59:59.000000', '-838:59:59', 1901,
        b'0', b'0',
        '', '', '', '', 'a', '',
        '[]',
        x'00000000', x'', x'', x'',
        ST_GeomFromText('LINESTRING(0 0, 1 1, 2 0)'), ST_GeomFromText('POINT(0 0)'))""",
    # NULL everywhere
    "(3" + ", NULL" * 40 + ")",
    # small and odd values
    """(4, 0, 1, -1, 1, -1, 1, -1, 1, -1, 9223372036854775808, NULL, 1,
        0.01, 0.0000000001, 0.000000000000000000000000000001, 0,
        1.401298464324817e-45, 5e-324,
        '2024-02-29', '2000-01-01 00:00:00', '1970-01-01 00:00:00.000001', '2000-02-29 12:34:56.500000',
        '-00:00:01.500000', '00:00:00', 0,
        NULL, x'8000000000000000',
        'NULL', 'NULL', CONCAT('a', CHAR(0), 'b'), CONCAT('quote '' " \\\\ ', CHAR(0)), 'b', 'x,y,z',
        '{"a":1}',
        'a', %(all)s, 'NULL', '',
        ST_GeomFromText('MULTIPOINT(1 1, 2 2)'), NULL)""",
    # float/double subnormals, negative zero, normal minima
    """(5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0,
        -0.01, -0.0000000001, -0.000000000000000000000000000001, -1,
        1.1754943508222875e-38, 2.2250738585072014e-308,
        '0001-01-01', '0001-01-01 00:00:00', '2020-01-02 03:04:05.123456', '2020-01-02 03:04:05.000001',
        '00:00:00.000001', '-00:00:01', 1999,
        b'1', b'101',
        'x', 'line\\nbreak\\ttab', '', '', 'a', 'y',
        '"just a string"',
        x'ff', x'00', x'00', x'00',
        ST_GeomFromText('GEOMETRYCOLLECTION(POINT(1 2))'), ST_GeomFromText('POINT(-180 90)'))""",
    """(6, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0,
        0, 0, 0, 0,
        -0e0, -0e0,
        NULL, NULL, NULL, NULL, NULL, NULL, NULL,
        NULL, NULL,
        NULL, NULL, NULL, NULL, NULL, NULL, NULL,
        NULL, NULL, NULL, NULL,
        NULL, NULL)""",
]


@pytest.fixture
def types_table(mysql) -> str:
    mysql_exec(mysql, TYPES_DDL)
    for row in ROWS:
        with mysql.cursor() as cur:
            cur.execute("INSERT INTO types VALUES " + row, {"all": ALL_BYTES, "all_many": ALL_BYTES * 200})
    return "types"


def mysql_rows(conn, sql: str) -> dict[int, dict]:
    with conn.cursor() as cur:
        cur.execute(sql)
        names = [d[0] for d in cur.description]
        return {r[0]: dict(zip(names, r)) for r in cur.fetchall()}


def roundtrip(table: pa.Table, tmp_path: Path) -> pa.Table:
    path = tmp_path / "part.parquet"
    pq.write_table(table, path)
    back = pq.read_table(path)
    assert back.schema.equals(table.schema, check_metadata=True)
    return back


def test_lake_schema_records_every_mapping(reader, types_table) -> None:  # noqa: F811
    desc = reader.describe(types_table)
    got = {c.name: (c.arrow_type, c.lake_encoding) for c in desc.columns}
    assert got == {
        "id": ("int32", None), "ti": ("int8", None), "tiu": ("int16", None), "si": ("int16", None),
        "siu": ("int32", None), "mi": ("int32", None), "miu": ("int64", None), "i": ("int32", None),
        "iu": ("int64", None), "bi": ("int64", None), "biu": ("decimal128(20, 0)", None), "flag": ("bool", None),
        "flag_bool": ("bool", None), "d": ("decimal128(12, 2)", None), "d38": ("decimal128(38, 10)", None),
        "d65": ("string", "text"), "d0": ("decimal128(20, 0)", None), "f": ("float", None), "db": ("double", None),
        "dt": ("date32[day]", None), "dtm": ("timestamp[us]", None), "dtm6": ("timestamp[us]", None),
        "ts": ("timestamp[us, tz=UTC]", None), "tm": ("string", "text"), "tm0": ("string", "text"),
        "yr": ("int16", None), "b1": ("decimal128(20, 0)", None), "b64": ("decimal128(20, 0)", None), "c": ("string", None),
        "vc": ("string", None), "tx": ("string", None), "ltx": ("string", None), "en": ("string", None),
        "st": ("string", None), "js": ("string", None), "bn": ("binary", None), "vb": ("binary", None),
        "bl": ("binary", None), "lbl": ("binary", None), "g": ("binary", "wkb"), "p": ("binary", "wkb"),
    }
    by = {c.name: c for c in desc.columns}
    assert by["biu"].mysql_type == "bigint(20) unsigned" and by["biu"].unsigned
    assert (by["d"].numeric_precision, by["d"].numeric_scale) == (12, 2)
    assert by["dtm6"].datetime_precision == 6 and by["vc"].char_max_length == 200
    assert desc.primary_key == ["id"] and not by["id"].nullable
    schema = reader.lake_schema(desc)
    assert schema.field("tm").metadata[b"mysql_type"] == b"time(6)"
    assert schema.field("d65").metadata[b"lake_encoding"] == b"text"


def test_every_type_round_trips_through_parquet_exactly(reader, types_table, mysql, tmp_path) -> None:  # noqa: F811
    table, _, _ = run(reader, types_table, table_config(cdc_strategy="full_sync"), batch_size=2)
    lake = {r["id"]: r for r in roundtrip(table, tmp_path).to_pylist()}
    assert sorted(lake) == [1, 2, 3, 4, 5, 6]

    # --- literal expectations for the edges
    r1, r2, r4, r5 = lake[1], lake[2], lake[4], lake[5]
    assert r1["biu"] == 18446744073709551615 and r4["biu"] == 9223372036854775808 and r2["biu"] == 0
    assert r1["bi"] == 9223372036854775807 and r2["bi"] == -9223372036854775808
    assert (r1["tiu"], r1["siu"], r1["miu"], r1["iu"]) == (255, 65535, 16777215, 4294967295)
    assert r1["d"] == Decimal("9999999999.99") and str(r4["d"]) == "0.01"
    assert r1["d38"] == Decimal("9999999999999999999999999999.9999999999")
    assert r4["d38"] == Decimal("1E-10")
    assert r1["d65"] == "99999999999999999999999999999999999.999999999999999999999999999999"
    assert r2["d65"] == "-99999999999999999999999999999999999.999999999999999999999999999999"
    assert r4["d65"] == "0.000000000000000000000000000001"
    assert r1["d0"] == Decimal("99999999999999999999")
    assert r1["f"] == f32(3.4028234663852886e38) and r2["f"] == -r1["f"]
    assert r4["f"] == f32(1.401298464324817e-45) > 0  # smallest float32 subnormal survives
    assert r5["f"] == f32(1.1754943508222875e-38)
    assert r1["db"] == 1.7976931348623157e308 and r4["db"] == 5e-324 and r5["db"] == 2.2250738585072014e-308
    assert r1["dtm6"] == datetime(9999, 12, 31, 23, 59, 59, 999999)
    assert r4["dtm6"] == datetime(1970, 1, 1, 0, 0, 0, 1)
    assert r1["ts"] == datetime(2038, 1, 19, 3, 14, 7, 999999, tzinfo=timezone.utc)
    assert r2["ts"] == datetime(1970, 1, 1, 0, 0, 1, tzinfo=timezone.utc)
    assert r4["dt"] == date(2024, 2, 29) and r5["dt"] == date(1, 1, 1)
    assert (r1["tm"], r2["tm"], r4["tm"], r5["tm"]) == ("838:59:59.000000", "-838:59:59.000000",
                                                        "-00:00:01.500000", "00:00:00.000001")
    assert (r1["tm0"], r2["tm0"], r5["tm0"]) == ("838:59:59", "-838:59:59", "-00:00:01")
    assert (r1["yr"], r2["yr"], r4["yr"]) == (2155, 1901, 0)
    assert (r1["b1"], r2["b1"], r5["b1"]) == (1, 0, 1)
    assert (r1["b64"], r4["b64"], r5["b64"]) == (2**64 - 1, 2**63, 5)
    assert (r1["flag"], r2["flag"], r4["flag"]) == (True, False, None)
    assert r1["vc"] == "😀 emoji 𝄞 ü" and r1["ltx"] == "😀" * 70000
    assert r2["vc"] == "" and lake[3]["vc"] is None and r4["vc"] == "NULL"  # '' vs NULL vs 'NULL'
    assert r4["tx"] == "a\x00b" and r4["ltx"] == "quote ' \" \\ \x00"
    assert r5["vc"] == "line\nbreak\ttab"
    assert (r1["en"], r1["st"], r4["st"]) == ("c d", "x,z", "x,y,z")
    assert r1["js"] == '{"k": [1, 2.50, "é😀"], "n": null}'
    assert r1["vb"] == ALL_BYTES and r4["vb"] == ALL_BYTES and r1["bl"] == ALL_BYTES * 200 == r1["lbl"]
    assert r2["vb"] == b"" and lake[3]["vb"] is None
    assert r1["bn"] == b"\x00\xff\x01\x02" and r4["bn"] == b"a\x00\x00\x00"  # BINARY pads with 0x00
    assert r1["p"] == struct.pack("<bIdd", 1, 1, 1.5, -2.25)  # WKB point, little endian
    assert all(v is None for k, v in lake[3].items() if k != "id")

    # --- every value against PyMySQL's own read of the table
    exprs = ("*, CAST(tm AS CHAR) AS tm_text, CAST(tm0 AS CHAR) AS tm0_text, CAST(d65 AS CHAR) AS d65_text, "
             "ST_AsBinary(g) AS g_wkb, ST_AsBinary(p) AS p_wkb")
    truth = mysql_rows(mysql, f"SELECT {exprs} FROM types")
    for rid, row in truth.items():
        got = lake[rid]
        for name in got:
            want = row[name]
            have = got[name]
            if name in ("tm", "tm0", "d65"):
                want = row[f"{name}_text"]
            elif name in ("g", "p"):
                want = row[f"{name}_wkb"]
            elif name in ("b1", "b64") and want is not None:
                want = int.from_bytes(want, "big")
            elif name in ("flag", "flag_bool") and want is not None:
                want = bool(want)
            elif name == "ts" and want is not None:
                want = want.replace(tzinfo=timezone.utc)  # the fixture's session is UTC
            elif name == "f" and want is not None:
                # PyMySQL gets FLOAT as 6-digit text; compare at float32 precision
                assert have == f32(have) and math.isclose(have, want, rel_tol=1e-5), (rid, name)
                continue
            assert have == want, (rid, name, have, want)
            if isinstance(have, float):
                assert math.copysign(1, have) == math.copysign(1, want), (rid, name)  # -0.0 as MySQL holds it


def test_decimal_text_keeps_trailing_zeros(reader, mysql) -> None:  # noqa: F811
    mysql_exec(mysql, "CREATE TABLE dec_t (id INT PRIMARY KEY, d DECIMAL(10,4), w DECIMAL(50,4))",
               "INSERT INTO dec_t VALUES (1, 1.5, 1.5), (2, -0.0001, 12345678901234567890123456789012345678901234.5678)")
    table, _, _ = run(reader, "dec_t", table_config(cdc_strategy="full_sync"))
    rows = table.to_pylist()
    assert [str(r["d"]) for r in rows] == ["1.5000", "-0.0001"]  # scale kept: exact, not float
    assert table.schema.field("d").type == pa.decimal128(10, 4)
    assert [r["w"] for r in rows] == ["1.5000", "12345678901234567890123456789012345678901234.5678"]


# ---------------------------------------------------------------- TINYINT(1)


@pytest.fixture
def flags(mysql) -> str:
    mysql_exec(mysql, "CREATE TABLE flags (id INT PRIMARY KEY, f TINYINT(1), g TINYINT(1) UNSIGNED)",
               "INSERT INTO flags VALUES (1, 0, 0), (2, 1, 1), (3, NULL, NULL)")
    return "flags"


def test_tinyint1_is_boolean_by_default(reader, flags) -> None:  # noqa: F811
    table, _, _ = run(reader, flags, table_config(cdc_strategy="full_sync"))
    assert table.schema.field("f").type == pa.bool_()
    assert table.column("f").to_pylist() == [False, True, None]
    assert table.column("g").to_pylist() == [False, True, None]


def test_tinyint1_with_other_values_fails_instead_of_turning_into_true(reader, flags, mysql) -> None:  # noqa: F811
    mysql_exec(mysql, "INSERT INTO flags VALUES (4, 2, 1)")
    with pytest.raises(SourceError) as err:
        run(reader, flags, table_config(cdc_strategy="full_sync"))
    msg = str(err.value)
    assert "flags" in msg and "'f'" in msg and "holds 2" in msg and "tinyint1_as_boolean: false" in msg


def test_tinyint1_as_integer_keeps_every_value(reader, flags, mysql) -> None:  # noqa: F811
    mysql_exec(mysql, "INSERT INTO flags VALUES (4, 2, 255), (5, -1, 7)")
    cfg = table_config(cdc_strategy="full_sync", tinyint1_as_boolean=False)
    table, _, _ = run(reader, flags, cfg)
    assert table.schema.field("f").type == pa.int8() and table.schema.field("g").type == pa.int16()  # the lake profile: no uint8
    assert table.column("f").to_pylist() == [0, 1, None, 2, -1]
    assert table.column("g").to_pylist() == [0, 1, None, 255, 7]


def test_plain_tinyint_without_width_is_an_integer(reader, mysql) -> None:  # noqa: F811
    from lakeshift.source.types import ColumnInfo, lake_type

    # MySQL 8 reports 'tinyint' without a display width: only an explicit (1) is boolean
    assert lake_type(ColumnInfo("x", "tinyint", "tinyint", True))[0] == pa.int8()
    assert lake_type(ColumnInfo("x", "tinyint", "tinyint(1)", True))[0] == pa.bool_()
    assert lake_type(ColumnInfo("x", "tinyint", "tinyint(4)", True))[0] == pa.int8()


# ---------------------------------------------------------------- zero dates


@pytest.fixture
def zero_dates(mysql) -> str:
    mysql_exec(
        mysql, "SET SESSION sql_mode = ''",
        """CREATE TABLE zd (id INT PRIMARY KEY, d DATE, dn DATE NOT NULL, t DATETIME(6), tn DATETIME NOT NULL,
           s TIMESTAMP NULL DEFAULT NULL, sn TIMESTAMP NOT NULL DEFAULT '2000-01-01 00:00:00')""",
        """INSERT INTO zd VALUES
           (1, '0000-00-00', '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '0000-00-00 00:00:00',
            '0000-00-00 00:00:00'),
           (2, '2020-00-00', '2020-05-00', '2020-00-15 10:00:00.5', '2020-01-00 00:00:00', NULL, '2001-02-03 04:05:06'),
           (3, '2020-05-06', '2020-05-06', '2020-05-06 07:08:09.000001', '2020-05-06 07:08:09', '2020-05-06 07:08:09',
            '2020-05-06 07:08:09')""",
    )
    return "zd"


def test_zero_dates_become_null_by_default(reader, zero_dates, mysql) -> None:  # noqa: F811
    table, _, _ = run(reader, zero_dates, table_config(cdc_strategy="full_sync"))
    rows = {r["id"]: r for r in table.to_pylist()}
    assert all(v is None for k, v in rows[1].items() if k != "id")
    assert (rows[2]["d"], rows[2]["dn"], rows[2]["t"], rows[2]["tn"]) == (None, None, None, None)
    assert rows[2]["sn"] == datetime(2001, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
    assert rows[3]["dn"] == date(2020, 5, 6) and rows[3]["t"] == datetime(2020, 5, 6, 7, 8, 9, 1)
    # NOT NULL columns are nullable in the lake: they may hold a zero date
    desc = reader.describe(zero_dates)
    assert {c.name: c.nullable for c in desc.columns} == {
        "id": False, "d": True, "dn": True, "t": True, "tn": True, "s": True, "sn": True}
    # MySQL really holds zero dates there
    with mysql.cursor() as cur:
        cur.execute("SELECT CAST(dn AS CHAR), CAST(tn AS CHAR) FROM zd WHERE id = 2")
        assert cur.fetchone() == ("2020-05-00", "2020-01-00 00:00:00")


@pytest.mark.parametrize("column, value", [("dn", "0000-00-00"), ("tn", "2020-01-00 00:00:00"),
                                           ("sn", "0000-00-00 00:00:00"), ("d", "2020-00-00")])
def test_zero_dates_error_policy_names_table_and_column(reader, mysql, column, value) -> None:  # noqa: F811
    mysql_exec(
        mysql, "SET SESSION sql_mode = ''",
        """CREATE TABLE zd (id INT PRIMARY KEY, d DATE, dn DATE NOT NULL DEFAULT '2000-01-01',
           tn DATETIME NOT NULL DEFAULT '2000-01-01', sn TIMESTAMP NOT NULL DEFAULT '2000-01-01 00:00:00')""",
        "INSERT INTO zd (id) VALUES (1)",
        f"INSERT INTO zd (id, {column}) VALUES (2, '{value}')",
    )
    cfg = table_config(cdc_strategy="full_sync", zero_dates="error")
    with pytest.raises(SourceError) as err:
        run(reader, "zd", cfg)
    msg = str(err.value)
    assert ".zd" in msg and f"'{column}'" in msg and "zero_dates" in msg
    # once the zero date is gone the same policy reads the table
    mysql_exec(mysql, "DELETE FROM zd WHERE id = 2")
    table, _, _ = run(reader, "zd", cfg)
    assert table.num_rows == 1


# ---------------------------------------------------------------- time zones


def test_timestamps_are_utc_instants_whatever_the_writer_session_zone(reader, mysql, mysql_db) -> None:  # noqa: F811
    """The same New York wall time on either side of a DST change is two
    instants; the reader (UTC session) sees both exactly, DATETIME unchanged."""
    mysql_exec(mysql, "CREATE TABLE tz (id INT PRIMARY KEY, s TIMESTAMP(6) NULL, w DATETIME(6))")
    with mysql_connect(mysql_db) as ny:
        named = _has_zone(ny, "America/New_York")
        inserts = [
            # (zone for the session, id, wall time): EDT then EST at the autumn change, spring jump
            ("-04:00", 1, "2020-11-01 01:30:00.250000"),
            ("-05:00", 2, "2020-11-01 01:30:00.250000"),
            ("-05:00", 3, "2020-03-08 01:59:59.999999"),
            ("-04:00", 4, "2020-03-08 03:00:00.000000"),
        ]
        for zone, rid, wall in inserts:
            mysql_exec(ny, f"SET time_zone = '{zone}'")
            mysql_exec(ny, f"INSERT INTO tz VALUES ({rid}, '{wall}', '{wall}')")
        if named:  # with the zone tables loaded, the named zone as well
            mysql_exec(ny, "SET time_zone = 'America/New_York'",
                       "INSERT INTO tz VALUES (5, '2021-07-01 12:00:00', '2021-07-01 12:00:00')")
    table, window, _ = run(reader, "tz", table_config(cdc_strategy="timestamp_only", cdc_timestamp_column="s"))
    got = {r["id"]: r for r in table.to_pylist()}
    utc = timezone.utc
    assert got[1]["s"] == datetime(2020, 11, 1, 5, 30, 0, 250000, tzinfo=utc)
    assert got[2]["s"] == datetime(2020, 11, 1, 6, 30, 0, 250000, tzinfo=utc)
    assert got[3]["s"] == datetime(2020, 3, 8, 6, 59, 59, 999999, tzinfo=utc)
    assert got[4]["s"] == datetime(2020, 3, 8, 7, 0, 0, tzinfo=utc)
    assert got[1]["w"] == got[2]["w"] == datetime(2020, 11, 1, 1, 30, 0, 250000)  # DATETIME: wall time as stored
    if named:
        assert got[5]["s"] == datetime(2021, 7, 1, 16, 0, tzinfo=utc)
    assert window.last.timestamp == ("2021-07-01T16:00:00.000000+00:00" if named
                                     else "2020-11-01T06:30:00.250000+00:00")


def _has_zone(conn, zone: str) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT CONVERT_TZ('2020-01-01 00:00:00', '+00:00', %s)", (zone,))
        return cur.fetchone()[0] is not None
