"""The range of one run: which rows a strategy reads, fixed when the run starts.

Rules (proofs in short):
- hybrid: cursor (ts, id). A run reads (low_ts, low_id) < (ts, id) <= (high_ts,
  high_id), high being the greatest (ts, id) when the run starts. Rows written
  during the run are above high (or were read), so the next run, which starts
  after the last (ts, id) read, takes them.
- The upper bound is the greatest row by the paging key (cursor + primary key)
  when the run starts, so a row added during the run that ties with it on
  the cursor also waits for the next run.
- timestamp_only: a run reads low_ts <= ts <= high, INCLUSIVE at the low end:
  the next run starts at the greatest ts read, re-reading the rows that share it
  (the load merges them by key). A row committed later with that same ts is thus
  never lost, which an exclusive bound could not promise. Cost: the tie rows at
  the watermark are read again each run (a run with no change is not empty).
- id_only: low_id < id <= high_id (MAX(id) at start).
- lookback: the run starts at watermark.ts - lookback, inclusive, id dropped, so
  rows committed late with an older ts are read again (hybrid, timestamp_only).
  Without it such rows are missed: the known limit of any cursor-based read.
- full_sync: every row, paged by the primary key. Each page is its own statement
  (connectorx opens a connection per query), so a run is not one point-in-time
  snapshot: a row changed during the run appears at most once, in whichever
  state its page saw.
- Rows whose cursor columns are NULL are read by full_sync only.
- Pages inside a run: keyset on the cursor columns plus the remaining primary
  (or NOT NULL unique) key columns, so a page never ends inside a tie. A table
  without such a key is read with one streamed query instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from lakeshift.batch import Cursor


@dataclass
class Window:
    strategy: str
    low: Cursor | None  # where this run starts (after lookback); recorded as the manifest's watermark_low
    high: Cursor | None  # fixed at start; None for full_sync
    low_inclusive: bool = False  # timestamp_only and lookback starts include low.timestamp
    watermark: Cursor | None = None  # the stored watermark the run started from
    lookback: timedelta | None = None
    bound_columns: list[str] = field(default_factory=list)  # columns low/high apply to
    page_columns: list[str] = field(default_factory=list)  # keyset order; [] = one streamed query
    high_columns: list[str] = field(default_factory=list)  # what high_values are for: the page key (or bound)
    empty: bool = False  # nothing to read: no row had a cursor value when the run started
    last: Cursor | None = None  # the last position read: the next watermark
    rows: int = 0
    tail_rows: int = 0  # rows read that tie on the last value of the first cursor column
    tail_digest: str | None = None  # their fingerprint (count, value, rows), kept in the watermark as `ties`
    # positions as the reader renders them into SQL (per bound column)
    low_values: list[Any] | None = field(default=None, repr=False)
    high_values: list[Any] | None = field(default=None, repr=False)

    def unchanged(self) -> bool:
        """Every row read ties on the watermark's own value and fingerprints as
        the rows tied there when the watermark was taken: nothing changed, so
        the run writes no batch (a restart AT the watermark otherwise re-reads
        and re-loads those rows on every run)."""
        mark = self.watermark
        return (self.rows > 0 and self.tail_rows == self.rows and self.tail_digest is not None
                and mark is not None and mark.ties == self.tail_digest)

    def describe(self) -> str:
        """One line for --dry-run, e.g.
        "updated_at,id in ((2026-01-01 00:00:00, 41), (2026-02-01 10:00:00.5, 99)]"."""
        if self.strategy == "full_sync":
            how = f"paged by {','.join(self.page_columns)}" if self.page_columns else "one streamed query (no unique key)"
            return f"all rows (full snapshot), {how}"
        cols = ",".join(self.bound_columns)
        if self.empty:
            return f"{cols}: nothing to read (no row with a value in {cols})"
        lo = "(start" if self.low_values is None else ("[" if self.low_inclusive else "(") + _show(self.low_values)
        text = f"{cols} in {lo}, {_show((self.high_values or [])[:len(self.bound_columns)])}]"
        if self.lookback and self.watermark is not None:
            text += f" (lookback {_span(self.lookback)} before watermark {self.watermark.timestamp})"
        return text


def _show(values: list[Any]) -> str:
    parts = [v.hex() if isinstance(v, bytes) else str(v) for v in values]
    return parts[0] if len(parts) == 1 else "(" + ", ".join(parts) + ")"


def _span(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
