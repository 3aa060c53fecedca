"""A query's result columns (the metadata MySQL sends with every result set)
as ColumnInfo, so custom_sql columns get the same exact lake types as a
table's (types.py). The protocol gives the type, its length in bytes, the
decimals, the NOT NULL / UNSIGNED / ENUM / SET flags and the collation id,
which is enough to name the MySQL type; MariaDB sends JSON as LONGTEXT, as
its catalogue does."""

from __future__ import annotations

from typing import Any

from pymysql.constants import FIELD_TYPE, FLAG

from lakeshift.source.types import ColumnInfo

BINARY_COLLATION = 63
_INTS = {FIELD_TYPE.TINY: "tinyint", FIELD_TYPE.SHORT: "smallint", FIELD_TYPE.INT24: "mediumint",
         FIELD_TYPE.LONG: "int", FIELD_TYPE.LONGLONG: "bigint"}
_SIMPLE = {FIELD_TYPE.FLOAT: "float", FIELD_TYPE.DOUBLE: "double", FIELD_TYPE.DATE: "date",
           FIELD_TYPE.NEWDATE: "date", FIELD_TYPE.YEAR: "year", FIELD_TYPE.JSON: "json",
           FIELD_TYPE.GEOMETRY: "geometry", FIELD_TYPE.NULL: "null"}
_FRACTIONAL = {FIELD_TYPE.DATETIME: "datetime", FIELD_TYPE.TIMESTAMP: "timestamp", FIELD_TYPE.TIME: "time"}
_BLOBS = (FIELD_TYPE.TINY_BLOB, FIELD_TYPE.MEDIUM_BLOB, FIELD_TYPE.LONG_BLOB, FIELD_TYPE.BLOB)
_MAX_FSP = 6  # decimals above this (39: "not fixed") mean an expression of unknown precision
# Bytes per character of the common character sets, by collation id; others count as 1
# byte a character, which overstates the length (never cuts a value).
_UTF8MB4 = {45, 46, *range(224, 248), 255, *range(256, 320)}
_UTF8MB3 = {33, 83, *range(192, 216)}


def _mbmax(collation: int) -> int:
    return 4 if collation in _UTF8MB4 else 3 if collation in _UTF8MB3 else 1


def _sized(length: int, binary: bool, collation: int) -> str:
    """TEXT/BLOB family member by its byte length."""
    per = 1 if binary else _mbmax(collation)
    for limit, prefix in ((255, "tiny"), (65535, ""), (16777215, "medium")):
        if length <= limit * per:
            return prefix + ("blob" if binary else "text")
    return "long" + ("blob" if binary else "text")


def field_info(f: Any) -> ColumnInfo:
    """ColumnInfo of one pymysql field descriptor."""
    code, length, scale, flags, coll = f.type_code, int(f.length or 0), int(f.scale or 0), f.flags, f.charsetnr
    unsigned = " unsigned" if flags & FLAG.UNSIGNED else ""
    nullable = not flags & FLAG.NOT_NULL
    binary = coll == BINARY_COLLATION
    prec = scale_ = dtp = chars = None
    if code in _INTS:
        data_type = _INTS[code]
        column_type = f"{data_type}({length}){unsigned}"
    elif code in (FIELD_TYPE.NEWDECIMAL, FIELD_TYPE.DECIMAL):
        data_type, scale_ = "decimal", scale
        prec = max(1, min(65, length - (1 if scale else 0) - (0 if unsigned else 1)))
        column_type = f"decimal({prec},{scale}){unsigned}"
    elif code in _FRACTIONAL:
        data_type = _FRACTIONAL[code]
        dtp = scale if scale <= _MAX_FSP else _MAX_FSP
        column_type = data_type + (f"({dtp})" if dtp else "")
    elif code == FIELD_TYPE.BIT:
        data_type, column_type = "bit", f"bit({length})"
    elif code in _SIMPLE:
        data_type = column_type = _SIMPLE[code]
        if code in (FIELD_TYPE.FLOAT, FIELD_TYPE.DOUBLE):
            column_type += unsigned
    elif code in _BLOBS:
        data_type = column_type = _sized(length, binary, coll)
        chars = None if binary else length // _mbmax(coll)
    elif flags & FLAG.ENUM or flags & FLAG.SET:
        data_type = column_type = "enum" if flags & FLAG.ENUM else "set"
        chars = length // _mbmax(coll)
    else:  # VARCHAR, VAR_STRING, STRING
        fixed = code == FIELD_TYPE.STRING
        data_type = ("binary" if fixed else "varbinary") if binary else ("char" if fixed else "varchar")
        chars = length if binary else length // _mbmax(coll)
        column_type = f"{data_type}({chars})"
    charset, collation = (None, None) if binary else _collation(coll)
    return ColumnInfo(name=f.name, data_type=data_type, column_type=column_type, nullable=nullable,
                      char_max_length=chars, numeric_precision=prec, numeric_scale=scale_,
                      datetime_precision=dtp, charset=charset, collation=collation)


def _collation(coll: int) -> tuple[str | None, str | None]:
    """(character set, collation) names of a collation id (None, None: unknown to pymysql)."""
    from pymysql.charset import charset_by_id

    try:
        cs = charset_by_id(coll)
    except KeyError:
        return None, None
    return cs.name, cs.collation
