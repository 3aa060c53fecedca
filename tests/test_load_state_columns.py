"""The state tables' newer columns (`_lakeshift_loads.note`, `_lakeshift_runs.notes`)
on targets made by an older release, and skip records, on real PostgreSQL and
DuckDB. (Redshift: test_load_redshift.py asserts the same statements.)"""

from __future__ import annotations

from typing import Any

import duckdb
import psycopg
import pyarrow as pa
import pytest
from conftest import PG_DSN
from load_kit import batch, col, load
from test_load_targets import lake, target  # noqa: F401 - fixtures

from lakeshift.batch import Cursor
from lakeshift.errors import LoadError
from lakeshift.load import RunRecord

# The state tables as releases before the `note`/`notes` columns created them.
OLD_LOADS = ('CREATE TABLE {s}."_lakeshift_loads" ("pipeline" VARCHAR(256) NOT NULL, "table_name" VARCHAR(256) NOT NULL, '
             '"batch_id" VARCHAR(128) NOT NULL, "target_table" VARCHAR(256), "mode" VARCHAR(16), "rows" BIGINT, '
             '"files" INTEGER, "bytes" BIGINT, "watermark_low" VARCHAR(1024), "watermark_high" VARCHAR(1024), '
             '"loaded_at" TIMESTAMPTZ, PRIMARY KEY ("pipeline", "table_name", "batch_id"))')
OLD_RUNS = ('CREATE TABLE {s}."_lakeshift_runs" ("pipeline" VARCHAR(256) NOT NULL, "table_name" VARCHAR(256) NOT NULL, '
            '"started_at" TIMESTAMPTZ, "finished_at" TIMESTAMPTZ, "status" VARCHAR(32), "rows_extracted" BIGINT, '
            '"rows_loaded" BIGINT, "batches" INTEGER, "error" VARCHAR(16000))')
OLD_ID = "20250101T000000000000Z-0a0a0a"
COLS = [col("id", pa.int64()), col("v", pa.string())]


def execute(target: Any, statement: str) -> None:
    if target.kind == "duckdb":
        target.path.parent.mkdir(parents=True, exist_ok=True)
        with duckdb.connect(str(target.path)) as conn:
            conn.execute(statement)
    else:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(statement)


def make_old_state(target: Any) -> None:
    s = f'"{target.schema}"'
    execute(target, f"CREATE SCHEMA {s}")
    execute(target, OLD_LOADS.format(s=s))
    execute(target, OLD_RUNS.format(s=s))
    execute(target, f"INSERT INTO {s}.\"_lakeshift_loads\" VALUES ('pipe', 't', '{OLD_ID}', 't', 'merge', 3, 1, 100, NULL, "
             "NULL, TIMESTAMPTZ '2025-01-01 00:00:00+00')")
    execute(target, f"INSERT INTO {s}.\"_lakeshift_runs\" VALUES ('pipe', 't', TIMESTAMPTZ '2025-01-01 00:00:00+00', "
             "TIMESTAMPTZ '2025-01-01 00:00:01+00', 'ok', 3, 3, 1, NULL)")


def state_columns(target: Any) -> set[tuple[str, str]]:
    return set(target.query("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = "
                        f"'{target.schema}' AND column_name IN ('note', 'notes', 'deleted', 'rows_deleted', 'quality')"))


def test_an_older_releases_state_tables_are_read_then_migrated(target, lake):  # noqa: F811
    make_old_state(target)
    ld = target.open()
    try:
        # reading (dry run, watermark get, batches list) works and adds nothing
        assert ld.loaded_batches("pipe", "t")[OLD_ID].note is None
        assert ld.loaded_batches("pipe", "t")[OLD_ID].deleted == 0
        assert ld.last_runs("pipe", "t", 5)[0].notes is None and ld.last_runs("pipe", "t", 5)[0].rows_deleted == 0
        assert state_columns(target) == set()
        # a run's first step adds the columns; the old records stay
        ld.ensure_state_tables()
        assert state_columns(target) == {("_lakeshift_loads", "note"), ("_lakeshift_runs", "notes"),
                                         ("_lakeshift_loads", "deleted"), ("_lakeshift_runs", "rows_deleted"),
                                         ("_lakeshift_runs", "quality")}
        ld.record_run(RunRecord("pipe", "t", "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:01+00:00", "ok",
                                notes="column x added; no new rows", rows_deleted=4, quality="row_count_min ok"))
        assert [(r.notes, r.rows_deleted, r.quality) for r in ld.last_runs("pipe", "t", 5)] == [
            ("column x added; no new rows", 4, "row_count_min ok"), (None, 0, None)]
        m, paths = batch(lake, COLS, [{"id": [1], "v": ["a"]}], high=Cursor("2026-01-01T00:00:00", 1))
        rec = ld.record_skip(m, "pipe", "t", "t", "cannot load: ticket 7")
        assert (rec.mode, rec.rows, rec.note) == ("skipped", 0, "cannot load: ticket 7")
        loaded = ld.loaded_batches("pipe", "t")
        assert (loaded[OLD_ID].mode, loaded[m.batch_id].mode, loaded[m.batch_id].note) == (
            "merge", "skipped", "cannot load: ticket 7")
        assert loaded[m.batch_id].watermark_high == Cursor("2026-01-01T00:00:00", 1)
        # a skipped batch is never loaded, and cannot be skipped twice
        assert load(ld, lake, m, paths).skipped
        assert target.query(f"SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{target.schema}' "
                        "AND table_name = 't'") == [(0,)]
        with pytest.raises(LoadError, match="already recorded"):
            ld.record_skip(m, "pipe", "t", "t", "again")
    finally:
        ld.close()
    again = target.open()  # the next run: nothing left to add
    try:
        again.ensure_state_tables()
    finally:
        again.close()


class _RacingCursor:
    """Runs each state-table ALTER on `rival` first: another run won the race."""

    def __init__(self, cursor: Any, rival: Any) -> None:
        self._cursor, self._rival = cursor, rival

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def execute(self, statement: str, *params: Any) -> Any:
        if statement.startswith("ALTER TABLE") and "_lakeshift_" in statement:
            self._rival(statement)
        return self._cursor.execute(statement, *params)


class _RacingConnection:
    def __init__(self, conn: Any, rival: Any) -> None:
        self._conn, self._rival = conn, rival

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def cursor(self) -> _RacingCursor:
        return _RacingCursor(self._conn.cursor(), self._rival)

    def execute(self, statement: str, *params: Any) -> Any:  # DuckDB sessions execute on the connection
        return _RacingCursor(self._conn, self._rival).execute(statement, *params)


def test_a_migration_that_loses_the_race_to_another_run_is_fine(target, tmp_path):  # noqa: F811
    make_old_state(target)
    if target.kind == "postgres":
        def factory() -> Any:
            return _RacingConnection(psycopg.connect(PG_DSN, autocommit=True), lambda stmt: execute(target, stmt))
    else:
        def factory() -> Any:
            conn = duckdb.connect(str(target.path))
            return _RacingConnection(conn, conn.execute)  # the same file: the column exists by the time ours runs
    ld = target.open(connection_factory=factory)
    try:
        ld.ensure_state_tables()  # each ALTER fails with "already exists": tolerated
        assert ld.loaded_batches("pipe", "t")[OLD_ID].note is None
    finally:
        ld.close()
    assert state_columns(target) == {("_lakeshift_loads", "note"), ("_lakeshift_runs", "notes"),
                                     ("_lakeshift_loads", "deleted"), ("_lakeshift_runs", "rows_deleted"),
                                     ("_lakeshift_runs", "quality")}


def test_a_migration_that_fails_for_another_reason_is_an_error(target):  # noqa: F811
    make_old_state(target)

    def refuse(statement: str) -> None:
        raise RuntimeError("permission denied for table _lakeshift_loads")

    if target.kind == "postgres":
        def factory() -> Any:
            return _RacingConnection(psycopg.connect(PG_DSN, autocommit=True), refuse)
    else:
        def factory() -> Any:
            return _RacingConnection(duckdb.connect(str(target.path)), refuse)
    ld = target.open(connection_factory=factory)
    try:
        with pytest.raises(LoadError, match="permission denied"):
            ld.ensure_state_tables()
    finally:
        ld.close()
    assert state_columns(target) == set()
