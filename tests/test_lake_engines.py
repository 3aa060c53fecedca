"""Issue 17: the lake is open by construction. Every Parquet part of the hostile
type suite (every MySQL type at its edges, tests/test_types_e2e.py) is read by

- pyarrow, with the Parquet schema checked column by column against the lake
  profile (lakeshift/lake_profile.py, docs/types.md),
- DuckDB's read_parquet, polars, and (slow) local Apache Spark through pyspark,

and every value must equal what MySQL holds under the documented policy (TIME
as MySQL's text, BIGINT UNSIGNED/BIT as DECIMAL(20,0), TIMESTAMP as the UTC
instant, zero dates as NULL, ...). `lakeshift lake ddl` is checked here too:
each dialect's statement parses with sqlglot, and the DuckDB view runs."""

from __future__ import annotations

import os
import re
import time
from datetime import timedelta
from decimal import Context, Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
import sqlglot
from kit.config import build_config
from kit.lake import local_storage
from kit.targets import make_target
from test_types_e2e import COLUMNS, NUL_ROW, canon, check_literals, hostile, insert_rows, run, source_truth, table_cfg

from lakeshift.batch import Manifest
from lakeshift.lake.ddl import external_table

__all__ = ["hostile"]  # the fixture, imported for its name

_TS = "Timestamp(isAdjustedToUTC={}, timeUnit=microseconds, is_from_converted_type=false, force_set_converted_type=false)"
DEC20 = ("FIXED_LEN_BYTE_ARRAY", "Decimal(precision=20, scale=0)")
STRING, BYTES = ("BYTE_ARRAY", "String"), ("BYTE_ARRAY", "None")
# (physical, logical) of every lake column, as the profile says (docs/types.md)
PROFILE = {
    "id": ("INT32", "None"), "zd": ("INT32", "Date"), "zdn": ("INT32", "Date"), "zdt": ("INT64", _TS.format("false")),
    "zts": ("INT64", _TS.format("true")), "biu": DEC20, "bi": ("INT64", "None"), "d65": STRING,
    "d38": ("FIXED_LEN_BYTE_ARRAY", "Decimal(precision=38, scale=10)"), "f": ("FLOAT", "None"),
    "db": ("DOUBLE", "None"), "vc": STRING, "tt": STRING, "ch": STRING, "s": STRING,
    "flag": ("INT32", "Int(bitWidth=8, isSigned=true)"), "js": STRING, "bl": BYTES, "vb": BYTES, "tm": STRING,
    "b1": DEC20, "b64": DEC20, "en": STRING, "st": STRING, "yr": ("INT32", "Int(bitWidth=16, isSigned=true)"),
    "g": BYTES, "_lakeshift_ord": ("INT64", "None"),
}


def mysql_time(text: str) -> timedelta:
    """MySQL's TIME text ('-838:59:59.000000'), the lake's documented form, as a duration."""
    m = re.fullmatch(r"(-?)(\d+):(\d\d):(\d\d(?:\.\d+)?)", text)
    assert m, text
    d = timedelta(hours=int(m.group(2)), minutes=int(m.group(3)), seconds=float(m.group(4)))
    return -d if m.group(1) else d


def lake_rows(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """An engine's rows (COLUMNS order) in the comparable form of test_types_e2e.canon."""
    out = []
    for row in sorted(rows, key=lambda r: r[0]):
        out.append(tuple(canon(c, mysql_time(v) if c == "tm" and v is not None else v) for c, v in zip(COLUMNS, row)))
    return out


def assert_equal_to_mysql(engine: str, got: list[tuple[Any, ...]], want: list[tuple[Any, ...]]) -> None:
    assert [r[0] for r in got] == [r[0] for r in want], engine
    for g, w in zip(got, want):
        for column, a, b in zip(COLUMNS, g, w):
            assert a == b, (engine, g[0], column, a, b)


@pytest.fixture
def lake(hostile: None, mysql: Any, mysql_db: str, tmp_path: Path, cli: Any,
         request: pytest.FixtureRequest) -> tuple[Path, list[tuple[Any, ...]], Path]:
    """The hostile table (NUL characters included: the lake keeps them) extracted into a local lake."""
    insert_rows(mysql, [NUL_ROW])
    tgt = make_target("duckdb", request, tmp_path)
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(tmp_path / "lake"), table_cfg())
    result = cli("sync", "pipeline", "-p", "p1", "-t", "hostile", "--backup-only", config_dir=config)
    assert result.exit_code == 0, result.output + result.stderr
    want = source_truth(mysql_db)
    check_literals({r[0]: r for r in want})
    return tmp_path / "lake" / "p1" / "hostile", want, config


def parts(folder: Path) -> list[Path]:
    found = sorted(folder.rglob("*.parquet"))
    assert found
    return found


def test_pyarrow_duckdb_and_polars_read_every_part_exactly(lake: tuple[Path, list[Any], Path]) -> None:
    import polars as pl

    folder, want, _ = lake
    for path in parts(folder):
        schema = pq.ParquetFile(path).schema
        got = {schema.column(i).name: (schema.column(i).physical_type, str(schema.column(i).logical_type))
               for i in range(len(schema))}
        for name in PROFILE:  # column by column, so a failure names the column
            assert got.get(name) == PROFILE[name], (path.name, name, got.get(name))
        assert list(got) == list(PROFILE)
    files = [str(p) for p in parts(folder)]
    arrow_rows = [tuple(r[c] for c in COLUMNS) for f in files for r in pq.read_table(f).to_pylist()]
    assert_equal_to_mysql("pyarrow", lake_rows(arrow_rows), want)

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    cols = ", ".join(f'"{c}"' for c in COLUMNS)
    duck_rows = con.execute(f"SELECT {cols} FROM read_parquet(?)", [files]).fetchall()
    assert_equal_to_mysql("duckdb", lake_rows(duck_rows), want)

    frame = pl.concat([pl.read_parquet(f) for f in files])
    assert_equal_to_mysql("polars", lake_rows(frame.select(COLUMNS).rows()), want)


@pytest.mark.slow
def test_local_apache_spark_reads_every_part_exactly(lake: tuple[Path, list[Any], Path],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    pyspark = pytest.importorskip("pyspark", reason="pyspark (the test extra) is not installed")
    from pyspark.sql import SparkSession

    folder, want, _ = lake
    monkeypatch.setenv("TZ", "UTC")  # Spark hands TIMESTAMP values to Python in the process's zone
    time.tzset()
    spark = (SparkSession.builder.master("local[1]").appName("lakeshift-lake-test")
             .config("spark.ui.enabled", "false").config("spark.driver.bindAddress", "127.0.0.1")
             .config("spark.driver.host", "127.0.0.1").config("spark.sql.session.timeZone", "UTC").getOrCreate())
    try:
        frame = spark.read.parquet(*[str(p) for p in parts(folder)])
        types = {f.name: f.dataType.simpleString() for f in frame.schema.fields}
        assert (types["biu"], types["b64"], types["zts"], types["zdt"], types["flag"]) == (
            "decimal(20,0)", "decimal(20,0)", "timestamp", "timestamp_ntz", "tinyint"), pyspark.__version__
        assert types["d38"] == "decimal(38,10)"
        # Python gets Spark's decimals in its own notation (1.00E-10); the scale is the column type's (asserted)
        scale = Decimal(1).scaleb(-10)
        wide = Context(prec=80)  # 38 digits: more than the default context's 28
        rows = [tuple(r[c].quantize(scale, context=wide) if c == "d38" and r[c] is not None else r[c] for c in COLUMNS)
                for r in frame.collect()]
    finally:
        spark.stop()
    assert_equal_to_mysql("spark", lake_rows(rows), want)


# ---------------------------------------------------------------- lakeshift lake ddl


def test_lake_ddl_for_every_dialect(lake: tuple[Path, list[Any], Path], cli: Any) -> None:
    folder, want, config = lake
    result = cli("lake", "ddl", "-p", "p1", "-t", "hostile", "--dialect", "duckdb", config_dir=config)
    assert result.exit_code == 0, result.output + result.stderr
    view = result.output.strip()
    assert view.startswith('CREATE OR REPLACE VIEW "hostile" AS SELECT')
    assert 'CAST("biu" AS DECIMAL(20,0)) AS "biu"' in view and 'CAST("zts" AS TIMESTAMPTZ) AS "zts"' in view
    assert not isinstance(sqlglot.parse_one(view, read="duckdb"), sqlglot.exp.Command)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(view)
    got = con.execute("SELECT " + ", ".join(f'"{c}"' for c in COLUMNS) + " FROM hostile").fetchall()
    assert_equal_to_mysql("duckdb view", lake_rows(got), want)

    refused = cli("lake", "ddl", "-p", "p1", "-t", "hostile", "--dialect", "athena", config_dir=config)
    assert refused.exit_code == 1 and "--dialect athena reads the lake from S3" in refused.stderr

    manifest = Manifest.from_json(next((folder / "_manifests").glob("*.json")).read_text())
    s3 = "s3://bucket/lake/p1/hostile"
    expected = {
        "athena": ("`biu` DECIMAL(20,0)", "`zts` TIMESTAMP", "`flag` TINYINT", "`yr` SMALLINT", "`g` BINARY",
                   "`tm` STRING", "`_lakeshift_ord` BIGINT", "LOCATION 's3://bucket/lake/p1/hostile/'"),
        "spectrum": ('"spectrum"."hostile"', '"biu" DECIMAL(20,0)', '"flag" SMALLINT', '"f" REAL',
                     '"db" DOUBLE PRECISION', '"tm" VARCHAR(65535)', "STORED AS PARQUET"),
        "snowflake": ('"biu" NUMBER(20,0) AS (CAST(VALUE:"biu" AS NUMBER(20,0)))',
                      '"zdt" TIMESTAMP_NTZ(6) AS (CAST(VALUE:"zdt" AS TIMESTAMP_NTZ(6)))',
                      "LOCATION = @lakeshift_lake/p1/hostile/", "PATTERN = '.*[.]parquet'"),
    }
    for dialect, fragments in expected.items():
        sql = external_table(manifest, s3, dialect, "hostile", rel="p1/hostile")
        for fragment in fragments:
            assert fragment in sql, (dialect, fragment, sql)
        tree = sqlglot.parse_one(sql, read={"spectrum": "redshift"}.get(dialect, dialect))
        assert not isinstance(tree, sqlglot.exp.Command), (dialect, sql)
        assert len(list(tree.find_all(sqlglot.exp.ColumnDef))) == len(COLUMNS) + 1, dialect
    assert os.environ.get("LAKESHIFT_CHECK_LAKE_PROFILE")  # every part above was checked when written
