"""Redshift's rule for COPY ... FORMAT AS PARQUET, as the tests apply it to every
COPY they emulate: columns are mapped by position and a Parquet type that is not
exactly the staging column's type fails the COPY ("incompatible Parquet schema";
Redshift does no coercion, docs/types.md). No cluster is reachable here."""

from __future__ import annotations

import re

import pyarrow.parquet as pq

_TS = "Timestamp(isAdjustedToUTC={}, timeUnit=microseconds, is_from_converted_type=false, force_set_converted_type=false)"

# (physical, logical) -> the Redshift column types that Parquet column loads into
_ACCEPTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("BOOLEAN", "None"): ("BOOLEAN",),
    ("INT32", "Int(bitWidth=8, isSigned=true)"): ("SMALLINT",),
    ("INT32", "Int(bitWidth=16, isSigned=true)"): ("SMALLINT",),
    ("INT32", "None"): ("INTEGER",),
    ("INT32", "Int(bitWidth=32, isSigned=true)"): ("INTEGER",),
    ("INT64", "None"): ("BIGINT",),
    ("INT64", "Int(bitWidth=64, isSigned=true)"): ("BIGINT",),
    ("FLOAT", "None"): ("REAL",),
    ("DOUBLE", "None"): ("DOUBLE PRECISION",),
    ("INT32", "Date"): ("DATE",),
    ("INT64", _TS.format("false")): ("TIMESTAMP",),
    ("INT64", _TS.format("true")): ("TIMESTAMPTZ", "TIMESTAMP"),
    ("BYTE_ARRAY", "String"): ("VARCHAR",),
    ("BYTE_ARRAY", "None"): ("VARBYTE",),
}


def staging_columns(create: str) -> list[tuple[str, str]]:
    """(name, type) of a CREATE TEMP TABLE "..." ("a" T, "b" T(1,2), ...) statement."""
    body = create[create.index("(") + 1:create.rindex(")")]
    return re.findall(r'"([^"]+)" ([A-Z ]+(?:\(\d+(?:,\d+)?\))?)(?:, |$)', body)


def copy_mismatches(columns: list[tuple[str, str]], schema: pq.ParquetSchema) -> list[str]:
    """Why Redshift would refuse to COPY a part with `schema` into `columns` ([] when it accepts it)."""
    if len(columns) != len(schema):
        return [f"{len(schema)} Parquet columns for {len(columns)} staging columns"]
    bad = []
    for i, (name, sql_type) in enumerate(columns):
        c = schema.column(i)
        physical, logical = c.physical_type, str(c.logical_type)
        m = re.match(r"Decimal\(precision=(\d+), scale=(\d+)\)", logical)
        if m:
            ok = sql_type == f"DECIMAL({m.group(1)},{m.group(2)})"
        else:
            ok = re.sub(r"\(.*", "", sql_type) in _ACCEPTS.get((physical, logical), ())
        if not ok or c.name != name:
            bad.append(f"{name} {sql_type} <- Parquet {c.name} {physical}/{logical}")
    return bad


def assert_copy_accepts(columns: list[tuple[str, str]], schema: pq.ParquetSchema, where: str) -> None:
    bad = copy_mismatches(columns, schema)
    assert not bad, f"Redshift would refuse the COPY of {where} (incompatible Parquet schema): {bad}"
