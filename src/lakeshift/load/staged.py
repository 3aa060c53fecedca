"""A batch being staged into one target table: the parts handed over, then one
commit (load/commit.py) or an abort. What differs per target is its `Staging`."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

import pyarrow as pa
import pyarrow.fs as pafs

from lakeshift.batch import BatchFile, Manifest
from lakeshift.errors import LoadError
from lakeshift.load.checks import check_manifest
from lakeshift.load.commit import commit_batch
from lakeshift.load.contracts import LoadContext, Part, Staging, StreamingStaging
from lakeshift.load.state import LoadResult
from lakeshift.redact import redact

log = logging.getLogger("lakeshift.load")


class StagedLoad:
    """A StagedBatch (load/contracts.py) for any target."""

    def __init__(self, ctx: LoadContext, head: Manifest, target_table: str, staging: Staging) -> None:
        self.ctx = ctx
        self.head = head
        self.target_table = target_table
        self.staging = staging
        self.parts: list[Part] = []
        self._done = False
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The staging table's name."""
        return self.staging.name

    def add_part(self, path: str, filesystem: pafs.FileSystem, uri: str, file: BatchFile) -> None:
        self._refuse_when_done("add_part")
        part = Part(path, filesystem, uri, file)
        self.staging.accept(part)
        self._register(part)

    def _register(self, part: Part) -> None:
        with self._lock:
            self._refuse_when_done("add_part")
            self.parts.append(part)

    def _refuse_when_done(self, what: str) -> None:
        if self._done:
            raise LoadError(f"batch {self.head.batch_id}: {what} after commit/abort")

    def commit(self, manifest: Manifest) -> LoadResult:
        """ONE transaction: schema changes, staging -> target, the load record."""
        with self._lock:
            if self._done:
                raise LoadError(f"batch {manifest.batch_id}: commit after commit/abort")
            self._done = True
        try:
            check_manifest(self.head, manifest, self.parts)
            return commit_batch(self.ctx, self.staging, self.target_table, manifest, tuple(self.parts))
        finally:
            self._close_staging()

    def abort(self) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
        self._close_staging()

    def _close_staging(self) -> None:
        try:
            self.staging.close()
        except Exception as exc:  # noqa: BLE001 - runs on error paths too; never mask the cause
            log.warning("%s: could not drop staging: %s", self.head.table, redact(str(exc)))


class StreamingStagedLoad(StagedLoad):
    """A StreamingStagedBatch: its staging COPYs a part's rows while the part is written."""

    staging: StreamingStaging

    def add_streamed_part(self, batches: Iterable[pa.RecordBatch], part: Callable[[], Part]) -> None:
        """The rows as the extract hands them over (the same Arrow data it writes to
        the lake, so nothing is read back); `part()`, called once `batches` is
        exhausted, is the closed part, registered after its row count is checked."""
        self._refuse_when_done("add_streamed_part")
        self._register(self.staging.accept_stream(batches, part))
