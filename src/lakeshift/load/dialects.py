"""Each target's type system: what a classified lake column becomes in it
(`target_type`), how that type is written in DDL (`render`), how its
catalogue's type names read back (`parse`), and how a staging column is
turned into the target's value (`insert_expr`)."""

from __future__ import annotations

import re

from lakeshift.batch import Column
from lakeshift.errors import LoadError
from lakeshift.load.types import (
    INT_DIGITS,
    REDSHIFT_VARBYTE_MAX,
    REDSHIFT_VARCHAR_MAX,
    Meaning,
    TType,
    classify,
)


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

    def known(self, old: TType, new: TType) -> TType:
        """`old` as read from the catalogue, with what the catalogue could not tell taken as unchanged."""
        return old

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


def signed_int_type(m: Meaning) -> TType:
    """A MySQL integer in a target without unsigned types (PostgreSQL, Redshift): signed ones
    at least SMALLINT, unsigned ones the next wider type (BIGINT UNSIGNED: numeric(20,0))."""
    if m.kind == "int":
        return TType("int", max(16, m.size or 64))
    return TType("numeric", 20, 0) if m.size == 64 else TType("int", min(64, (m.size or 32) * 2))


def _numeric_or_text(p: int, s: int, text_len: int) -> TType:
    return TType("numeric", p, s) if p <= 38 else TType("text", text_len)


# information_schema type names PostgreSQL and Redshift share
_PG_FAMILY = {"smallint": TType("int", 16), "integer": TType("int", 32), "bigint": TType("int", 64),
              "real": TType("float", 32), "double precision": TType("float", 64), "boolean": TType("bool"),
              "date": TType("date"), "timestamp without time zone": TType("timestamp"),
              "timestamp with time zone": TType("timestamptz")}
_POSTGRES_ONLY = {"interval": TType("interval"), "text": TType("text"), "bytea": TType("bytes"),
                  "jsonb": TType("json", name="jsonb"), "json": TType("json", name="json")}
_REDSHIFT_ONLY = {"super": TType("json")}


def _pg_family_type(data_type: str, char_len: int | None, own: dict[str, TType]) -> TType | None:
    """A type PostgreSQL and Redshift report alike (or one of the dialect's `own`), else None."""
    d = data_type.lower()
    if d in ("character varying", "character"):
        return TType("text", char_len)
    return _PG_FAMILY.get(d) or own.get(d)


class PostgresTypes(TypeDialect):
    """Natural exact PostgreSQL types. Unsigned ints take the next wider type
    (BIGINT UNSIGNED -> numeric(20,0)); DECIMAL of any precision is numeric(p,s);
    TIME -> interval (holds -838:59:59 and >24h to the microsecond); JSON -> jsonb."""

    name = "PostgreSQL"
    max_identifier_bytes = 63

    def target_type(self, col: Column) -> TType:
        m = classify(col)
        k = m.kind
        if k in ("int", "uint"):
            return signed_int_type(m)
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
            return self.render(TType("numeric", INT_DIGITS[("uint", t.size or 64)], 0))
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
        known = _pg_family_type(data_type, char_len, _POSTGRES_ONLY)
        if known is not None:
            return known
        if data_type.lower() == "numeric":
            return TType("numeric", precision, scale if precision is not None else None)
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
        if k in ("int", "uint"):
            return signed_int_type(m)
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
        known = _pg_family_type(data_type, char_len, _REDSHIFT_ONLY)
        if known is not None:
            return known
        d = data_type.lower()
        if d == "numeric":
            return TType("numeric", precision, scale)
        if d in ("binary varying", "varbyte", "varbinary", "bytea"):
            return TType("bytes", char_len)
        return TType("other", name=data_type)

    def insert_expr(self, col: Column, ref: str, target: TType) -> str:
        kind = classify(col).kind
        if kind == "json":
            return f"JSON_PARSE({ref})"
        if kind == "timestamptz":  # staged as TIMESTAMP (UTC wall time): the same instant, whatever the session
            return f"{ref} AT TIME ZONE 'UTC'"
        return ref

    def known(self, old: TType, new: TType) -> TType:
        """information_schema may report no length for a VARBYTE column: a Redshift
        VARBYTE always has one, so an unknown length is taken as the one the batch needs."""
        if old.kind == new.kind == "bytes" and old.size is None:
            return new
        return old

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
