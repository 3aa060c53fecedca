"""MySQL column types -> lake (Arrow) types, exactly: no value may change.

One line per decision (the reader's select expressions are in convert.py):
  integers           -> int8/16/32/32/64; UNSIGNED -> the next wider signed type, BIGINT
                        UNSIGNED -> decimal128(20,0) (the lake profile has no unsigned types)
  TINYINT(1)         -> bool when tinyint1_as_boolean (a value other than 0/1 fails the read), else int8
  DECIMAL(p,s)       -> decimal128(p,s) for p <= 38; p > 38 -> string with MySQL's exact text
  FLOAT / DOUBLE     -> float32 / float64
  BIT(n)             -> decimal128(20,0) (the bits as an unsigned integer)
  YEAR               -> int16
  DATE               -> date32; DATETIME(n) -> timestamp[us]; TIMESTAMP(n) -> timestamp[us, UTC]
  zero dates         -> NULL (zero_dates: null; the column becomes nullable) or an error
  TIME               -> string with MySQL's exact text ('-838:59:59.000000')
  text, ENUM, SET, JSON -> string (utf8)
  BINARY/VARBINARY/BLOB -> binary
  GEOMETRY and subtypes -> binary WKB (SRID not kept)
  anything else (UUID, INET6, ...) -> string with MySQL's text
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from lakeshift.arrow_types import MAX_DECIMAL128, parse_arrow_type
from lakeshift.batch import Column
from lakeshift.lake_profile import UNSIGNED_BITS, unsigned_type

INTEGERS: dict[str, pa.DataType] = {
    "tinyint": pa.int8(), "smallint": pa.int16(), "mediumint": pa.int32(), "int": pa.int32(),
    "integer": pa.int32(), "bigint": pa.int64(),
}
STRINGS = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set", "json"}
BINARIES = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"}
GEOMETRIES = {"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring",
              "multipolygon", "geometrycollection", "geomcollection"}
TEMPORALS = {"date", "datetime", "timestamp"}  # the types that can hold zero dates


@dataclass(frozen=True)
class ColumnInfo:
    """One row of information_schema.COLUMNS."""

    name: str
    data_type: str
    column_type: str
    nullable: bool
    char_max_length: int | None = None
    numeric_precision: int | None = None
    numeric_scale: int | None = None
    datetime_precision: int | None = None
    charset: str | None = None
    collation: str | None = None

    @property
    def unsigned(self) -> bool:
        return " unsigned" in self.column_type

    @property
    def whole_seconds(self) -> bool:
        """A DATE, or a DATETIME/TIMESTAMP without fractions: many rows share a value,
        and an update within the same second leaves it as it was."""
        return self.data_type in TEMPORALS and not self.datetime_precision

    @property
    def is_tinyint1(self) -> bool:
        # Only an explicit (1): MySQL 8 reports plain 'tinyint' without a width.
        return re.match(r"tinyint\(1\)(\s|$)", self.column_type) is not None


COLUMNS_SQL = """
SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, CHARACTER_MAXIMUM_LENGTH, NUMERIC_PRECISION,
       NUMERIC_SCALE, DATETIME_PRECISION, CHARACTER_SET_NAME, COLLATION_NAME
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s
ORDER BY ORDINAL_POSITION"""

# Unique indexes, primary key first; a paging key must be unique and NOT NULL.
KEYS_SQL = """
SELECT INDEX_NAME, COLUMN_NAME, SEQ_IN_INDEX
FROM information_schema.STATISTICS
WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND NON_UNIQUE = 0
ORDER BY INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX"""


def _int(v: Any) -> int | None:
    return None if v is None else int(v)


def _text(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray)):
        return v.decode("utf-8")
    return v


def column_info(row: tuple[Any, ...]) -> ColumnInfo:
    name, data_type, column_type, nullable, cml, prec, scale, dtp, charset, collation = row
    return ColumnInfo(
        name=_text(name), data_type=_text(data_type).lower(), column_type=_text(column_type).lower(),
        nullable=_text(nullable) == "YES", char_max_length=_int(cml), numeric_precision=_int(prec),
        numeric_scale=_int(scale), datetime_precision=_int(dtp), charset=_text(charset),
        collation=_text(collation),
    )


def unique_keys(rows: list[tuple[Any, ...]]) -> list[tuple[str, list[str]]]:
    """(index name, columns) for each unique index, primary first."""
    keys: dict[str, list[str]] = {}
    for index, column, _ in rows:
        keys.setdefault(_text(index), []).append(_text(column))
    return list(keys.items())


def lake_type(info: ColumnInfo, tinyint1_as_boolean: bool = True) -> tuple[pa.DataType, str | None]:
    """(Arrow type, lake_encoding) for a column; encoding None means native."""
    dt = info.data_type
    if dt in INTEGERS:
        if dt == "tinyint" and tinyint1_as_boolean and info.is_tinyint1:
            return pa.bool_(), None
        return (unsigned_type(UNSIGNED_BITS[dt]) if info.unsigned else INTEGERS[dt]), None
    if dt in ("decimal", "numeric"):
        p, s = info.numeric_precision or 10, info.numeric_scale or 0
        if p <= MAX_DECIMAL128:
            return pa.decimal128(p, s), None
        return pa.string(), "text"
    if dt == "float":
        return pa.float32(), None
    if dt in ("double", "real", "double precision"):
        return pa.float64(), None
    if dt == "bit":
        return unsigned_type(UNSIGNED_BITS["bit"]), None
    if dt == "year":
        return pa.int16(), None
    if dt == "date":
        return pa.date32(), None
    if dt == "datetime":
        return pa.timestamp("us"), None
    if dt == "timestamp":
        return pa.timestamp("us", tz="UTC"), None
    if dt == "time":
        return pa.string(), "text"
    if dt in STRINGS:
        return pa.string(), None
    if dt in BINARIES:
        return pa.binary(), None
    if dt in GEOMETRIES:
        return pa.binary(), "wkb"
    return pa.string(), "text"


def to_column(info: ColumnInfo, *, tinyint1_as_boolean: bool = True, zero_dates: str = "null",
              in_key: bool = False) -> Column:
    arrow, encoding = lake_type(info, tinyint1_as_boolean)
    nullable = info.nullable
    if info.data_type in TEMPORALS and zero_dates == "null" and not in_key:
        nullable = True  # a NOT NULL column may hold '0000-00-00', which the lake holds as NULL
    return Column(
        name=info.name, mysql_type=info.column_type, data_type=info.data_type, nullable=nullable,
        arrow_type=str(arrow), char_max_length=info.char_max_length,
        numeric_precision=info.numeric_precision, numeric_scale=info.numeric_scale,
        datetime_precision=info.datetime_precision, unsigned=info.unsigned, lake_encoding=encoding,
    )


def arrow_type(column: Column) -> pa.DataType:
    """The Arrow type named by column.arrow_type."""
    try:
        return parse_arrow_type(column.arrow_type)
    except ValueError:
        raise ValueError(f"column {column.name!r}: unknown lake type {column.arrow_type!r}") from None


def lake_schema(columns: list[Column]) -> pa.Schema:
    """The Parquet schema of a batch. Every field is nullable in Arrow (the
    MySQL nullability is in the manifest's Column.nullable); field metadata
    records the MySQL type (and the lake encoding where not native)."""
    fields = []
    for c in columns:
        meta = {b"mysql_type": c.mysql_type.encode()}
        if c.lake_encoding:
            meta[b"lake_encoding"] = c.lake_encoding.encode()
        fields.append(pa.field(c.name, arrow_type(c), nullable=True, metadata=meta))
    return pa.schema(fields)


_LARGE = {"mediumtext", "longtext", "mediumblob", "longblob", "json"} | GEOMETRIES


def large_columns(infos: list[ColumnInfo]) -> str:
    """'b (longblob), m (mediumtext)': the columns that can hold values of many MiB."""
    names = [f"{i.name} ({i.column_type})" for i in infos if i.data_type.lower() in _LARGE]
    return ", ".join(names) or "none of a large type (the row's columns add up)"
