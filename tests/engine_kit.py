"""Fakes for the engine's tests that need no database: a source table held in
memory (its catalogue, its rows, and the real window planning over fake
position look-ups), a target that records what it is asked, and a run context
over a real local lake."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from lakeshift.batch import BatchFile, Cursor, Manifest
from lakeshift.config.models import LakeSettings, LocalStorage, TableConfig
from lakeshift.engine.plan import Stages, TablePlan
from lakeshift.errors import LoadError, SourceError
from lakeshift.lake import BatchWriter, Lake, TableLake
from lakeshift.load.state import LoadResult
from lakeshift.source.description import TableDescription
from lakeshift.source.row_stream import ReadResult, RowStream
from lakeshift.source.types import ColumnInfo, lake_schema
from lakeshift.source.window import Window
from lakeshift.source.window_plan import plan_window

HYBRID = TableConfig(cdc_strategy="hybrid", cdc_timestamp_column="updated_at", cdc_id_column="id")
FULL_SYNC = TableConfig(cdc_strategy="full_sync")
GREATEST = ["2026-01-01 00:00:09.000000", 9]  # the source's greatest (updated_at, id) now


def items_table(extra: tuple[str, ...] = (), key: bool = True) -> TableDescription:
    """MySQL `shop.items` (id INT, updated_at DATETIME(6), v VARCHAR(20), then `extra` VARCHAR columns)."""
    infos = [ColumnInfo("id", "int", "int(11)", False, numeric_precision=10, numeric_scale=0),
             ColumnInfo("updated_at", "datetime", "datetime(6)", False, datetime_precision=6),
             ColumnInfo("v", "varchar", "varchar(20)", True, char_max_length=20, charset="utf8mb4",
                        collation="utf8mb4_general_ci")]
    infos += [ColumnInfo(n, "varchar", "varchar(20)", True, char_max_length=20, charset="utf8mb4") for n in extra]
    return TableDescription("shop", "items", [], ["id"] if key else [], infos=infos,
                            unique_keys=[("PRIMARY", ["id"])] if key else [])


def table_plan(cfg: TableConfig = HYBRID, name: str = "items") -> TablePlan:
    return TablePlan(name=name, config=cfg, source_table="shop.items", target_table=name, batch_size=100,
                     depends_on=())


class FakePositions:
    """The position look-ups of window planning, answered from fixed values."""

    def __init__(self, greatest: list[Any] | None, ties: str = "ties-now") -> None:
        self._greatest, self._ties = greatest, ties

    def where(self, desc: TableDescription) -> str:
        return f"MySQL fake: table {desc.full_name}"

    def greatest(self, desc: TableDescription, keys: list[Any]) -> list[Any] | None:
        return list(self._greatest[:len(keys)]) if self._greatest else None

    def tie_sum(self, desc: TableDescription, ts: Any, value: Any, upto: Any) -> str:
        return self._ties


class FakeLock:
    def __init__(self) -> None:
        self.lost = False

    def check(self) -> None:
        if self.lost:
            raise SourceError("the extract lock was lost")


class FakeReader:
    """A MySQL table in memory. `rows`: what a read returns; `last`: where it stops."""

    def __init__(self, desc: TableDescription, rows: list[dict[str, Any]] | None = None,
                 last: Cursor | None = None, greatest: list[Any] | None = GREATEST, ties: str = "ties-now") -> None:
        self.desc, self.rows, self.last = desc, rows or [], last
        self.positions = FakePositions(greatest, ties)
        self.lock = FakeLock()
        self.lows: list[Cursor | None] = []  # the watermark each window was planned from
        self.closed = 0

    @contextmanager
    def table_lock(self, pipeline: str, table: str, timeout: float = 0, scope: str = "") -> Iterator[FakeLock]:
        yield self.lock

    def describe(self, full_name: str, table: TableConfig | None = None) -> TableDescription:
        return self.desc.apply(table)

    def plan_window(self, table: TableConfig, desc: TableDescription, low: Cursor | None) -> Window:
        self.lows.append(low)
        return plan_window(self.positions, table, desc, low)  # type: ignore[arg-type]

    def estimated_rows(self, full_name: str) -> int | None:
        return len(self.rows)  # the catalogue's estimate (MySQLReader.estimated_rows)

    def lake_schema(self, desc: TableDescription, table: TableConfig | None = None) -> pa.Schema:
        return lake_schema(desc.apply(table).columns)

    def read(self, table: TableConfig, desc: TableDescription, window: Window, batch_size: int,
             limit: int | None = None) -> RowStream:
        schema = self.lake_schema(desc, table)

        def batches() -> Generator[pa.RecordBatch, None, ReadResult]:
            if self.rows:
                yield pa.RecordBatch.from_pylist(self.rows, schema=schema)
            return ReadResult(len(self.rows), self.last)

        return RowStream(batches())

    def close(self) -> None:
        self.closed += 1


class FakeStaged:
    """A staged load: records parts and aborts; `fail_parts` fails every add_part."""

    def __init__(self, loader: FakeLoader, head: Manifest, fail_parts: bool = False) -> None:
        self.loader, self.head, self.fail_parts = loader, head, fail_parts
        self.parts: list[BatchFile] = []
        self.aborts = 0
        self.commits = 0

    def add_part(self, path: str, filesystem: Any, uri: str, file: BatchFile) -> None:
        if self.fail_parts:
            raise LoadError("the target went away")
        self.parts.append(file)

    def commit(self, manifest: Manifest) -> LoadResult:
        self.commits += 1
        assert sorted(f.path for f in self.parts) == sorted(f.path for f in manifest.files), "a partial batch"
        self.loader.loaded[manifest.batch_id] = None
        self.loader.order.append(manifest.batch_id)
        return LoadResult(manifest.batch_id, "loaded", manifest.rows)

    def abort(self) -> None:
        self.aborts += 1


@dataclass
class FakeLoader:
    """A target: what was begun, loaded (in order) and recorded."""

    fail_staging: bool = False  # the first staged load's parts fail (the target goes away mid-extract)
    staged: list[FakeStaged] = field(default_factory=list)
    loaded: dict[str, Any] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    runs: list[Any] = field(default_factory=list)
    dialect: Any = None

    def ensure_state_tables(self) -> None:
        pass

    def assume_state_ready(self) -> None:
        pass

    @contextmanager
    def lock(self, pipeline: str, table: str) -> Iterator[None]:
        yield

    def begin(self, manifest_head: Manifest, target_table: str, *,
              max_delete_fraction: float | None = None) -> FakeStaged:
        staged = FakeStaged(self, manifest_head, fail_parts=self.fail_staging and not self.staged)
        self.staged.append(staged)
        return staged

    def loaded_batches(self, pipeline: str, table: str) -> dict[str, Any]:
        return dict(self.loaded)

    def target_columns(self, target_table: str) -> list[str]:
        return []

    def record_run(self, record: Any) -> None:
        self.runs.append(record)

    def close(self) -> None:
        pass


def local_lake(path: Path) -> Lake:
    return Lake.from_config(LocalStorage(type="local", path=str(path)))


class FakeContext:
    """What runner.RunContext gives a table task, over a real local lake."""

    def __init__(self, lake_dir: Path, reader: FakeReader, loader: FakeLoader | None) -> None:
        self.lake = local_lake(lake_dir)
        self._reader, self._loader = reader, loader

    def reader(self) -> FakeReader:
        return self._reader

    def loader(self) -> FakeLoader | None:
        return self._loader

    def ensure_state(self, loader: FakeLoader) -> None:
        loader.ensure_state_tables()

    def table_lake(self, name: str) -> TableLake:
        return TableLake(self.lake, "p1", name)

    def batch_writer(self, table_lake: TableLake, batch_id: str, started: datetime, schema: pa.Schema,
                     on_part: Any, on_rows: Any = None, ordinal: bool = False) -> BatchWriter:
        return BatchWriter(table_lake, batch_id, started, schema, LakeSettings(), on_part=on_part, on_rows=on_rows,
                           ordinal=ordinal)


@dataclass
class FakePipeline:
    name: str = "p1"
    key: str = "p1"


@dataclass
class FakePlan:
    """The parts of engine.plan.Plan a table task reads."""

    stages: Stages = field(default_factory=Stages)
    limit: int | None = None
    force_deletes: bool = False
    wait: float | None = None
    max_changes: int | None = None
    pipeline: FakePipeline = field(default_factory=FakePipeline)
