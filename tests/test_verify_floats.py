"""verify --deep of FLOAT/DOUBLE columns, hashed in SQL as their exact 'MpL' form (M * 2^(L-52))
(verify/canonical.py): on PostgreSQL and DuckDB every change is found, bit for bit
(0.0 vs -0.0, the next float, NULL vs 0, NaN), with BIGINT UNSIGNED keys above 2^63
and a text key; and MySQL's window aggregate in two key ranges equals one statement's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kit.targets import make_target
from verify_kit import example_ids, pipeline_config, tamper, verify

from lakeshift.verify import canonical as C

from conftest import mysql_exec

ROWS = ("(1, 3.4028234663852886e38, 1.7976931348623157e308), (2, -3.4028234663852886e38, -1.7976931348623157e308), "
        "(3, NULL, NULL), (4, 0, 0), (5, 1.401298464324817e-45, 4.9e-324), (6, 0.1, 0.1), (7, -2.5, 1e-300), "
        "(9223372036854775807, 1, 2), (9223372036854775808, 3, 4), (18446744073709551615, 5.5, 6.5), "
        # around powers of two (log2 one off) and the subnormals' edge
        "(10, 16777216, 4503599627370496), (11, 16777215, 9007199254740991), (12, 0.5, 0.49999999999999994), "
        "(13, 1.1754943508222875e-38, 2.2250738585072014e-308), (14, 1.1754942106924411e-38, 2.225073858507201e-308)")
CHANGES = {  # id: the change on the target
    3: "f = 0",  # NULL -> 0
    5: "db = CAST('1e-323' AS DOUBLE PRECISION)",  # the next subnormal
    12: "db = CAST('0.5' AS DOUBLE PRECISION)",  # the next double up, a power of two
    6: "db = CAST('0.10000000000000002' AS DOUBLE PRECISION)",  # the next double
    7: "f = CAST('-2.5000002' AS REAL)",  # the next float32
    9223372036854775808: "db = CAST('NaN' AS DOUBLE PRECISION)",
    18446744073709551615: "f = NULL",
}


@pytest.mark.parametrize("kind", ["postgres", "duckdb"])
def test_float_changes_are_found_bit_for_bit(kind: str, mysql: Any, mysql_db: str, tmp_path: Path, cli: Any,
                                             request: pytest.FixtureRequest) -> None:
    mysql_exec(mysql, "CREATE TABLE fl (id BIGINT UNSIGNED NOT NULL PRIMARY KEY, f FLOAT, db DOUBLE)",
               f"INSERT INTO fl VALUES {ROWS}",
               "CREATE TABLE fk (code VARCHAR(24) NOT NULL PRIMARY KEY, db DOUBLE)",
               "INSERT INTO fk SELECT CONCAT('k', id), db FROM fl")
    tgt = make_target(kind, request, tmp_path)
    config = pipeline_config(tmp_path, mysql_db, tgt, {"fl": {"cdc_strategy": "full_sync"},
                                                       "fk": {"cdc_strategy": "full_sync"}})
    assert cli("sync", "pipeline", "-p", "p1", "-t", "fl", "-t", "fk", config_dir=config).exit_code == 0
    same = verify(config, ["fl", "fk"], deep=True)
    assert same["fl"].equal and same["fk"].equal, same
    # 0.0 -> -0.0 (DuckDB's UPDATE keeps a 0.0 it finds equal: the row is written again)
    minus_zero = "CAST('-0' AS DOUBLE PRECISION)"
    tamper(tgt, *[f"UPDATE fl SET {change} WHERE id = {i}" for i, change in CHANGES.items()],
           "DELETE FROM fl WHERE id = 4", f"INSERT INTO fl VALUES (4, 0, {minus_zero})",
           "DELETE FROM fk WHERE code = 'k4'", f"INSERT INTO fk VALUES ('k4', {minus_zero})",
           "UPDATE fk SET db = NULL WHERE code = 'k18446744073709551615'")
    r = verify(config, ["fl", "fk"], deep=True)
    assert (r["fl"].missing, r["fl"].extra, r["fl"].different) == (0, 0, len(CHANGES) + 1), r["fl"].examples
    assert example_ids(r["fl"], "different") == sorted([*CHANGES, 4])
    assert example_ids(r["fk"], "different", "code") == ["k18446744073709551615", "k4"]
    assert not any("compared in Arrow" in n for n in r["fl"].notes), r["fl"].notes


def test_mysql_aggregate_in_two_key_ranges_equals_one_statement(mysql: Any, mysql_db: str, tmp_path: Path,
                                                                request: pytest.FixtureRequest) -> None:
    """--deep with an integer primary key: MySQL's windows and whole-table sums come from two key-range
    statements, added; the same counts and sums as one statement over the whole table (BIGINT UNSIGNED
    beyond 2^63)."""
    from lakeshift.config.loader import load_config
    from lakeshift.source import MySQLReader
    from lakeshift.verify import canonical as C
    from lakeshift.verify import queries as Q
    from lakeshift.verify.sides import SourceSide

    mysql_exec(mysql, "CREATE TABLE fl (id BIGINT UNSIGNED NOT NULL PRIMARY KEY, f FLOAT, db DOUBLE, t VARCHAR(9))",
               f"INSERT INTO fl (id, f, db) VALUES {ROWS}", "UPDATE fl SET t = CONCAT('t|', id % 7)")
    config = pipeline_config(tmp_path, mysql_db, make_target("duckdb", request, tmp_path),
                             {"fl": {"cdc_strategy": "full_sync"}})
    cfg = load_config(str(config))
    reader = MySQLReader(cfg.source("src"), cfg.settings)
    try:
        desc = reader.describe("fl", cfg.pipeline("p1").tables["fl"])
        source = SourceSide(reader, desc, None)
        key = [c for c in desc.columns if c.name == "id"]
        deep = Q.Shape(key, [c for c in desc.columns if C.sql_kind(c, C.DUCKDB) is not None], 16)
        keys = Q.Shape(key, key, 16)
        assert len(source.halves(deep)) == 2 and len(source.halves(Q.Shape(key, key, 16))) == 1
        whole = {int(r[0]): tuple(int(v) for v in r[1:]) for r in source.query(Q.aggregate_sql(source.side, deep))}
        assert source.aggregate(deep) == whole and sum(v[0] for v in whole.values()) == 15
        one = tuple(int(v) for v in source.query(Q.whole_sql(source.side, deep))[0])
        assert source.whole(deep) == one
    finally:
        reader.close()


def _band_edges() -> list[float]:
    """Both sides of every band's lowest power of two, negated too, and the hostile values above."""
    import math

    values = [5e-324, 1e-323, 2.225073858507201e-308, 0.1, 1.7976931348623157e308, 3.4028234663852886e38,
              1.401298464324817e-45, 0.49999999999999994, 9007199254740991.0, 123456789.123456789]
    for low in C.FLOAT_BANDS:
        edge = 2.0 ** low
        values += [edge, math.nextafter(edge, 0.0), math.nextafter(edge, math.inf)]
    return sorted({v for x in values for v in (x, -x)})


def test_float_text_is_the_reference_on_every_engine(mysql: Any, pg: Any) -> None:
    """The SQL of each engine gives canonical.float_band_text's text for every band edge (exact literals,
    exact scaling, the subnormals' two factors)."""
    import duckdb

    values = _band_edges()
    want = [C.float_band_text(v) for v in values]
    rows = ", ".join(f"({i}, {v!r})" for i, v in enumerate(values))
    mysql_exec(mysql, "CREATE TABLE fv (i INT PRIMARY KEY, x DOUBLE)", f"INSERT INTO fv VALUES {rows}")
    with mysql.cursor() as cur:
        for single in (True, False):  # as a FLOAT's double (x * 1e0) and as a DOUBLE (x)
            cur.execute(f"SELECT {C.float_text(C.MYSQL, 'x', single)} FROM fv ORDER BY i")
            assert [r[0] for r in cur.fetchall()] == want
    pg_rows = ", ".join(f"({i}, '{v!r}'::float8)" for i, v in enumerate(values))
    got = pg.execute(f"SELECT {C.float_text(C.POSTGRES, 'x')} FROM (VALUES {pg_rows}) AS v(i, x) ORDER BY i")
    assert [r[0] for r in got.fetchall()] == want
    duck = duckdb.connect()
    duck_rows = ", ".join(f"({i}, CAST('{v!r}' AS DOUBLE))" for i, v in enumerate(values))
    got = duck.sql(f"SELECT {C.float_text(C.DUCKDB, 'x')} FROM (VALUES {duck_rows}) AS v(i, x) ORDER BY i").fetchall()
    assert [r[0] for r in got] == want
