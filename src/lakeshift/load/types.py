"""MySQL-aware column types per target, and the rules for schema evolution.

A lake column is classified once (`classify`: what the Parquet value *means*,
from its Arrow type, MySQL DATA_TYPE and lake encoding), then each target
dialect maps that meaning to its own exact type (`TType`). Types read back
from a target's catalogue are parsed into the same `TType`, so "is the new
type the same, a safe widening, or incompatible?" is one comparison
(`compare`) for every target."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

from lakeshift.arrow_types import parse_arrow_type
from lakeshift.batch import Column
from lakeshift.errors import LoadError

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
_INT_DIGITS = {("int", 8): 3, ("int", 16): 5, ("int", 32): 10, ("int", 64): 19, ("int", 128): 39,
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
        return b.size is None or _INT_DIGITS[(a.kind, a.size or 64)] <= b.size - (b.scale or 0)
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


def _decimal_params(col: Column) -> tuple[int, int]:
    if col.numeric_precision is not None:
        return col.numeric_precision, col.numeric_scale or 0
    m = re.search(r"\((\d+)\s*(?:,\s*(\d+))?\)", col.mysql_type or "")
    if not m:
        raise LoadError(f"column {col.name!r}: cannot read precision/scale of {col.mysql_type!r}")
    return int(m.group(1)), int(m.group(2) or 0)


# ---------------------------------------------------------------- dialects


class TypeDialect:
    """One target's type system: MySQL meaning -> TType -> SQL, and back from its catalogue."""

    name = "abstract"
    max_identifier_bytes: int | None = None
    widen_in_transaction = True

    def can_widen(self, old: TType, new: TType) -> bool:
        """ALTER COLUMN ... TYPE can turn `old` into the wider `new` in place."""
        return True

    def target_type(self, col: Column) -> TType:
        raise NotImplementedError

    def render(self, t: TType) -> str:
        raise NotImplementedError

    def parse(self, data_type: str, char_len: int | None, precision: int | None, scale: int | None) -> TType:
        raise NotImplementedError

    def insert_expr(self, col: Column, ref: str, target: TType) -> str:
        """The SELECT expression that turns a staging column into the target value."""
        return ref

    def fold(self, name: str) -> str:
        """The form two column names are compared in (Redshift/DuckDB match case-insensitively)."""
        return name

    def catalog_name(self, name: str) -> str:
        """How information_schema spells a name we created quoted."""
        return name

    def check_name(self, name: str, what: str) -> None:
        limit = self.max_identifier_bytes
        if limit and len(name.encode("utf-8")) > limit:
            raise LoadError(f"{what} {name!r} is {len(name.encode())} bytes long; {self.name} allows {limit}")


def _numeric_or_text(p: int, s: int, text_len: int) -> TType:
    return TType("numeric", p, s) if p <= 38 else TType("text", text_len)


class PostgresTypes(TypeDialect):
    """Natural exact PostgreSQL types. Unsigned ints take the next wider type
    (BIGINT UNSIGNED -> numeric(20,0)); DECIMAL of any precision is numeric(p,s);
    TIME -> interval (holds -838:59:59 and >24h to the microsecond); JSON -> jsonb."""

    name = "PostgreSQL"
    max_identifier_bytes = 63

    def target_type(self, col: Column) -> TType:
        m = classify(col)
        k = m.kind
        if k == "int":
            return TType("int", max(16, m.size or 64))
        if k == "uint":
            return TType("numeric", 20, 0) if m.size == 64 else TType("int", min(64, (m.size or 32) * 2))
        if k in ("numeric", "numeric_text"):
            return TType("numeric", m.size, m.scale)
        if k == "float":
            return TType("float", m.size)
        if k == "time_text":
            return TType("interval")
        if k == "text":
            return TType("text", m.size)
        if k == "bytes":
            return TType("bytes", None)
        return TType(k)  # bool, date, timestamp, timestamptz, json

    def render(self, t: TType) -> str:
        k = t.kind
        if k == "int":
            return {16: "smallint", 32: "integer", 64: "bigint"}.get(t.size or 64, "numeric(39,0)")
        if k == "uint":  # only read back from elsewhere; never created here
            return self.render(TType("numeric", _INT_DIGITS[("uint", t.size or 64)], 0))
        if k == "numeric":
            return "numeric" if t.size is None else f"numeric({t.size},{t.scale or 0})"
        if k == "float":
            return "real" if t.size == 32 else "double precision"
        if k == "text":
            return "text" if t.size is None else f"varchar({t.size})"
        if k == "bytes":
            return "bytea"
        if k == "json":
            return t.name or "jsonb"
        if k == "timestamp":
            return "timestamp(6)"
        if k == "timestamptz":
            return "timestamptz(6)"
        if k == "other":
            return t.name or "?"
        return {"bool": "boolean", "date": "date", "interval": "interval"}[k]

    def parse(self, data_type: str, char_len: int | None, precision: int | None, scale: int | None) -> TType:
        d = data_type.lower()
        simple = {"smallint": TType("int", 16), "integer": TType("int", 32), "bigint": TType("int", 64),
                  "real": TType("float", 32), "double precision": TType("float", 64), "boolean": TType("bool"),
                  "date": TType("date"), "timestamp without time zone": TType("timestamp"),
                  "timestamp with time zone": TType("timestamptz"), "interval": TType("interval"),
                  "text": TType("text"), "bytea": TType("bytes"), "jsonb": TType("json", name="jsonb"),
                  "json": TType("json", name="json")}
        if d in simple:
            return simple[d]
        if d == "numeric":
            return TType("numeric", precision, scale if precision is not None else None)
        if d in ("character varying", "character"):
            return TType("text", char_len)
        return TType("other", name=data_type)

    def insert_expr(self, col: Column, ref: str, target: TType) -> str:
        k = classify(col).kind
        if k == "time_text":
            return f"CAST({ref} AS interval)"
        if k == "numeric_text":
            return f"CAST({ref} AS {self.render(target)})"
        if k == "json":
            return f"CAST({ref} AS {self.render(target)})"
        return ref


REDSHIFT_VARCHAR_MAX = 65535
REDSHIFT_VARBYTE_MAX = 1024000


class RedshiftTypes(TypeDialect):
    """Redshift counts VARCHAR in bytes: utf8mb4 VARCHAR(n) -> VARCHAR(min(4n, 65535));
    TEXT types -> VARCHAR(65535); JSON -> SUPER; BLOB/BINARY -> VARBYTE;
    BIGINT UNSIGNED -> DECIMAL(20,0); DECIMAL p>38 and TIME -> VARCHAR (their
    exact MySQL text: Redshift DECIMAL stops at 38 digits and TIME cannot be
    negative or above 24h). Only VARCHAR can be widened in place, and only
    outside a transaction block."""

    name = "Redshift"
    max_identifier_bytes = 127
    widen_in_transaction = False  # ALTER COLUMN ... TYPE cannot run inside a transaction block

    def can_widen(self, old: TType, new: TType) -> bool:
        return old.kind == new.kind == "text"  # Redshift only widens VARCHAR in place

    def target_type(self, col: Column) -> TType:
        m = classify(col)
        k = m.kind
        if k == "int":
            return TType("int", max(16, m.size or 64))
        if k == "uint":
            return TType("numeric", 20, 0) if m.size == 64 else TType("int", min(64, (m.size or 32) * 2))
        if k == "numeric":
            return _numeric_or_text(m.size or 38, m.scale or 0, (m.size or 38) + 2)
        if k == "numeric_text":
            return TType("text", (m.size or 65) + 2)  # sign and decimal point
        if k == "float":
            return TType("float", m.size)
        if k == "time_text":
            return TType("text", 20)  # '-838:59:59.000000' is 17 characters
        if k == "text":
            return TType("text", REDSHIFT_VARCHAR_MAX if m.size is None else min(4 * m.size, REDSHIFT_VARCHAR_MAX))
        if k == "bytes":
            return TType("bytes", REDSHIFT_VARBYTE_MAX if m.size is None else min(max(m.size, 1), REDSHIFT_VARBYTE_MAX))
        return TType(k)

    def render(self, t: TType) -> str:
        k = t.kind
        if k == "int":
            return {16: "SMALLINT", 32: "INTEGER", 64: "BIGINT"}.get(t.size or 64, "DECIMAL(38,0)")
        if k == "numeric":
            return f"DECIMAL({t.size if t.size is not None else 38},{t.scale or 0})"
        if k == "float":
            return "REAL" if t.size == 32 else "DOUBLE PRECISION"
        if k == "text":
            return f"VARCHAR({t.size or REDSHIFT_VARCHAR_MAX})"
        if k == "bytes":
            return f"VARBYTE({t.size or REDSHIFT_VARBYTE_MAX})"
        if k == "json":
            return "SUPER"
        if k == "other":
            return t.name or "?"
        return {"bool": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMP", "timestamptz": "TIMESTAMPTZ",
                "interval": "INTERVAL", "uint": "DECIMAL(20,0)"}[k]

    def parse(self, data_type: str, char_len: int | None, precision: int | None, scale: int | None) -> TType:
        d = data_type.lower()
        simple = {"smallint": TType("int", 16), "integer": TType("int", 32), "bigint": TType("int", 64),
                  "real": TType("float", 32), "double precision": TType("float", 64), "boolean": TType("bool"),
                  "date": TType("date"), "timestamp without time zone": TType("timestamp"),
                  "timestamp with time zone": TType("timestamptz"), "super": TType("json")}
        if d in simple:
            return simple[d]
        if d == "numeric":
            return TType("numeric", precision, scale)
        if d in ("character varying", "character"):
            return TType("text", char_len)
        if d in ("binary varying", "varbyte", "varbinary", "bytea"):
            return TType("bytes", char_len)
        return TType("other", name=data_type)

    def insert_expr(self, col: Column, ref: str, target: TType) -> str:
        return f"JSON_PARSE({ref})" if classify(col).kind == "json" else ref

    def fold(self, name: str) -> str:
        return name.lower()  # Redshift folds identifiers to lower case unless enable_case_sensitive_identifier

    def catalog_name(self, name: str) -> str:
        return name.lower()


class DuckDBTypes(TypeDialect):
    """DuckDB has exact unsigned types (UTINYINT..UBIGINT), DECIMAL up to 38
    digits (p>38 stays VARCHAR text), INTERVAL for TIME, JSON, BLOB. VARCHAR
    lengths are not enforced by DuckDB, so strings are plain VARCHAR."""

    name = "DuckDB"

    def target_type(self, col: Column) -> TType:
        m = classify(col)
        k = m.kind
        if k in ("int", "uint"):
            return TType(k, m.size)
        if k == "numeric":
            if (m.size or 0) > 38:
                raise LoadError(f"column {col.name!r}: DECIMAL({m.size},{m.scale}) needs the lake's text encoding for DuckDB")
            return TType("numeric", m.size, m.scale)
        if k == "numeric_text":
            return TType("text")
        if k == "float":
            return TType("float", m.size)
        if k == "time_text":
            return TType("interval")
        if k == "text":
            return TType("text")
        if k == "bytes":
            return TType("bytes")
        return TType(k)

    def render(self, t: TType) -> str:
        k = t.kind
        if k == "int":
            return {8: "TINYINT", 16: "SMALLINT", 32: "INTEGER", 64: "BIGINT", 128: "HUGEINT"}[t.size or 64]
        if k == "uint":
            return {8: "UTINYINT", 16: "USMALLINT", 32: "UINTEGER", 64: "UBIGINT", 128: "UHUGEINT"}[t.size or 64]
        if k == "numeric":
            return f"DECIMAL({t.size if t.size is not None else 38},{t.scale or 0})"
        if k == "float":
            return "FLOAT" if t.size == 32 else "DOUBLE"
        if k == "other":
            return t.name or "?"
        return {"bool": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMP", "timestamptz": "TIMESTAMPTZ",
                "interval": "INTERVAL", "text": "VARCHAR", "bytes": "BLOB", "json": "JSON"}[k]

    def parse(self, data_type: str, char_len: int | None, precision: int | None, scale: int | None) -> TType:
        d = data_type.upper()
        m = re.match(r"^DECIMAL\((\d+),\s*(\d+)\)$", d)
        if m:
            return TType("numeric", int(m.group(1)), int(m.group(2)))
        simple = {"TINYINT": TType("int", 8), "SMALLINT": TType("int", 16), "INTEGER": TType("int", 32),
                  "BIGINT": TType("int", 64), "HUGEINT": TType("int", 128), "UTINYINT": TType("uint", 8),
                  "USMALLINT": TType("uint", 16), "UINTEGER": TType("uint", 32), "UBIGINT": TType("uint", 64),
                  "FLOAT": TType("float", 32), "DOUBLE": TType("float", 64), "BOOLEAN": TType("bool"),
                  "DATE": TType("date"), "TIMESTAMP": TType("timestamp"),
                  "TIMESTAMP WITH TIME ZONE": TType("timestamptz"), "TIMESTAMPTZ": TType("timestamptz"),
                  "INTERVAL": TType("interval"),
                  "VARCHAR": TType("text"), "BLOB": TType("bytes"), "JSON": TType("json")}
        return simple.get(d, TType("other", name=data_type))

    def insert_expr(self, col: Column, ref: str, target: TType) -> str:
        k = classify(col).kind
        if k == "time_text":
            return f"CAST({ref} AS INTERVAL)"
        if k == "json":
            return f"CAST({ref} AS JSON)"
        return ref

    def fold(self, name: str) -> str:
        return name.lower()  # DuckDB resolves names case-insensitively, quoted or not


# ---------------------------------------------------------------- staging (what the Parquet holds)


def redshift_staging_type(arrow: pa.DataType) -> str:
    """The column type COPY ... FORMAT AS PARQUET loads each Parquet column into."""
    if pa.types.is_boolean(arrow):
        return "BOOLEAN"
    if pa.types.is_integer(arrow):
        signed = pa.types.is_signed_integer(arrow)
        bits = arrow.bit_width
        if bits == 64 and not signed:
            return "DECIMAL(20,0)"
        if bits <= 16 and (signed or bits == 8):
            return "SMALLINT"
        if bits <= 32 and (signed or bits == 16):
            return "INTEGER"
        return "BIGINT"
    if pa.types.is_decimal(arrow):
        return f"DECIMAL({arrow.precision},{arrow.scale})"
    if pa.types.is_floating(arrow):
        return "REAL" if arrow.bit_width <= 32 else "DOUBLE PRECISION"
    if pa.types.is_date(arrow):
        return "DATE"
    if pa.types.is_timestamp(arrow):
        return "TIMESTAMPTZ" if arrow.tz else "TIMESTAMP"
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
