"""The hand-over of a batch's rows to the target's staging while it is being
extracted (engine/part_feeder.py `PartFeeder`).

PostgreSQL gets the extract's own Arrow data as each part is written (nothing
is read back from the lake); other loaders get each closed part from the lake.
A loader that fails, or an extract that stops mid-part, must never leave the
extract blocked, and must surface as an error, never as a partial batch."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from conftest import mysql_exec
from kit.config import build_config
from kit.lake import local_storage
from kit.source import source_rows
from kit.targets import pg_config, pg_target
from lakeshift.batch import BatchFile
from lakeshift.engine.part_feeder import PartFeeder
from lakeshift.errors import LakeshiftError, LoadError


class FakeLake:
    filesystem = "fs"

    def full_path(self, rel: str) -> str:
        return "/lake/" + rel

    def uri(self, rel: str) -> str:
        return "file:///lake/" + rel


class FakeTableLake:
    def rel(self, path: str) -> str:
        return "t/" + path


class Streamed:
    """Takes parts as streams, like PostgresStagedLoad; `fail_after` batches raises."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.rows: list[int] = []
        self.parts: list[Any] = []
        self.fail_after = fail_after

    def add_streamed_part(self, batches: Any, part: Any) -> None:
        for i, b in enumerate(batches):
            if self.fail_after is not None and i >= self.fail_after:
                raise LoadError("target went away")
            self.rows.extend(b.column(0).to_pylist())
        self.parts.append(part())


class FromLake:
    """Takes closed parts only (DuckDB, Redshift)."""

    def __init__(self) -> None:
        self.parts: list[tuple[str, str, BatchFile]] = []

    def add_part(self, path: str, filesystem: Any, uri: str, file: BatchFile) -> None:
        self.parts.append((path, uri, file))


def rows(start: int, n: int) -> pa.Table:
    return pa.table({"id": pa.array(range(start, start + n), pa.int64())})


def test_a_streamed_part_gets_every_row_in_order_then_its_closed_part() -> None:
    staged = Streamed()
    feeder = PartFeeder(staged, FakeLake(), FakeTableLake())
    assert feeder.streamed
    feeder.rows(rows(0, 5))
    feeder.rows(rows(5, 3))
    feeder.put(BatchFile("part-0.parquet", 8, 100))
    feeder.rows(rows(8, 2))
    feeder.put(BatchFile("part-1.parquet", 2, 50))
    feeder.close()
    assert staged.rows == list(range(10))
    assert [(p.path, p.uri, p.file.rows) for p in staged.parts] == [
        ("/lake/t/part-0.parquet", "file:///lake/t/part-0.parquet", 8),
        ("/lake/t/part-1.parquet", "file:///lake/t/part-1.parquet", 2)]


def test_a_loader_without_streaming_gets_closed_parts_from_the_lake() -> None:
    staged = FromLake()
    feeder = PartFeeder(staged, FakeLake(), FakeTableLake())
    assert not feeder.streamed
    feeder.put(BatchFile("part-0.parquet", 8, 100))
    feeder.close()
    assert staged.parts == [("/lake/t/part-0.parquet", "file:///lake/t/part-0.parquet",
                             BatchFile("part-0.parquet", 8, 100))]


def test_an_extract_that_stops_mid_part_fails_the_staging_not_half_loads_it() -> None:
    staged = Streamed()
    feeder = PartFeeder(staged, FakeLake(), FakeTableLake())
    feeder.rows(rows(0, 5))  # the part never closes: the writer was aborted
    with pytest.raises(LakeshiftError, match="extract stopped before the part was closed"):
        feeder.close()
    assert staged.parts == []


def test_a_failing_loader_never_blocks_the_extract() -> None:
    """The loader dies on its second batch; the extract goes on handing over far
    more than the queue holds, and learns of the failure when it closes."""
    staged = Streamed(fail_after=1)
    feeder = PartFeeder(staged, FakeLake(), FakeTableLake())
    done = threading.Event()

    def extract() -> None:
        for i in range(10 * PartFeeder.QUEUE_ITEMS):
            feeder.rows(rows(i * 10, 10))
            if i % 7 == 6:
                feeder.put(BatchFile(f"part-{i}.parquet", 70, 1))
        done.set()

    t = threading.Thread(target=extract, daemon=True)
    t.start()
    t.join(timeout=30)
    assert done.is_set(), "the extract blocked on a loader that had failed"
    with pytest.raises(LoadError, match="target went away"):
        feeder.close()
    assert staged.parts == []


def test_a_part_with_a_wrong_row_count_is_refused(pg_schema: str) -> None:
    """PostgreSQL: the rows copied from the stream must be the closed part's rows."""
    from lakeshift.batch import Column, Manifest
    from lakeshift.config.models import ConnectionSettings, PostgresTarget
    from lakeshift.load.contracts import Part
    from lakeshift.load.postgres import PostgresLoader

    loader = PostgresLoader(PostgresTarget(**pg_config(pg_schema)), ConnectionSettings())
    head = Manifest(batch_id="20260101T000000000000Z-abcdef", pipeline="p", table="t", source_table="db.t",
                    strategy="hybrid", mode="merge", primary_key=["id"],
                    columns=[Column("id", "bigint(20)", "bigint", False, "int64")])
    staged = loader.begin(head, "t")
    try:
        with pytest.raises(LoadError, match="3 rows copied but the batch says 4"):
            staged.add_streamed_part(rows(0, 3).to_batches(),
                                     lambda: Part("/x/part-0.parquet", None, "file:///x", BatchFile("p0", 4, 1)))
    finally:
        staged.abort()
        loader.close()


def test_postgres_is_loaded_from_the_extract_and_the_lake_still_holds_the_batch(
        mysql: Any, mysql_db: str, pg_schema: str, tmp_path: Path, cli: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A full sync in several parts: PostgreSQL gets the rows without a single part
    read back; the lake holds the same batch, and a load from the lake alone
    (--load-only after a --backup-only run) gives the same table."""
    import lakeshift.load.arrowio as arrowio

    mysql_exec(mysql, "CREATE TABLE items (id INT NOT NULL PRIMARY KEY, name VARCHAR(20), amount DECIMAL(8,2))")
    with mysql.cursor() as cur:
        cur.executemany("INSERT INTO items VALUES (%s, %s, %s)",
                        [(i, f"n{i} ✓" if i % 5 else None, f"{i}.{i % 100:02d}") for i in range(1, 1001)])
    config = build_config(tmp_path / "config", mysql_db, pg_config(pg_schema), local_storage(tmp_path / "lake"),
                          {"items": {"cdc_strategy": "full_sync", "processing": {"batch_size": 100}}},
                          s3={"max_file_rows": 300, "row_group_rows": 64})
    reads: list[str] = []
    real_read_part = arrowio.read_part

    def counting_read_part(path: str, *args: Any, **kwargs: Any) -> Any:
        reads.append(path)
        return real_read_part(path, *args, **kwargs)

    monkeypatch.setattr(arrowio, "read_part", counting_read_part)
    cols = ["id", "name", "amount"]

    result = cli("sync", "pipeline", "-p", "p1", "-t", "items", config_dir=config)
    assert result.exit_code == 0, result.output + result.stderr
    assert reads == []
    assert pg_target(pg_schema).rows("items", cols, "id") == source_rows(mysql_db, "items", cols, "id")
    parts = sorted((tmp_path / "lake").rglob("*.parquet"))
    assert len(parts) == 4  # 1000 rows at 300 a part

    mysql_exec(mysql, "UPDATE items SET name = 'changed' WHERE id <= 10")
    backup = cli("sync", "pipeline", "-p", "p1", "-t", "items", "--backup-only", config_dir=config)
    assert backup.exit_code == 0, backup.output + backup.stderr
    load = cli("sync", "pipeline", "-p", "p1", "-t", "items", "--load-only", config_dir=config)
    assert load.exit_code == 0, load.output + load.stderr
    assert len(reads) == 4  # the newer batch's parts, from the lake
    assert pg_target(pg_schema).rows("items", cols, "id") == source_rows(mysql_db, "items", cols, "id")
