"""Append (a timestamp_only table without a key): the batch id goes into every
row so a batch can be found and removed, and the batch's window of the source
is replaced in the target, never appended a second time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lakeshift.batch import Cursor
from lakeshift.errors import LoadError
from lakeshift.identifiers import quote_ansi
from lakeshift.load import sql
from lakeshift.load.session import Session
from lakeshift.load.strategies.contract import Moved, MoveJob

_ORDERED_KINDS = ("date", "timestamp", "timestamptz", "int", "uint", "numeric")  # ordered in the target as in MySQL


@dataclass(frozen=True)
class Append:
    window: bool = True  # False: the batch made the table, it holds no window to replace

    def move(self, s: Session, job: MoveJob) -> Moved:
        window = self.window_delete(s.placeholder, job) if self.window else None
        deleted = s.execute(*window) if window is not None else 0
        names, exprs, _ = job.columns()
        inserted = s.execute(sql.insert_rows(job.target_sql, job.stage_sql, names, exprs,
                                             extra=[(sql.BATCH_ID_COLUMN, s.placeholder)]), (job.manifest.batch_id,))
        return Moved(deleted, inserted)

    @staticmethod
    def window_delete(placeholder: str, job: MoveJob) -> tuple[str, tuple[Any, ...]] | None:
        """An append batch holds every source row of its window, from its low
        watermark (inclusive: rows committed later with that same timestamp are
        not lost; exclusive when the run found the tie at the watermark
        unchanged, see Manifest.low_inclusive) or from the start (a first run, a
        `watermark reset`, an ad-hoc `sync connections`) up to the last
        timestamp it read. Without a key to merge by, the target's rows in that
        window are deleted in the same transaction and the batch inserted."""
        m = job.manifest
        col = m.cursor_timestamp_column
        if m.strategy != "timestamp_only" or not col or col not in job.types:
            return None
        kind = job.types[col].kind
        if kind not in _ORDERED_KINDS:
            raise LoadError(f"batch {m.batch_id} of {m.table}: cannot replace its window in the target: the cursor "
                            f"column {col!r} is {job.dialect.render(job.types[col])}, which the target "
                            "does not order like MySQL; set primary_key (or use a DATETIME/TIMESTAMP/integer "
                            "cdc_timestamp_column)")
        low = _window_value(m.watermark_low, kind)
        high = _window_value(m.watermark_high, kind)
        cast = f"CAST({placeholder} AS {job.dialect.render(job.types[col])})"
        ref = quote_ansi(col)
        if low is not None:  # a run whose tie at the watermark was unchanged started after it
            where, params = f"{ref} {'>=' if m.low_inclusive else '>'} {cast}", [low]
            if high is not None:
                where, params = f"{where} AND {ref} <= {cast}", [low, high]
        else:  # from the start: zero dates were read too, and the target holds them as NULL
            where, params = (f"({ref} IS NULL OR {ref} <= {cast})", [high]) if high is not None else (
                f"{ref} IS NULL", [])
        return f"DELETE FROM {job.target_sql} WHERE {where}", tuple(params)


def _window_value(cursor: Cursor | None, kind: str) -> str | None:
    """A window bound as text for CAST(... AS target type); None for no bound
    (no cursor, or a zero date, which sorts before every date)."""
    if cursor is None or cursor.timestamp is None:
        return None
    text = str(cursor.timestamp)
    if kind in ("date", "timestamp", "timestamptz"):
        try:
            datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    return text
