"""Helpers for the source tests: a reader on the test database and one-call
runs of a table (describe, window, read) returning rows, the window and where
the read stopped."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pytest

from conftest import MYSQL
from lakeshift.batch import Cursor
from lakeshift.config.models import ConnectionSettings, MySQLSource, TableConfig
from lakeshift.source import MySQLReader, Window


def source_for(database: str, **extra: Any) -> MySQLSource:
    data = {"host": MYSQL["host"], "port": MYSQL["port"], "username": MYSQL["user"],
            "password": MYSQL["password"] or None, "database": database, **extra}
    return MySQLSource(**data)


SETTINGS = ConnectionSettings(connection_retry_delay=0.01, default_timeout=30)


class Sleeps(list):
    """An injectable sleep that records the delays instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_reader(database: str, read_sql: Callable[..., Any] | None = None, sleeps: Sleeps | None = None,
                **src_extra: Any) -> MySQLReader:
    return MySQLReader(source_for(database, **src_extra), SETTINGS, read_sql=read_sql,
                       sleep=sleeps if sleeps is not None else Sleeps())


def table_config(**kw: Any) -> TableConfig:
    return TableConfig(**kw)


@dataclass(frozen=True)
class Ran:
    """One run's window and where its read stopped."""

    window: Window
    last: Cursor | None  # the next watermark
    rows: int


def run(reader: MySQLReader, table: str, cfg: TableConfig, low: Cursor | None = None, batch_size: int = 1000,
        limit: int | None = None) -> tuple[pa.Table, Ran, list[int]]:
    """One run: (rows as a table in the lake schema, the window and where the read stopped, batch sizes)."""
    desc = reader.describe(table, cfg)
    window = reader.plan_window(cfg, desc, low)
    schema = reader.lake_schema(desc, cfg)
    stream = reader.read(cfg, desc, window, batch_size, limit)
    batches = list(stream)
    for b in batches:
        assert b.schema == schema
    ran = Ran(window, stream.result.last, stream.result.rows)
    return pa.Table.from_batches(batches, schema=schema), ran, [b.num_rows for b in batches]


@pytest.fixture
def reader(mysql_db: str):
    r = make_reader(mysql_db)
    try:
        yield r
    finally:
        r.close()
