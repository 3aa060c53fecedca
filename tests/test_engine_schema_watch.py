"""Before a table is read, the engine compares the source's columns with a
reference (the lake's newest batch, else the target table) and decides
whether this run reads the table from the start. Pure decisions over a fake
lake and a fake target: no database."""

from __future__ import annotations

import logging
from typing import Any

import pyarrow as pa
import pytest
from load_kit import col, manifest

from lakeshift.batch import Column, Manifest
from lakeshift.engine.schema_watch import SchemaCheck, check_columns
from lakeshift.load.dialects import PostgresTypes, RedshiftTypes

ID, NAME = col("id", pa.int64()), col("name", pa.string(), "varchar(20)", "varchar")
EMAIL = col("email", pa.string(), "varchar(80)", "varchar")


class FakeLake:
    def __init__(self, newest: Manifest | None) -> None:
        self.newest = newest

    def newest_manifest(self) -> Manifest | None:
        return self.newest


class FakeTarget:
    """A target whose table has `columns`; `asked` records every look-up."""

    def __init__(self, columns: list[str], dialect: Any = None) -> None:
        self.columns, self.dialect, self.asked = columns, dialect or PostgresTypes(), []

    def target_columns(self, table: str) -> list[str]:
        self.asked.append(table)
        return self.columns


def check(columns: list[Column], lake: FakeLake, target: FakeTarget | None = None, strategy: str = "hybrid",
          has_watermark: bool = True) -> SchemaCheck:
    return check_columns("items", strategy, columns, lake, target or FakeTarget([]), "items_t", has_watermark)


def batch_of(*columns: Column) -> FakeLake:
    return FakeLake(manifest(list(columns), [], bid="20260101T000000000001Z-aaaaaa"))


def test_an_incremental_table_that_gained_a_column_is_read_from_the_start(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "lakeshift.engine")
    result = check([ID, NAME, EMAIL], batch_of(ID, NAME))
    assert result.read_from_start
    assert result.notes == ["column 'email' added (varchar(80)); re-reading all rows so existing rows get its values"]
    assert "items: column 'email' added" in caplog.text


def test_a_snapshot_or_a_first_run_reads_everything_anyway() -> None:
    for strategy, watermark in (("full_sync", True), ("hybrid", False)):
        result = check([ID, NAME, EMAIL], batch_of(ID, NAME), strategy=strategy, has_watermark=watermark)
        assert not result.read_from_start
        assert result.notes == ["column 'email' added (varchar(80))"]


def test_a_possible_rename_rereads_and_a_gone_or_retyped_column_does_not() -> None:
    renamed = col("full_name", pa.string(), "varchar(20)", "varchar")  # same type, same position as `name`
    result = check([ID, renamed], batch_of(ID, NAME))
    assert result.read_from_start and len(result.notes) == 1
    assert result.notes[0].startswith("column 'name' is gone and 'full_name' (varchar(20)) appeared at its position")
    wider = col("name", pa.string(), "varchar(40)", "varchar")
    result = check([wider], batch_of(ID, NAME))
    assert not result.read_from_start
    assert result.notes == ["column 'id' is gone from the source; the target keeps it (NULL in every row written "
                            "from now on)", "column 'name' changed type: varchar(20) -> varchar(40)"]


def test_unchanged_columns_say_nothing() -> None:
    assert check([ID, NAME], batch_of(ID, NAME)) == SchemaCheck()


def test_without_a_batch_in_the_lake_the_target_table_is_the_reference_folded_as_the_target_compares() -> None:
    redshift = FakeTarget(["ID", "NAME"], RedshiftTypes())  # matched case-insensitively: nothing added
    assert check([ID, NAME], FakeLake(None), redshift) == SchemaCheck()
    assert redshift.asked == ["items_t"]
    postgres = FakeTarget(["id"])
    result = check([ID, NAME], FakeLake(None), postgres)
    assert result.read_from_start and result.notes[0].startswith("column 'name' added (varchar(20))")


def test_the_target_is_not_asked_for_a_snapshot_or_a_table_without_a_watermark() -> None:
    for strategy, watermark in (("full_sync", True), ("hybrid", False)):
        target = FakeTarget(["id"])
        assert check([ID, NAME], FakeLake(None), target, strategy, watermark) == SchemaCheck()
        assert target.asked == []


def test_no_reference_at_all_means_no_comparison() -> None:
    assert check([ID, NAME], FakeLake(None), FakeTarget([])) == SchemaCheck()
