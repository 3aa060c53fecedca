"""Type mapping per target, the evolution rules, and validate_batch (pure)."""

from __future__ import annotations

import pyarrow as pa
import pytest
from load_kit import col, manifest

from lakeshift.batch import BatchFile
from lakeshift.config.models import TableConfig
from lakeshift.errors import LoadError
from lakeshift.load import validate_batch
from lakeshift.load.dialects import DuckDBTypes, PostgresTypes, RedshiftTypes
from lakeshift.load.types import TType, compare, parse_arrow

PG, RS, DK = PostgresTypes(), RedshiftTypes(), DuckDBTypes()

# (column, PostgreSQL, Redshift, DuckDB)
MAPPING = [
    (col("c", pa.int8()), "smallint", "SMALLINT", "TINYINT"),
    (col("c", pa.uint8()), "smallint", "SMALLINT", "UTINYINT"),
    (col("c", pa.int16()), "smallint", "SMALLINT", "SMALLINT"),
    (col("c", pa.uint16()), "integer", "INTEGER", "USMALLINT"),
    (col("c", pa.int32(), "mediumint(9)", "mediumint"), "integer", "INTEGER", "INTEGER"),
    (col("c", pa.uint32(), "mediumint(8) unsigned", "mediumint"), "bigint", "BIGINT", "UINTEGER"),
    (col("c", pa.int32()), "integer", "INTEGER", "INTEGER"),
    (col("c", pa.uint32()), "bigint", "BIGINT", "UINTEGER"),
    (col("c", pa.int64()), "bigint", "BIGINT", "BIGINT"),
    (col("c", pa.uint64()), "numeric(20,0)", "DECIMAL(20,0)", "UBIGINT"),
    (col("c", pa.uint64(), "bit(64)", "bit"), "numeric(20,0)", "DECIMAL(20,0)", "UBIGINT"),
    (col("c", pa.bool_()), "boolean", "BOOLEAN", "BOOLEAN"),
    (col("c", pa.int8(), "tinyint(1)", "tinyint"), "smallint", "SMALLINT", "TINYINT"),  # tinyint1_as_boolean off
    (col("c", pa.decimal128(12, 2)), "numeric(12,2)", "DECIMAL(12,2)", "DECIMAL(12,2)"),
    (col("c", pa.decimal128(38, 10)), "numeric(38,10)", "DECIMAL(38,10)", "DECIMAL(38,10)"),
    (col("c", pa.string(), "decimal(65,30)", "decimal", numeric_precision=65, numeric_scale=30, lake_encoding="text"),
     "numeric(65,30)", "VARCHAR(67)", "VARCHAR"),
    (col("c", pa.float32()), "real", "REAL", "FLOAT"),
    (col("c", pa.float64()), "double precision", "DOUBLE PRECISION", "DOUBLE"),
    (col("c", pa.date32()), "date", "DATE", "DATE"),
    (col("c", pa.timestamp("us")), "timestamp(6)", "TIMESTAMP", "TIMESTAMP"),
    (col("c", pa.timestamp("us", tz="UTC")), "timestamptz(6)", "TIMESTAMPTZ", "TIMESTAMPTZ"),
    (col("c", pa.string(), "time(6)", "time", lake_encoding="text"), "interval", "VARCHAR(20)", "INTERVAL"),
    (col("c", pa.int16(), "year(4)", "year"), "smallint", "SMALLINT", "SMALLINT"),
    (col("c", pa.string(), "varchar(255)", "varchar"), "varchar(255)", "VARCHAR(1020)", "VARCHAR"),
    (col("c", pa.string(), "varchar(20000)", "varchar"), "varchar(20000)", "VARCHAR(65535)", "VARCHAR"),
    (col("c", pa.string(), "char(10)", "char"), "varchar(10)", "VARCHAR(40)", "VARCHAR"),
    # '' and NULL only: no target takes a length of 0 (PostgreSQL and Redshift refuse varchar(0))
    (col("c", pa.string(), "varchar(0)", "varchar"), "varchar(1)", "VARCHAR(4)", "VARCHAR"),
    (col("c", pa.string(), "char(0)", "char"), "varchar(1)", "VARCHAR(4)", "VARCHAR"),
    (col("c", pa.binary(), "binary(0)", "binary"), "bytea", "VARBYTE(1)", "BLOB"),
    (col("c", pa.string(), "text", "text"), "text", "VARCHAR(65535)", "VARCHAR"),
    (col("c", pa.string(), "longtext", "longtext"), "text", "VARCHAR(65535)", "VARCHAR"),
    (col("c", pa.string(), "enum('a','bb')", "enum", char_max_length=2), "varchar(2)", "VARCHAR(8)", "VARCHAR"),
    (col("c", pa.string(), "set('a','b')", "set", char_max_length=3), "varchar(3)", "VARCHAR(12)", "VARCHAR"),
    (col("c", pa.string(), "json", "json"), "jsonb", "SUPER", "JSON"),
    (col("c", pa.binary(), "blob", "blob"), "bytea", "VARBYTE(65535)", "BLOB"),
    (col("c", pa.binary(), "longblob", "longblob"), "bytea", "VARBYTE(16777216)", "BLOB"),
    (col("c", pa.binary(), "binary(16)", "binary"), "bytea", "VARBYTE(16)", "BLOB"),
    (col("c", pa.binary(), "varbinary(300)", "varbinary"), "bytea", "VARBYTE(300)", "BLOB"),
    (col("c", pa.binary(), "geometry", "geometry"), "bytea", "VARBYTE(16777216)", "BLOB"),
]


@pytest.mark.parametrize(("column", "pg", "rs", "duck"), MAPPING, ids=[f"{m[0].mysql_type}-{m[0].arrow_type}" for m in MAPPING])
def test_mysql_aware_types_per_target(column, pg, rs, duck):
    assert PG.render(PG.target_type(column)) == pg
    assert RS.render(RS.target_type(column)) == rs
    assert DK.render(DK.target_type(column)) == duck


@pytest.mark.parametrize("dialect", [PG, RS, DK], ids=lambda d: d.name)
def test_every_type_reads_back_as_itself(dialect):
    """What information_schema reports for a type we created parses to the same TType."""
    catalog = {  # rendered -> (data_type, char len, precision, scale) as each catalogue reports it
        "smallint": ("smallint", None, 16, 0), "integer": ("integer", None, 32, 0), "bigint": ("bigint", None, 64, 0),
        "real": ("real", None, 24, None), "double precision": ("double precision", None, 53, None),
        "boolean": ("boolean", None, None, None), "date": ("date", None, None, None),
        "timestamp(6)": ("timestamp without time zone", None, None, None),
        "timestamptz(6)": ("timestamp with time zone", None, None, None), "interval": ("interval", None, None, None),
        "text": ("text", None, None, None), "bytea": ("bytea", None, None, None), "jsonb": ("jsonb", None, None, None),
        "SUPER": ("super", None, None, None), "TIMESTAMP": ("timestamp without time zone", None, None, None),
        "TIMESTAMPTZ": ("timestamp with time zone", None, None, None),
    }
    for column, *_ in MAPPING:
        t = dialect.target_type(column)
        rendered = dialect.render(t)
        if dialect is DK:
            got = dialect.parse(rendered, None, None, None)
        elif rendered.lower().startswith(("numeric(", "decimal(")):
            p, s = rendered[rendered.index("(") + 1:-1].split(",")
            got = dialect.parse("numeric", None, int(p), int(s))
        elif rendered.lower().startswith("varchar("):
            got = dialect.parse("character varying", int(rendered[8:-1]), None, None)
        elif rendered.startswith("VARBYTE("):
            got = dialect.parse("binary varying", int(rendered[8:-1]), None, None)
        else:
            key = rendered if rendered in catalog else rendered.lower()
            got = dialect.parse(*catalog[key])
        assert compare(got, t) == "same", (column, rendered, got, t)


@pytest.mark.parametrize(("old", "new", "expected"), [
    (TType("text", 10), TType("text", 50), "widen"),
    (TType("text", 50), TType("text", 10), "incompatible"),  # narrowing
    (TType("text", 10), TType("text"), "widen"),
    (TType("int", 32), TType("int", 64), "widen"),
    (TType("int", 64), TType("int", 32), "incompatible"),
    (TType("int", 64), TType("numeric", 20, 0), "widen"),  # BIGINT -> BIGINT UNSIGNED on PostgreSQL
    (TType("uint", 32), TType("int", 64), "widen"),
    (TType("int", 32), TType("uint", 32), "incompatible"),  # negatives would be lost
    (TType("numeric", 10, 2), TType("numeric", 12, 2), "widen"),
    (TType("numeric", 10, 2), TType("numeric", 12, 4), "widen"),
    (TType("numeric", 10, 2), TType("numeric", 10, 3), "incompatible"),  # fewer integer digits
    (TType("float", 32), TType("float", 64), "widen"),
    (TType("text", 10), TType("int", 32), "incompatible"),
    (TType("timestamp"), TType("timestamptz"), "incompatible"),
    (TType("bool"), TType("int", 16), "incompatible"),
    (TType("json"), TType("json"), "same"),
])
def test_compare(old, new, expected):
    assert compare(old, new) == expected


def test_parse_arrow_round_trips_manifest_strings():
    for t in (pa.int8(), pa.uint64(), pa.bool_(), pa.decimal128(38, 10), pa.decimal128(20, 0), pa.float32(),
              pa.float64(), pa.date32(), pa.timestamp("us"), pa.timestamp("us", tz="UTC"), pa.string(),
              pa.large_string(), pa.binary()):
        assert parse_arrow(str(t)) == t
    with pytest.raises(LoadError, match="unsupported Arrow type"):
        parse_arrow("list<item: int32>")


# ---------------------------------------------------------------- validation


def _m(rows: int, nulls: dict[str, int]):
    cols = [col("id", pa.int64()), col("email", pa.string(), "varchar(100)", "varchar"), col("note", pa.string())]
    m = manifest(cols, [BatchFile("t/p.parquet", rows, 10)], null_counts=nulls)
    return m


def test_validate_required_columns_missing():
    cfg = TableConfig(validation={"required_columns": ["id", "phone"]})
    problems = validate_batch(_m(10, {}), cfg)
    assert len(problems) == 1 and "'phone'" in problems[0] and "missing" in problems[0]


def test_validate_null_percentage_on_required_columns_names_column_and_measure():
    cfg = TableConfig(validation={"required_columns": ["email"], "max_null_percentage": 10})
    problems = validate_batch(_m(8, {"email": 1, "note": 8}), cfg)
    assert problems == ["column 'email' is 12.50% NULL (1 of 8 rows), above max_null_percentage 10%"]
    # 'note' is 100% NULL but not required: not judged when required columns are configured
    assert validate_batch(_m(10, {"email": 1, "note": 10}), cfg) == []


def test_validate_null_percentage_without_required_columns_checks_every_column():
    cfg = TableConfig(validation={"max_null_percentage": 50})
    problems = validate_batch(_m(10, {"email": 1, "note": 6}), cfg)
    assert problems == ["column 'note' is 60.00% NULL (6 of 10 rows), above max_null_percentage 50%"]


def test_validate_passes_and_handles_empty_batches():
    cfg = TableConfig(validation={"required_columns": ["id"], "max_null_percentage": 0})
    assert validate_batch(_m(10, {"id": 0}), cfg) == []
    assert validate_batch(_m(0, {}), cfg) == []
    assert validate_batch(_m(5, {"id": 5}), TableConfig()) == []
