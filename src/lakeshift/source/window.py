"""The range of one run: which rows a strategy reads, fixed when the run starts.

Rules (proofs in short):
- hybrid: cursor (ts, id), read up to the greatest (ts, page key) when the
  run started. A run restarts AT its watermark's timestamp (ts >= low_ts,
  inclusive), not after (ts, id): a run stopped by --limit inside rows sharing
  the id column (order lines of one order), or a row written later within the
  watermark's second with a smaller id, would otherwise never be read. The rows
  on that timestamp are read again and merged by key (newest wins), so the load
  stays idempotent; `cdc_id_column` only orders the read.
- Unless the tie is unchanged: each run checksums, in MySQL and before reading,
  the rows on its upper bound's timestamp (ties.py) and keeps the checksum in
  the watermark. When the rows now on the watermark's timestamp give the same
  checksum, the run starts right after the watermark instead (hybrid whose
  (ts, id) is unique, and timestamp_only), so a run with no change reads
  nothing and a large tie (a bulk UPDATE) is not read on every run.
- The upper bound is the greatest row by the paging key (cursor + unique key)
  when the run starts, so a row added during the run that ties with it on the
  cursor waits for the next run.
- timestamp_only: low_ts <= ts <= high, inclusive at the low end like hybrid
  (ts > low_ts when the tie is unchanged).
- id_only: low_id < id <= high_id (MAX at start) when the id column alone is a
  unique key; low_id <= id otherwise (the rows sharing the watermark's id are
  read again: a run may have stopped inside them).
- lookback: the run starts at watermark.ts - lookback, inclusive, so rows
  committed late with an older ts are read again (hybrid, timestamp_only).
  Without it such rows are missed: the known limit of any cursor-based read.
- full_sync: every row, paged by the primary key. Each page is its own statement
  (connectorx opens a connection per query), so a run is not one point-in-time
  snapshot: a row changed during the run appears at most once, in whichever
  state its page saw.
- Rows whose cursor columns are NULL are read by full_sync only.
- Pages inside a run: keyset on the cursor columns plus the remaining primary
  (or NOT NULL unique) key columns, so a page never ends inside a tie. A table
  without such a key is read with one streamed query instead; a --limit on it
  takes whole values of the cursor (its window is replaced in the target).
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
    # nothing to read: no row had a cursor value when the run started, or the greatest
    # was the watermark's own position with the tie there unchanged (nothing new)
    empty: bool = False
    high_ties: str | None = None  # checksum of the tie at `high`, taken before reading (ties.py)
    # positions as the reader renders them into SQL (per bound column)
    low_values: list[Any] | None = field(default=None, repr=False)
    high_values: list[Any] | None = field(default=None, repr=False)

    def describe(self) -> str:
        """One line for --dry-run, e.g.
        "updated_at,id in ((2026-01-01 00:00:00, 41), (2026-02-01 10:00:00.5, 99)]"."""
        if self.strategy == "full_sync":
            how = f"paged by {','.join(self.page_columns)}" if self.page_columns else "one streamed query (no unique key)"
            return f"all rows (full snapshot), {how}"
        cols = ",".join(self.bound_columns)
        if self.empty and self.low_values is not None:
            return f"{cols}: nothing to read (nothing after the watermark {_show(self.low_values)})"
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
