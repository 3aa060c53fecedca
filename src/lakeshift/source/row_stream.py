"""A read's batches, and where the read stopped: the rows handed out and the
last cursor position, which becomes the next watermark. The reader keeps the
position as batches go out; the caller asks for it when the batches end. The
Window stays what the run planned (window.py), never written by the read."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass

import pyarrow as pa

from lakeshift.batch import Cursor
from lakeshift.errors import SourceError
from lakeshift.source import keys as K
from lakeshift.source.convert import HIDDEN
from lakeshift.source.window import Window


@dataclass(frozen=True)
class ReadResult:
    rows: int
    # The last cursor position read: the next watermark (None: no row read, or full_sync).
    # A read that reached the window's upper bound carries the tie checksum taken there.
    last: Cursor | None


class ReadProgress:
    """Follows the rows of one read. `bound`: (hidden select index, key) of the cursor columns."""

    def __init__(self, window: Window, bound: list[tuple[int, K.KeyCol]]) -> None:
        self.window, self.bound = window, bound
        self.rows = 0
        self.last: Cursor | None = None

    def advance(self, batch: pa.RecordBatch) -> None:
        w = self.window
        self.rows += batch.num_rows
        if not self.bound or w.strategy == "full_sync":
            return
        values = [batch.column(f"{HIDDEN}k{i}")[-1].as_py() for i, _ in self.bound]
        cur = K.cursor_of(w.strategy, [k for _, k in self.bound], values)
        self.last = _not_before(cur, w.watermark) if w.lookback else cur

    def result(self, limit: int | None) -> ReadResult:
        """A read that went to its upper bound ends on the tie whose checksum
        was taken before it began: the watermark keeps that checksum."""
        w, last = self.window, self.last
        if w.high_ties and last is not None and last == w.high and (limit is None or self.rows < limit):
            last = Cursor(last.timestamp, last.id, w.high_ties)
        return ReadResult(self.rows, last)


class RowStream(Iterator[pa.RecordBatch]):
    """The batches of one read, in the lake schema; `result` once they are all read.
    `batches` returns the ReadResult when it ends."""

    def __init__(self, batches: Generator[pa.RecordBatch, None, ReadResult]) -> None:
        self._batches = batches
        self._result: ReadResult | None = None

    def __iter__(self) -> RowStream:
        return self

    def __next__(self) -> pa.RecordBatch:
        try:
            return next(self._batches)
        except StopIteration as end:
            if self._result is None:
                self._result = end.value
            raise

    def close(self) -> None:
        """Stop early: the source query is closed."""
        self._batches.close()

    @property
    def result(self) -> ReadResult:
        """Where the read stopped. Only known at its end: a watermark taken halfway would skip rows."""
        if self._result is None:
            raise SourceError("the read's position was asked for before the read ended")
        return self._result


def _not_before(cur: Cursor, floor: Cursor | None) -> Cursor:
    """A lookback run re-reads older rows; the watermark never moves back."""
    if floor is None or floor.timestamp is None or cur.timestamp is None:
        return cur
    return floor if K.iso_key(cur.timestamp) < K.iso_key(floor.timestamp) else cur
