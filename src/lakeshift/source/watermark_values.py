"""A watermark given by hand (`lakeshift watermark set`), checked against the
source columns it positions before it is written. The checks are the ones a
run applies when it reads the watermark back (keys.KeyCol: `from_cursor`, then
`literal` into SQL), so a value every later run would reject - `--id abc` on
an INT key, a zone offset on a DATETIME - is refused here, in one line with the
column, its type and a value that fits; so is a date that is not in the
calendar (MySQL would compare it as something else). Accepted values are
stored in the form runs write (`to_cursor`)."""

from __future__ import annotations

import re
from datetime import datetime

from lakeshift.batch import Cursor
from lakeshift.config.models import TableConfig
from lakeshift.errors import ConfigError, SourceError
from lakeshift.source.keys import KeyCol
from lakeshift.source.reader import TableDescription

# The column kinds a run accepts as a CDC cursor (timestamp or id role alike).
CURSOR_KINDS = frozenset({"temporal", "int", "decimal", "string"})
_OFFSET = re.compile(r"(Z|[+-]\d{2}:\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def checked_cursor(desc: TableDescription, table: TableConfig, timestamp: str | None, ident: str | None,
                   where: str) -> Cursor:
    """The cursor to store, or ConfigError naming the column, its type and an
    example. `where` names the pipeline table in the message."""
    ts_value = id_value = None
    if timestamp is not None:
        column = table.cdc_timestamp_column
        assert column is not None  # the caller checked the strategy's flags
        stored = _checked(desc, column, timestamp, "--timestamp", where, as_timestamp=True)
        ts_value = str(stored)
    if ident is not None:
        column = table.cdc_id_column
        assert column is not None
        id_value = _checked(desc, column, ident, "--id", where, as_timestamp=False)
    return Cursor(timestamp=ts_value, id=id_value)


def _checked(desc: TableDescription, column: str, raw: str, flag: str, where: str, *,
             as_timestamp: bool) -> int | str:
    info = desc.info(column)  # SourceError naming the table's columns when it has no such column
    key = KeyCol.of(info)
    if key is None or key.kind not in CURSOR_KINDS:
        raise ConfigError(f"{where}: column {column!r} of {desc.full_name} is {info.column_type}, which cannot be "
                          f"a CDC cursor; no watermark can be set on it (nothing changed)")
    text = raw.strip()
    if key.kind == "temporal":
        text = _iso(text)
    try:
        value = key.from_cursor(text)
        key.literal(value)
        if key.kind == "temporal":
            datetime.fromisoformat(str(value))  # a real calendar date and time, not only its shape
        stored = key.to_cursor(value, as_timestamp=as_timestamp)
    except (SourceError, ValueError):
        raise ConfigError(f"{where}: {flag} {raw!r} does not fit column {column!r} ({info.column_type}): "
                          f"{_reason(key, text)}; e.g. {flag} '{_example(key)}'"
                          + (" (UTC, or with a zone offset)" if info.data_type == "timestamp" else "")
                          + "; nothing changed") from None
    assert stored is not None
    return stored


def _iso(text: str) -> str:
    """Any ISO 8601 form Python reads ('2026-01-31 23:59', '20260131T235959Z')
    in the one form the run's checks take; other text is left for them to refuse."""
    if _DATE.match(text):
        return text  # a date stays a date (a DATE column's form)
    try:
        return datetime.fromisoformat(text.replace(" ", "T", 1)).isoformat()
    except ValueError:
        return text


def _reason(key: KeyCol, text: str) -> str:
    dt = key.info.data_type
    if key.kind == "temporal" and dt != "timestamp" and _OFFSET.search(text) and not text.endswith(("Z", "+00:00")):
        return f"a {dt.upper()} column holds local times, give the value without a zone offset"
    if key.kind == "temporal" and text.startswith("0000-00-00"):
        return "a zero date (to read from the start, use `lakeshift watermark reset`)"
    if key.kind == "temporal":
        return f"not a {dt.upper()} value"
    if key.kind == "int":
        return "not a whole number"
    return "not a number" if key.kind == "decimal" else "not a value of this column"


def _example(key: KeyCol) -> str:
    info = key.info
    if key.kind == "temporal":
        if info.data_type == "date":
            return "2026-01-31"
        frac = "." + "123456"[:info.datetime_precision] if info.datetime_precision else ""
        return f"2026-01-31 23:59:59{frac}"
    if key.kind == "decimal" and info.numeric_scale:
        return "12345." + "5" * int(info.numeric_scale)
    return "12345" if key.kind in ("int", "decimal") else "abc"
