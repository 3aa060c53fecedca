"""What the engine needs of the load stage, as structural types: any loader
and staged load with these methods will do (the load stage's own classes, a
test's fakes). Only `PartStreaming` is checked at run time: it decides how
a batch's rows reach the target while they are extracted."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pyarrow as pa

from lakeshift.batch import BatchFile, Manifest

if TYPE_CHECKING:
    from lakeshift.config.models import TableConfig
    from lakeshift.load.base import Part
    from lakeshift.load.state import LoadResult, RunRecord


class StagedLoad(Protocol):
    """One batch on its way into its target table: parts in, then one commit or an abort."""

    def add_part(self, path: str, filesystem: Any, uri: str, file: BatchFile) -> None: ...

    def commit(self, manifest: Manifest) -> LoadResult: ...

    def abort(self) -> None: ...


@runtime_checkable
class PartStreaming(Protocol):
    """A staged load that COPYs a part's rows as they are written (PostgreSQL):
    `batches` are the part's rows, `part()` the closed part once they end."""

    def add_streamed_part(self, batches: Iterable[pa.RecordBatch], part: Callable[[], Part]) -> None: ...


class TargetLoader(Protocol):
    """The target as a table task uses it."""

    dialect: Any  # its `fold` compares column names as the target does (schema_watch.py)

    def ensure_state_tables(self) -> None: ...

    def lock(self, pipeline: str, table: str) -> AbstractContextManager[None]: ...

    def begin(self, manifest_head: Manifest, target_table: str, table_cfg: TableConfig) -> StagedLoad: ...

    def loaded_batches(self, pipeline: str, table: str) -> Mapping[str, Any]: ...

    def target_columns(self, target_table: str) -> list[str]: ...

    def record_run(self, record: RunRecord) -> None: ...

    def close(self) -> None: ...
