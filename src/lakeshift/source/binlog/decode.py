"""Row images from the binlog (as mysql-replication decodes them) -> Arrow
batches in the exact lake schema of the snapshot path. Each value is first
put in the form the snapshot's select expressions give (convert.py: DECIMAL
and TIME as MySQL's text, BIT as an unsigned integer, GEOMETRY as WKB,
TINYINT(1) as an integer checked for 0/1), then the snapshot's own Converter
makes the lake types, so both paths cast alike.

Where the library loses a distinction it is restored from what it reports:
zero dates (None with an out-of-range reason, a TIMESTAMP of 0 seconds), the
empty SET (None with EMPTY_SET), YEAR 0000 (read as 1900, a year MySQL cannot
hold), SET members in definition order, GEOMETRY's leading SRID."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pyarrow as pa
from pymysqlreplication.constants import NONE_SOURCE

from lakeshift.batch import Column, change_columns
from lakeshift.errors import SourceError
from lakeshift.source.convert import Converter
from lakeshift.source.types import GEOMETRIES, arrow_type, lake_schema

_ZERO_DATE = (NONE_SOURCE.OUT_OF_DATE_RANGE, NONE_SOURCE.OUT_OF_DATETIME_RANGE, NONE_SOURCE.OUT_OF_DATETIME2_RANGE)
_EPOCH = dt.datetime(1970, 1, 1)
# Lake columns the binlog path reproduces exactly; others (MariaDB UUID/INET6, MySQL's binary
# JSON ...) are refused before a change is read.
NATIVE_TEXT = {"decimal", "numeric", "time"}


def unsupported(columns: list[Column]) -> list[str]:
    """'name (type)' of each column the binlog path cannot give exactly as the snapshot reads it."""
    return [f"{c.name} ({c.mysql_type})" for c in columns
            if c.lake_encoding == "text" and c.data_type not in NATIVE_TEXT]


def time_text(value: dt.timedelta, digits: int) -> str:
    """A TIME as MySQL prints it: [-]HH:MM:SS[.ffffff] with the column's fractional digits."""
    micros = (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds
    sign = "-" if micros < 0 else ""
    hours, rest = divmod(abs(micros), 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    seconds, frac = divmod(rest, 1_000_000)
    text = f"{sign}{hours:02d}:{minutes:02d}:{seconds:02d}"
    return text + "." + f"{frac:06d}"[:digits] if digits else text


class RowDecoder:
    """Builds the lake batch of one table's changes, row by row. Each column has its converter
    picked once (_CONVERTERS by data type); most types take the library's value as it is."""

    def __init__(self, table: str, columns: list[Column], zero_dates: str) -> None:
        self.table, self.columns, self.zero_dates = table, columns, zero_dates
        self.conv = Converter(table, columns, lake_schema(columns), "null")  # zero dates are handled here
        self.raw_types = [_raw_type(c) for c in columns]
        self.schema = lake_schema(columns + change_columns())  # the batch's Parquet schema
        self._values: list[list[Any]] = [[] for _ in columns]
        self._plan = [(c.name, c, out, _CONVERTERS.get(c.data_type)) for c, out in zip(columns, self._values)]
        self._ops: list[str] = []
        self._seqs: list[int] = []
        self._times: list[dt.datetime] = []

    def __len__(self) -> int:
        return len(self._ops)

    def add(self, op: str, seq: int, committed: dt.datetime, values: dict[str, Any], nones: dict[str, Any],
            set_orders: dict[str, list[str]]) -> None:
        for name, c, out, convert in self._plan:
            v = values.get(name)
            if v is None:
                out.append(self._none(c, nones.get(name)))
            elif convert is None:
                out.append(v)
            else:
                out.append(convert(self, c, v, set_orders))
        self._ops.append(op)
        self._seqs.append(seq)
        self._times.append(committed)

    def flush(self) -> pa.RecordBatch:
        """The rows added so far as a lake batch (row image + change columns); the buffer is emptied."""
        arrays = []
        for i, c in enumerate(self.columns):
            try:
                arrays.append(pa.array(self._values[i], type=self.raw_types[i]))
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
                raise SourceError(f"{self.table}: column {c.name!r} ({c.mysql_type}): a value from the binlog "
                                  f"does not fit {arrow_type(c)} ({exc}); if the column's type changed since, the "
                                  f"changes before the ALTER cannot take the new type. Way out: `lakeshift watermark "
                                  f"reset` for this table (the next run takes a new snapshot)") from None
        raw = pa.RecordBatch.from_arrays(arrays, names=[c.name for c in self.columns])
        image = self.conv.convert(raw)
        out = pa.RecordBatch.from_arrays(
            [*image.columns, pa.array(self._ops, pa.string()), pa.array(self._seqs, pa.int64()),
             pa.array(self._times, pa.timestamp("us", tz="UTC"))], schema=self.schema)
        for values in self._values:
            values.clear()  # in place: the plan holds these lists (pa.array copied them)
        self._ops, self._seqs, self._times = [], [], []
        return out

    def _none(self, c: Column, reason: Any) -> Any:
        """A None from the library: NULL, or a value it could not give (restored, or refused)."""
        if reason in _ZERO_DATE:
            return self._zero_date(c)
        if reason == NONE_SOURCE.EMPTY_SET:
            return ""
        if reason not in (None, NONE_SOURCE.NULL):
            raise SourceError(f"{self.table}: column {c.name!r}: the binlog holds no full value ({reason}); "
                              f"binlog CDC needs binlog_row_image=FULL")
        return None

    def _timestamp(self, c: Column, v: Any, _sets: Any) -> Any:
        if v == _EPOCH:
            return self._zero_date(c)  # TIMESTAMP 0 is '0000-00-00 00:00:00' (1970-01-01 00:00:00 UTC is not valid)
        return v

    def _json(self, c: Column, v: Any, _sets: Any) -> Any:
        if not isinstance(v, str):
            raise SourceError(f"{self.table}: column {c.name!r} is MySQL's binary JSON, which binlog CDC cannot "
                              f"give as the snapshot's text yet; use another cdc_strategy for this table")
        return v

    def _zero_date(self, c: Column) -> None:
        if self.zero_dates == "error":
            raise SourceError(f"{self.table}: column {c.name!r} ({c.mysql_type}) holds a zero date such as "
                              f"'0000-00-00' and zero_dates is 'error'; set `zero_dates: null` to read them as NULL")
        return None


def _decimal(_d: RowDecoder, _c: Column, v: Any, _sets: Any) -> str:
    return format(v if isinstance(v, Decimal) else Decimal(str(v)), "f")


def _time(_d: RowDecoder, c: Column, v: Any, _sets: Any) -> str:
    return time_text(v, c.datetime_precision or 0)


def _bit(_d: RowDecoder, _c: Column, v: Any, _sets: Any) -> int:
    return int(v, 2) if isinstance(v, str) else int(v)


def _geometry(_d: RowDecoder, _c: Column, v: Any, _sets: Any) -> bytes:
    return bytes(v)[4:]  # MySQL's internal form is the SRID, then WKB (the snapshot reads ST_AsBinary)


def _year(_d: RowDecoder, _c: Column, v: Any, _sets: Any) -> Any:
    return 0 if v == 1900 else v  # the library reads YEAR 0000 as 1900, which MySQL cannot hold


def _set(_d: RowDecoder, c: Column, v: Any, set_orders: dict[str, list[str]]) -> str:
    order = set_orders.get(c.name)
    return ",".join(m for m in order if m in v) if order else ",".join(sorted(v))


# The snapshot's form of a non-NULL value the library decoded, by data type; other types as they are.
_CONVERTERS: dict[str, Any] = {
    "decimal": _decimal, "numeric": _decimal, "time": _time, "bit": _bit, "year": _year, "set": _set,
    "timestamp": RowDecoder._timestamp, "json": RowDecoder._json, **{g: _geometry for g in GEOMETRIES}}


def _raw_type(c: Column) -> pa.DataType:
    """The Arrow type a decoded value is put in before the snapshot's Converter casts it."""
    target = arrow_type(c)
    if pa.types.is_boolean(target):
        return pa.int16()  # checked for 0/1 by the Converter, as the snapshot's TINYINT(1)
    if c.data_type in ("decimal", "numeric"):
        return pa.string()
    if c.data_type == "timestamp":
        return pa.timestamp("us")  # naive UTC from the library; the cast labels it UTC, as the snapshot's
    return target
