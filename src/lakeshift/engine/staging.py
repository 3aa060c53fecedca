"""The target's staging of the batch a run extracts: begun before the first
row is read when no older batch waits (batches commit in order), fed by a
PartFeeder while the batch is written, committed by the load once the
manifest is in the lake. Whatever happens in between, it is aborted exactly
once: it is a context manager around the table task, and its `abort` is the
only place that ends a staging without a commit."""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

import pyarrow as pa

from lakeshift.batch import BatchFile, Manifest
from lakeshift.engine.contracts import StagedLoad
from lakeshift.engine.part_feeder import PartFeeder
from lakeshift.redact import redact

if TYPE_CHECKING:
    from lakeshift.lake import Lake, TableLake
    from lakeshift.load.state import LoadResult

log = logging.getLogger("lakeshift.engine")


class StagingSession:
    def __init__(self, lake: Lake, table_lake: TableLake) -> None:
        self.lake, self.table_lake = lake, table_lake
        self.batch_id: str | None = None
        self._staged: StagedLoad | None = None
        self._feeder: PartFeeder | None = None

    def __enter__(self) -> StagingSession:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.abort()

    def begin(self, staged: StagedLoad, batch_id: str) -> None:
        """Stage batch `batch_id` while it is extracted."""
        if self._staged is not None:
            raise RuntimeError(f"batch {self.batch_id} is staged already")
        self._staged, self.batch_id = staged, batch_id
        self._feeder = PartFeeder(staged, self.lake, self.table_lake)

    # -- the batch writer's callbacks (None: nothing is staged)
    @property
    def on_part(self) -> Callable[[BatchFile], None] | None:
        return self._feeder.put if self._feeder else None

    @property
    def on_rows(self) -> Callable[[pa.Table], None] | None:
        return self._feeder.rows if self._feeder and self._feeder.streamed else None

    def end_extract(self, table: str) -> None:
        """The batch is written: wait until every part is staged. A target that
        failed meanwhile costs only the staging: the batch goes into the lake as
        usual and is loaded from there (by this run, or the next if the target is still away)."""
        feeder, self._feeder = self._feeder, None
        if feeder is None:
            return
        try:
            feeder.close()
        except Exception as exc:  # noqa: BLE001 - the target failed, the extract did not
            log.warning("%s: staging into the target failed while extracting (%s); the batch is kept "
                        "in the lake and loaded from there", table, redact(str(exc)))
            self.abort()

    def holds(self, manifest: Manifest) -> bool:
        """This batch is staged, ready to commit."""
        return self._staged is not None and manifest.batch_id == self.batch_id

    def commit(self, manifest: Manifest) -> LoadResult:
        """Commit the staged batch (the commit owns it from here, whatever its outcome)."""
        staged, self._staged = self._staged, None
        if staged is None or manifest.batch_id != self.batch_id:
            raise RuntimeError(f"batch {manifest.batch_id} is not the one staged ({self.batch_id})")
        return staged.commit(manifest)

    def abort(self) -> None:
        """Drop the staging, if there is one left (after a commit there is none)."""
        staged, self._staged = self._staged, None
        feeder, self._feeder = self._feeder, None
        if feeder is not None:
            try:
                feeder.close()
            except BaseException:  # noqa: BLE001 - the error that ends the staging is the one to report
                pass
        if staged is not None:
            staged.abort()
