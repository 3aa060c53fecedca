"""MySQL-aware column types, and the rules for schema evolution.

A lake column is classified once (`classify`: what the Parquet value *means*,
from its Arrow type, MySQL DATA_TYPE and lake encoding), then each target
dialect (load/dialects.py) maps that meaning to its own exact type (`TType`).
Types read back from a target's catalogue are parsed into the same `TType`,
so "is the new type the same, a safe widening, or incompatible?" is one
comparison (`compare`) for every target. The staging types at the end say
what each target's bulk load puts a Parquet column into."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

from lakeshift.arrow_types import parse_arrow_type
from lakeshift.batch import Column
from lakeshift.errors import LoadError
from lakeshift.lake_profile import UNSIGNED_BITS

# ---------------------------------------------------------------- the target type model


@dataclass(frozen=True)
class TType:
    """A target column type, dialect-neutral.

    kind: int | uint | numeric | float | bool | date | timestamp | timestamptz |
          interval | text | bytes | json | other
    size: bits (int/uint/float), precision (numeric), max length (text/bytes);
          None = unbounded (PostgreSQL text/bytea/numeric, DuckDB VARCHAR/BLOB)
    scale: numeric scale.  name: the catalogue's own name for kind "other"."""

    kind: str
    size: int | None = None
    scale: int | None = None
    name: str | None = None


# Decimal digits needed for every value of an integer type.
INT_DIGITS = {("int", 8): 3, ("int", 16): 5, ("int", 32): 10, ("int", 64): 19, ("int", 128): 39,
               ("uint", 8): 3, ("uint", 16): 5, ("uint", 32): 10, ("uint", 64): 20}


def _int_range(t: TType) -> tuple[int, int]:
    bits = t.size or 64
    return (0, 2**bits - 1) if t.kind == "uint" else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def fits(a: TType, b: TType) -> bool:
    """Every value of type `a` is exactly representable in type `b`."""
    if a == b:
        return True
    ints = ("int", "uint")
    if a.kind in ints and b.kind in ints:
        lo_a, hi_a = _int_range(a)
        lo_b, hi_b = _int_range(b)
        return lo_b <= lo_a and hi_a <= hi_b
    if a.kind in ints and b.kind == "numeric":
        return b.size is None or INT_DIGITS[(a.kind, a.size or 64)] <= b.size - (b.scale or 0)
    if a.kind == "numeric" and b.kind == "numeric":
        if b.size is None:
            return True
        if a.size is None:
            return False
        return (a.scale or 0) <= (b.scale or 0) and a.size - (a.scale or 0) <= b.size - (b.scale or 0)
    if a.kind == "numeric" and b.kind in ints:
        if a.size is None or (a.scale or 0) != 0:
            return False
        lo, hi = _int_range(b)
        return lo <= -(10**a.size - 1) and 10**a.size - 1 <= hi
    if a.kind == b.kind == "float":
        return (a.size or 64) <= (b.size or 64)
    if a.kind == b.kind and a.kind in ("text", "bytes"):
        return b.size is None or (a.size is not None and a.size <= b.size)
    if a.kind == b.kind and a.kind != "other":
        return True  # bool, date, timestamp, timestamptz, interval, json: no parameters that matter
    return False


Change = Literal["same", "widen", "incompatible"]


def compare(old: TType, new: TType) -> Change:
    """`old` is in the target, `new` is what the batch needs. A narrowing (the
    new type is strictly smaller) counts as incompatible: the target would no
    longer mirror the source type."""
    new_in_old, old_in_new = fits(new, old), fits(old, new)
    if new_in_old and old_in_new:
        return "same"
    if old_in_new:
        return "widen"
    return "incompatible"


# ---------------------------------------------------------------- Arrow types

def parse_arrow(text: str) -> pa.DataType:
    """str(pa type) -> the pa type (the manifest stores types as text)."""
    try:
        return parse_arrow_type(text)
    except ValueError:
        raise LoadError(f"unsupported Arrow type {text.strip()!r} in the batch") from None


def same_arrow(a: pa.DataType, b: pa.DataType) -> bool:
    """Equal up to 32/64-bit offsets (string vs large_string)."""
    def norm(t: pa.DataType) -> pa.DataType:
        if pa.types.is_large_string(t) or pa.types.is_string_view(t):
            return pa.string()
        if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
            return pa.binary()
        return t
    return norm(a) == norm(b)


# ---------------------------------------------------------------- what a lake column means

_BLOB_BYTES = {"tinyblob": 255, "blob": 65535, "mediumblob": 16777215, "longblob": 4294967295}
_BOUNDED_TEXT = ("varchar", "char")
_ENUM_SET = ("enum", "set")


@dataclass(frozen=True)
class Meaning:
    """kind: int | uint | bool | numeric | numeric_text | float | date | timestamp |
    timestamptz | time_text | text | json | bytes.  size/scale as in TType;
    for text: characters (None = unbounded); for bytes: bytes."""

    kind: str
    size: int | None = None
    scale: int | None = None
    data_type: str = ""


def _text_length(col: Column) -> int | None:
    if col.data_type in _BOUNDED_TEXT or col.data_type in _ENUM_SET:
        # VARCHAR(0)/CHAR(0) hold only '' and NULL; no target takes a length of 0 (varchar(0) is invalid)
        return None if col.char_max_length is None else max(col.char_max_length, 1)
    return None


def classify(col: Column) -> Meaning:
    arrow = parse_arrow(col.arrow_type)
    dt = (col.data_type or "").lower()
    if pa.types.is_string(arrow) or pa.types.is_large_string(arrow) or pa.types.is_string_view(arrow):
        if dt == "time":
            return Meaning("time_text", data_type=dt)
        if dt in ("decimal", "numeric"):
            p, s = _decimal_params(col)
            return Meaning("numeric_text", p, s, data_type=dt)
        if dt == "json":
            return Meaning("json", data_type=dt)
        return Meaning("text", _text_length(col), data_type=dt)
    if pa.types.is_binary(arrow) or pa.types.is_large_binary(arrow) or pa.types.is_fixed_size_binary(arrow):
        if dt in ("binary", "varbinary"):
            return Meaning("bytes", col.char_max_length, data_type=dt)
        return Meaning("bytes", _BLOB_BYTES.get(dt), data_type=dt)
    if pa.types.is_boolean(arrow):
        return Meaning("bool", data_type=dt)
    if _unsigned(col, dt) and (pa.types.is_integer(arrow) or pa.types.is_decimal(arrow)):
        # The lake widens unsigned integers (lake_profile.py); the targets keep the MySQL range.
        return Meaning("uint", UNSIGNED_BITS[dt], data_type=dt)
    if pa.types.is_signed_integer(arrow):
        return Meaning("int", arrow.bit_width, data_type=dt)
    if pa.types.is_unsigned_integer(arrow):
        return Meaning("uint", arrow.bit_width, data_type=dt)
    if pa.types.is_decimal(arrow):
        return Meaning("numeric", arrow.precision, arrow.scale, data_type=dt)
    if pa.types.is_floating(arrow):
        return Meaning("float", 32 if arrow.bit_width <= 32 else 64, data_type=dt)
    if pa.types.is_date(arrow):
        return Meaning("date", data_type=dt)
    if pa.types.is_timestamp(arrow):
        return Meaning("timestamptz" if arrow.tz else "timestamp", data_type=dt)
    raise LoadError(f"column {col.name!r}: no target type for lake type {col.arrow_type} (MySQL {col.mysql_type})")


def _unsigned(col: Column, dt: str) -> bool:
    return dt == "bit" or (col.unsigned and dt in UNSIGNED_BITS)


def _decimal_params(col: Column) -> tuple[int, int]:
    if col.numeric_precision is not None:
        return col.numeric_precision, col.numeric_scale or 0
    m = re.search(r"\((\d+)\s*(?:,\s*(\d+))?\)", col.mysql_type or "")
    if not m:
        raise LoadError(f"column {col.name!r}: cannot read precision/scale of {col.mysql_type!r}")
    return int(m.group(1)), int(m.group(2) or 0)


# ---------------------------------------------------------------- staging (what the Parquet holds)

REDSHIFT_VARCHAR_MAX = 65535
REDSHIFT_VARBYTE_MAX = 16_777_216  # VARBYTE's documented maximum (bytes)


def redshift_staging_type(arrow: pa.DataType) -> str:
    """The column type COPY ... FORMAT AS PARQUET loads each Parquet column into: Redshift does
    no coercion, so it is exactly the Parquet type (an unsigned one has none: docs/types.md)."""
    if pa.types.is_boolean(arrow):
        return "BOOLEAN"
    if pa.types.is_signed_integer(arrow):  # the lake profile holds no unsigned integers
        return {8: "SMALLINT", 16: "SMALLINT", 32: "INTEGER"}.get(arrow.bit_width, "BIGINT")
    if pa.types.is_decimal(arrow):
        return f"DECIMAL({arrow.precision},{arrow.scale})"
    if pa.types.is_floating(arrow):
        return "REAL" if arrow.bit_width <= 32 else "DOUBLE PRECISION"
    if pa.types.is_date(arrow):
        return "DATE"
    if pa.types.is_timestamp(arrow):
        return "TIMESTAMP"  # also UTC instants (MySQL TIMESTAMP): the INSERT ... SELECT makes them TIMESTAMPTZ
    if pa.types.is_string(arrow) or pa.types.is_large_string(arrow):
        return f"VARCHAR({REDSHIFT_VARCHAR_MAX})"
    if pa.types.is_binary(arrow) or pa.types.is_large_binary(arrow):
        return f"VARBYTE({REDSHIFT_VARBYTE_MAX})"
    raise LoadError(f"no Redshift staging type for Arrow type {arrow}")


def postgres_ingest_type(arrow: pa.DataType) -> pa.DataType:
    """The Arrow type a column is converted to before the ADBC binary COPY:
    PostgreSQL has no unsigned or 8-bit ints, and ADBC would wrap uint64
    (18446744073709551615 -> -1), so unsigned values go to the next wider type."""
    if pa.types.is_integer(arrow):
        bits, signed = arrow.bit_width, pa.types.is_signed_integer(arrow)
        if bits == 64 and not signed:
            return pa.decimal128(20, 0)
        if bits == 8:
            return pa.int16()
        if not signed:
            return pa.int32() if bits == 16 else pa.int64()
        return arrow
    if pa.types.is_floating(arrow) and arrow.bit_width == 16:
        return pa.float32()
    if pa.types.is_large_string(arrow) or pa.types.is_string_view(arrow):
        return pa.string()
    if pa.types.is_large_binary(arrow) or pa.types.is_binary_view(arrow) or pa.types.is_fixed_size_binary(arrow):
        return pa.binary()
    return arrow


def postgres_staging_type(arrow: pa.DataType) -> str:
    """PostgreSQL column type for an (already converted) Arrow type, matching
    what the ADBC driver sends in binary COPY."""
    if pa.types.is_boolean(arrow):
        return "boolean"
    if pa.types.is_integer(arrow):
        return {16: "smallint", 32: "integer", 64: "bigint"}[max(16, arrow.bit_width)]
    if pa.types.is_decimal(arrow):
        return "numeric"
    if pa.types.is_floating(arrow):
        return "real" if arrow.bit_width <= 32 else "double precision"
    if pa.types.is_date(arrow):
        return "date"
    if pa.types.is_timestamp(arrow):
        return "timestamptz" if arrow.tz else "timestamp"
    if pa.types.is_string(arrow):
        return "text"
    if pa.types.is_binary(arrow):
        return "bytea"
    raise LoadError(f"no PostgreSQL staging type for Arrow type {arrow}")
