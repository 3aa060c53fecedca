"""The load stage's contracts: what the engine may call on a target loader and
on a batch being staged (Protocols), and what a staged batch gets from its
loader (`LoadContext`) and from its target's staging (`Staging`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import pyarrow as pa
import pyarrow.fs as pafs

from lakeshift.batch import BatchFile, Manifest
from lakeshift.load.dialects import TypeDialect
from lakeshift.load.session import Session
from lakeshift.load.state import LoadRecord, LoadResult, RunRecord
from lakeshift.load.strategies import MoveJob, TableFacts


@dataclass
class Part:
    """One Parquet part of a batch, as handed to a staged batch."""

    path: str
    filesystem: pafs.FileSystem
    uri: str
    file: BatchFile


@runtime_checkable
class StagedBatch(Protocol):
    """One batch on its way into one target table: parts first, then one commit (or abort)."""

    def add_part(self, path: str, filesystem: pafs.FileSystem, uri: str, file: BatchFile) -> None: ...

    def commit(self, manifest: Manifest) -> LoadResult: ...

    def abort(self) -> None: ...


@runtime_checkable
class StreamingStagedBatch(StagedBatch, Protocol):
    """A staged batch that takes a part's rows while the part is being written."""

    def add_streamed_part(self, batches: Iterable[pa.RecordBatch], part: Callable[[], Part]) -> None: ...


@runtime_checkable
class TargetLoader(Protocol):
    """A target as the engine and the CLI use it (see lakeshift.load)."""

    @property
    def dialect(self) -> TypeDialect: ...

    @property
    def schema(self) -> str: ...

    @property
    def describe(self) -> str:
        """E.g. "PostgreSQL target host:port/db", for messages."""

    def ensure_state_tables(self) -> None: ...

    def assume_state_ready(self) -> None:
        """Another loader of this target made sure of the state tables in this run."""

    def lock(self, pipeline: str, table: str) -> AbstractContextManager[None]: ...

    def begin(self, manifest_head: Manifest, target_table: str, *,
              max_delete_fraction: float | None = None) -> StagedBatch: ...

    def loaded_batches(self, pipeline: str, table: str) -> dict[str, LoadRecord]: ...

    def record_skip(self, manifest: Manifest, pipeline: str, table: str, target_table: str,
                    reason: str) -> LoadRecord: ...

    def record_run(self, run: RunRecord) -> None: ...

    def last_runs(self, pipeline: str, table: str, n: int = 10) -> list[RunRecord]: ...

    def target_columns(self, target_table: str) -> list[str]: ...

    def live_rows(self, target_table: str) -> int: ...

    def repeated_keys(self, target_table: str, key: list[str]) -> int: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class LoadContext:
    """What a staged batch needs from its loader, and no more."""

    schema: str
    describe: str  # "PostgreSQL target host:port/db", for messages
    dialect: TypeDialect
    create_primary_key: bool  # a table the load creates gets the batch's key as PRIMARY KEY
    connect: Callable[[], Session]  # a new session of its own
    ensure_state: Callable[[], None]  # the state tables exist once this returns
    dependent_views: Callable[[Session, str], list[str]]  # views that keep a DROP of the table from working
    # full_sync with hard_deletes: soft: refuse a snapshot lacking more of the live rows (None: no limit)
    max_delete_fraction: float | None = None


class Staging(Protocol):
    """A target's staging table for one batch, as the staged batch and its commit use it."""

    name: str
    stage_sql: str  # how statements name the staging table
    ordinal: bool  # it carries _lakeshift_ord (file order), to pick the newest of a repeated key

    def accept(self, part: Part) -> None:
        """A part handed over before the commit (PostgreSQL COPYs it right away)."""

    def session(self) -> Session:
        """The session that runs the batch's transaction."""

    def fill(self, s: Session, manifest: Manifest, parts: Sequence[Part]) -> None:
        """Stage the parts inside the transaction (DuckDB, Redshift; PostgreSQL already did)."""

    def rows(self, s: Session) -> int:
        """The rows staging holds."""

    def facts(self, s: Session, job: MoveJob, known: TableFacts) -> TableFacts:
        """`known` with what this target's catalogue adds for the move planner."""

    def close(self) -> None:
        """Drop what is left of staging and close its sessions (after commit or abort)."""


class StreamingStaging(Staging, Protocol):
    """Staging that takes a part's rows while the part is being written (PostgreSQL)."""

    def accept_stream(self, batches: Iterable[pa.RecordBatch], part: Callable[[], Part]) -> Part:
        """Stage the rows as they come; return the closed part (`part()`, once `batches` is exhausted)."""
