"""Hands a batch's rows to the target's staging on a thread of its own, so the
database COPY overlaps the extraction. A staged load that can COPY rows as
they are written (`PartStreaming`, PostgreSQL) gets the extract's own Arrow
data while each part is being written: nothing is read back from the lake and
the COPY starts with the first rows. Others get each part once it is closed,
from the lake. Either way the batch is only committed after its manifest is
in the lake (table_task.py)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lakeshift.batch import BatchFile
from lakeshift.engine.contracts import PartStreaming, StagedLoad
from lakeshift.errors import LakeshiftError
from lakeshift.load.contracts import Part

if TYPE_CHECKING:
    from lakeshift.lake import Lake, TableLake


def lake_part(lake: Lake, table_lake: TableLake, file: BatchFile) -> Part:
    """Where a loader finds one part of a batch in the lake."""
    rel = table_lake.rel(file.path)
    return Part(lake.full_path(rel), lake.filesystem, lake.uri(rel), file)


_END = object()  # the queue's end marker


class PartFeeder:
    """The extract calls `rows` (a part's rows as written), `put` (a part
    closed) and `close` (the batch is written: waits, raises the loader's error)."""

    QUEUE_ITEMS = 16  # slices of at most one reader batch (16k rows): bounds the memory held here

    def __init__(self, staged: StagedLoad, lake: Lake, table_lake: TableLake) -> None:
        self.staged, self.lake, self.table_lake = staged, lake, table_lake
        self._streaming = staged if isinstance(staged, PartStreaming) else None
        self.items: queue.Queue[Any] = queue.Queue(maxsize=self.QUEUE_ITEMS)
        self.error: BaseException | None = None
        self._ended = False  # the end marker was taken off the queue
        self.thread = threading.Thread(target=self._run, name="lakeshift-stage", daemon=True)
        self.thread.start()

    @property
    def streamed(self) -> bool:
        """The staged load takes a part's rows while it is written (`rows`), not only closed parts."""
        return self._streaming is not None

    # -- the extract's side
    def rows(self, table: pa.Table) -> None:
        if self.error is None:
            self.items.put(table)

    def put(self, part: BatchFile) -> None:
        if self.error is None:
            self.items.put(part)

    def close(self) -> None:
        self.items.put(_END)
        self.thread.join()
        if self.error is not None:
            raise self.error

    # -- the loading thread
    def _run(self) -> None:
        while not self._ended:
            item = self.items.get()
            if item is _END:
                return
            if self.error is not None:
                continue  # drain, so the extract never blocks on a loader that failed
            try:
                if isinstance(item, BatchFile):  # a part closed (read back from the lake)
                    p = lake_part(self.lake, self.table_lake, item)
                    self.staged.add_part(p.path, p.filesystem, p.uri, p.file)
                else:  # the first rows of a part being written
                    self._stream_part(item)
            except BaseException as exc:  # noqa: BLE001 - re-raised on the extract's thread by close()
                self.error = exc

    def _stream_part(self, first: pa.Table) -> None:
        if self._streaming is None:
            raise LakeshiftError("rows were handed over to a staged load that takes closed parts only")
        closed: list[BatchFile] = []

        def batches() -> Iterator[pa.RecordBatch]:
            item = first
            while True:
                if item is _END:
                    self._ended = True
                    raise LakeshiftError("the extract stopped before the part was closed")
                if isinstance(item, BatchFile):
                    closed.append(item)
                    return
                yield from item.to_batches()
                item = self.items.get()

        def part() -> Part:
            if not closed:
                raise LakeshiftError("a part's rows were copied but the part was never closed")
            return lake_part(self.lake, self.table_lake, closed[0])

        self._streaming.add_streamed_part(batches(), part)
