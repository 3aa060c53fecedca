"""What the engine needs of the load stage: the load stage's own contracts
(load/contracts.py), named as the engine uses them, and `PartStreaming`, the
one checked at run time: a staged load that takes a part's rows while the part
is being written (PostgreSQL) gets the extract's own Arrow batches; others get
each closed part from the lake. Only the method it needs is asked for."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

import pyarrow as pa

from lakeshift.load.contracts import Part, StagedBatch as StagedLoad, TargetLoader


@runtime_checkable
class PartStreaming(Protocol):
    def add_streamed_part(self, batches: Iterable[pa.RecordBatch], part: Callable[[], Part]) -> None: ...


__all__ = ["Part", "PartStreaming", "StagedLoad", "TargetLoader"]
