"""Keyset positions: which columns a read is ordered by, how a position is
selected, rendered back into SQL, and turned into a watermark Cursor.

connectorx takes no query parameters, so every value that goes back into SQL
is rendered here from a value MySQL gave us, never from free text: integers and
decimals are validated numbers, dates are checked against a strict pattern,
strings travel as hex literals converted to the column's charset and collation
(so comparisons use the column's own ordering and its index), bytes as hex."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from lakeshift.batch import Cursor
from lakeshift.errors import SourceError
from lakeshift.source.convert import HIDDEN, ref
from lakeshift.source.types import BINARIES, INTEGERS, TEMPORALS, ColumnInfo

Value = Any  # int | str | float | bytes, as held for one key column

_NAME = re.compile(r"^[A-Za-z0-9_]+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})?$")
_TIME = re.compile(r"^-?\d{1,3}:\d{2}:\d{2}(\.\d{1,6})?$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def _kind(info: ColumnInfo) -> str | None:
    dt = info.data_type
    if dt in INTEGERS or dt in ("year", "bit"):
        return "int"
    if dt in ("decimal", "numeric"):
        return "decimal"
    if dt in ("float", "double", "real"):
        return "float"
    if dt in TEMPORALS:
        return "temporal"
    if dt == "time":
        return "time"
    if dt in ("enum", "set"):
        return "enum"  # ordered and compared by the member number
    if dt in ("char", "varchar", "tinytext", "text", "mediumtext", "longtext"):
        return "string"
    if dt in BINARIES:
        return "binary"
    return None  # JSON, geometry, ...: no usable order


@dataclass(frozen=True)
class KeyCol:
    """One column of a keyset order."""

    info: ColumnInfo
    kind: str

    @classmethod
    def of(cls, info: ColumnInfo) -> KeyCol | None:
        kind = _kind(info)
        return cls(info, kind) if kind else None

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def sql(self) -> str:
        return ref(self.name)

    def select(self, i: int) -> str:
        """Hidden select item holding this column's position value exactly."""
        r = self.sql
        if self.info.data_type == "bit":
            expr = f"CAST({r} AS UNSIGNED)"  # connectorx returns BIT as bytes
        elif self.kind in ("decimal", "temporal", "time"):
            expr = f"CAST({r} AS CHAR)"  # exact text; zero dates stay comparable
        elif self.kind == "enum":
            expr = f"({r} + 0)"
        else:
            expr = r
        return f"{expr} AS `{HIDDEN}k{i}`"

    def literal(self, v: Value) -> str:
        """SQL for a value of this column (from a row we read, or a stored cursor)."""
        k = self.kind
        if k in ("int", "enum"):
            return str(int(v))
        if k == "decimal":
            text = str(v)
            if not _NUMBER.match(text):
                raise SourceError(f"column {self.name!r}: {text!r} is not a decimal number")
            return text
        if k == "float":
            text = repr(float(v))
            return text if "e" in text else text + "e0"  # a double literal, not a decimal one
        if k == "temporal":
            text = str(v)
            if not (_DATE.match(text) or _DATETIME.match(text)):
                raise SourceError(f"column {self.name!r}: {text!r} is not a MySQL date/time")
            return f"'{text}'"
        if k == "time":
            text = str(v)
            if not _TIME.match(text):
                raise SourceError(f"column {self.name!r}: {text!r} is not a MySQL time")
            return f"'{text}'"
        if k == "string":
            charset, collation = self.info.charset or "utf8mb4", self.info.collation
            hexed = str(v).encode("utf-8").hex()
            lit = f"_utf8mb4 X'{hexed}'"
            if charset != "utf8mb4" and _NAME.match(charset):
                lit = f"CONVERT({lit} USING {charset})"
            if collation and _NAME.match(collation):
                lit += f" COLLATE {collation}"
            return lit
        if k == "binary":
            return f"X'{bytes(v).hex()}'"
        raise SourceError(f"column {self.name!r} ({self.info.column_type}) cannot be used as a position")

    # ------------------------------------------------------------ cursors
    def to_cursor(self, v: Value, *, as_timestamp: bool = False) -> int | str | None:
        """Watermark form: ISO-8601 for temporals (UTC +00:00 for TIMESTAMP),
        int for integers (and DECIMAL(p,0)), text otherwise."""
        if v is None:
            return None
        if self.kind == "temporal":
            return iso_from_mysql(str(v), self.info.data_type)
        if self.kind == "int":
            return int(v)
        if self.kind == "decimal" and (self.info.numeric_scale or 0) == 0 and not as_timestamp:
            return int(v)
        if self.kind in ("string", "time", "decimal", "float"):
            return str(v)
        raise SourceError(f"column {self.name!r} ({self.info.column_type}) cannot be a CDC cursor column")

    def from_cursor(self, v: int | str) -> Value:
        """A stored cursor value back to this column's position value."""
        try:
            if self.kind == "temporal":
                return mysql_from_iso(str(v), self.info.data_type)
            if self.kind == "int":
                return int(v)
            if self.kind == "decimal":
                return str(Decimal(str(v)))
            if self.kind == "float":
                return float(v)
        except (ValueError, InvalidOperation):
            raise SourceError(f"watermark value {v!r} does not fit column {self.name!r} "
                              f"({self.info.column_type}); fix it with `lakeshift watermark set`") from None
        if self.kind in ("string", "time"):
            return str(v)
        raise SourceError(f"column {self.name!r} ({self.info.column_type}) cannot be a CDC cursor column")


def cursor_of(strategy: str, keys: list[KeyCol], values: list[Value]) -> Cursor:
    """The watermark Cursor of a position of the cursor columns `keys` (ts[, id], or id)."""
    if strategy == "id_only":
        return Cursor(timestamp=None, id=keys[0].to_cursor(values[0]))
    ts = keys[0].to_cursor(values[0], as_timestamp=True)
    ident = keys[1].to_cursor(values[1]) if strategy == "hybrid" else None
    return Cursor(timestamp=None if ts is None else str(ts), id=ident)


# ---------------------------------------------------------------- predicates


def after(keys: list[KeyCol], values: list[Value]) -> str:
    """(k1, k2, ...) > (v1, v2, ...), written so MySQL uses an index on the keys:
    k1 >= v1 AND (k1 > v1 OR (k1 = v1 AND (k2 > v2 OR ...)))."""
    return _tuple_cmp(keys, values, ">")


def upto(keys: list[KeyCol], values: list[Value]) -> str:
    """(k1, k2, ...) <= (v1, v2, ...), index-friendly like `after`."""
    return _tuple_cmp(keys, values, "<=")


def _tuple_cmp(keys: list[KeyCol], values: list[Value], op: str) -> str:
    lits = [k.literal(v) for k, v in zip(keys, values)]
    strict = ">" if op == ">" else "<"
    last_op = op

    def nest(i: int) -> str:
        k, lit = keys[i].sql, lits[i]
        if i == len(keys) - 1:
            return f"{k} {last_op} {lit}"
        return f"({k} {strict} {lit} OR ({k} = {lit} AND {nest(i + 1)}))"

    if len(keys) == 1:
        return nest(0)
    bound = ">=" if op == ">" else "<="
    return f"{keys[0].sql} {bound} {lits[0]} AND {nest(0)}"


# ---------------------------------------------------------------- timestamps


def iso_from_mysql(text: str, data_type: str) -> str:
    """'2026-01-02 03:04:05.5' -> '2026-01-02T03:04:05.500000' (+00:00 for
    TIMESTAMP, read in a UTC session). Always six fractional digits: never rounded."""
    if _DATE.match(text):
        return text if data_type == "date" else f"{text}T00:00:00.000000" + ("+00:00" if data_type == "timestamp" else "")
    m = _DATETIME.match(text)
    if not m:
        raise SourceError(f"unexpected MySQL {data_type} value {text!r}")
    frac = (m.group(3) or ".")[1:].ljust(6, "0")
    return f"{m.group(1)}T{m.group(2)}.{frac}" + ("+00:00" if data_type == "timestamp" else "")


def mysql_from_iso(text: str, data_type: str) -> str:
    """A watermark timestamp back to a MySQL literal for the column: TIMESTAMP
    cursors with another offset are converted to UTC; DATETIME cursors must be
    naive (or +00:00/Z)."""
    text = text.strip()
    if _DATE.match(text):
        return text
    m = _DATETIME.match(text)
    if not m:
        raise ValueError(text)
    date, clock, frac, offset = m.group(1), m.group(2), (m.group(3) or ".")[1:].ljust(6, "0"), m.group(4)
    if offset in (None, "Z", "+00:00", "-00:00"):
        return f"{date} {clock}.{frac}"
    if data_type != "timestamp":
        raise ValueError(f"{text}: a {data_type} column holds local times; give the watermark without an offset")
    utc = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%d %H:%M:%S.%f")


def shift_iso(text: str, delta: timedelta) -> str:
    """ISO timestamp moved by delta, same form (offset kept, six digits).
    Zero dates ('0000-00-00...') cannot move: returned unchanged."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    try:
        moved = moment - delta
    except OverflowError:
        moved = datetime.min.replace(tzinfo=moment.tzinfo)
    if _DATE.match(text):
        return moved.date().isoformat()
    return moved.isoformat(timespec="microseconds")


def iso_key(text: str) -> tuple[int, Any]:
    """Sort key for ISO timestamps of one column (zero dates first)."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return 1, moment.replace(tzinfo=None) if moment.tzinfo is None else moment.astimezone(timezone.utc).replace(tzinfo=None)
    except ValueError:
        return 0, text
