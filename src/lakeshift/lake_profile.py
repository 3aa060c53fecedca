"""The lake type profile: the only Parquet types a lake part may hold, chosen so
that Redshift COPY/Spectrum, Athena/Trino, Spark, Snowflake, DuckDB, polars and
pyarrow read every value exactly (docs/types.md, "The lake type profile").

- no unsigned integers (Spectrum does no coercion, Trino does not infer
  UINT_*, Spark < 3.2 rejects them): each widens to the next signed type, and
  64-bit unsigned (BIGINT UNSIGNED, BIT) to DECIMAL(20,0);
- timestamps INT64 microseconds (never nanoseconds, which Spark reads only as
  longs and which overflow outside 1677..2262, nor the deprecated INT96),
  isAdjustedToUTC only for instants (MySQL TIMESTAMP), false for DATETIME;
- decimals as Parquet DECIMAL on FIXED_LEN_BYTE_ARRAY up to 38 digits.

PROFILE_VERSION is written into each manifest (`lake_profile`); batches of an
earlier profile (no field: version 1, with unsigned types) are converted to this
one when they are read for loading (`upgrade_type`)."""

from __future__ import annotations

import dataclasses
import os
import re

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lakeshift.arrow_types import MAX_DECIMAL128, parse_arrow_type
from lakeshift.batch import LAKE_PROFILE as PROFILE_VERSION, Column, Manifest

UINT64_DECIMAL = pa.decimal128(20, 0)  # every value of 0 .. 18446744073709551615 exactly
ROW_ORDINAL = "_lakeshift_ord"  # the row's position in its batch (0, 1, ...): last column of a keyed batch's parts

# The unsigned width a MySQL integer type holds (BIT(n) is at most 64 bits).
UNSIGNED_BITS = {"tinyint": 8, "smallint": 16, "mediumint": 32, "int": 32, "integer": 32, "bigint": 64, "bit": 64}

# Environment switch for the test suite: every part the writer closes is checked (check_part).
CHECK_ENV = "LAKESHIFT_CHECK_LAKE_PROFILE"


def ordinals(start: int, n: int) -> pa.Array:
    """int64 start, start+1, ..., start+n-1 (vectorised: a cumulative sum of ones)."""
    if not n:
        return pa.array([], pa.int64())
    return pc.add(pc.cumulative_sum(pa.repeat(pa.scalar(1, pa.int64()), n)), pa.scalar(start - 1, pa.int64()))


def unsigned_type(bits: int) -> pa.DataType:
    """The profile's type for the unsigned integers of `bits` bits."""
    return {8: pa.int16(), 16: pa.int32(), 32: pa.int64()}.get(bits, UINT64_DECIMAL)


def upgrade_type(arrow: pa.DataType) -> pa.DataType:
    """A type of an earlier profile -> this profile's (the same type when it already is one)."""
    if pa.types.is_unsigned_integer(arrow):
        return unsigned_type(arrow.bit_width)
    if pa.types.is_timestamp(arrow) and arrow.unit in ("ns", "s", "ms"):
        return pa.timestamp("us", tz=arrow.tz)
    return arrow


def upgrade_manifest(manifest: Manifest) -> Manifest:
    """The manifest of an earlier profile with this profile's column types; its
    lake_profile stays, so a reader knows the parts still hold the old types."""
    if manifest.lake_profile >= PROFILE_VERSION:
        return manifest
    return dataclasses.replace(manifest, columns=[_upgrade_column(c) for c in manifest.columns])


def _upgrade_column(c: Column) -> Column:
    try:
        arrow = parse_arrow_type(c.arrow_type)
    except ValueError:
        return c  # refused by name where the batch is loaded
    return dataclasses.replace(c, arrow_type=str(upgrade_type(arrow)))


def legacy_unsigned(manifest: Manifest) -> list[str]:
    """The columns whose parts still hold unsigned Parquet types (a batch of profile 1)."""
    if manifest.lake_profile >= PROFILE_VERSION:
        return []
    return [c.name for c in manifest.columns
            if c.data_type == "bit" or (c.unsigned and c.data_type in UNSIGNED_BITS)]


# (physical type, logical type) pairs allowed in a part, as pyarrow names them.
_LOGICAL_OK = {
    ("BOOLEAN", "None"), ("INT32", "Int(bitWidth=8, isSigned=true)"), ("INT32", "Int(bitWidth=16, isSigned=true)"),
    ("INT32", "Int(bitWidth=32, isSigned=true)"), ("INT32", "None"), ("INT64", "Int(bitWidth=64, isSigned=true)"),
    ("INT64", "None"), ("FLOAT", "None"), ("DOUBLE", "None"), ("INT32", "Date"), ("BYTE_ARRAY", "String"),
    ("BYTE_ARRAY", "None"),
    ("INT64", "Timestamp(isAdjustedToUTC=true, timeUnit=microseconds, is_from_converted_type=false, "
              "force_set_converted_type=false)"),
    ("INT64", "Timestamp(isAdjustedToUTC=false, timeUnit=microseconds, is_from_converted_type=false, "
              "force_set_converted_type=false)"),
}


_DECIMAL = re.compile(r"Decimal\(precision=(\d+), scale=\d+\)")


def profile_violations(schema: pq.ParquetSchema) -> list[str]:
    """'column: physical/logical' for every Parquet column outside the profile."""
    bad = []
    for i in range(len(schema)):
        col = schema.column(i)
        physical, logical = col.physical_type, str(col.logical_type)
        decimal = _DECIMAL.fullmatch(logical)
        if decimal and physical == "FIXED_LEN_BYTE_ARRAY" and int(decimal.group(1)) <= MAX_DECIMAL128:
            continue
        if (physical, logical) not in _LOGICAL_OK:
            bad.append(f"{col.name}: {physical}/{logical}")
    return bad


def check_part(path: str, filesystem: object) -> None:
    """Raise AssertionError when the part at `path` holds a type outside the profile.
    Only with LAKESHIFT_CHECK_LAKE_PROFILE set (the test suite's conftest), never per production run."""
    if not os.environ.get(CHECK_ENV):
        return
    try:
        with filesystem.open_input_file(path) as f:  # type: ignore[attr-defined]
            bad = profile_violations(pq.ParquetFile(f).schema)
    except OSError:
        return  # the lake is unreachable (a fault test cuts S3): the run fails on its own next access
    if bad:
        raise AssertionError(f"lake part {path} holds types outside the lake profile: {'; '.join(bad)}")
