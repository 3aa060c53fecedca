"""SCD type 2 history on Redshift: the exact statements sent (FakeRedshift),
each parsed with sqlglot's redshift dialect, all inside the batch's one
transaction before its load record; then the same Redshift loader on the real
PostgreSQL (the COPY-emulating proxy) writes the expected versions."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import pyarrow as pa
from load_kit import SETTINGS, batch, col
import pytest
from kit.redshift import FakeRedshift
from test_load_redshift import (BID, INSERT_LOAD, S3_ROOT, STAGE, PgProxy, lake, parse_all,  # noqa: F401
                                rs_target, stage_batch)

from lakeshift.batch import History
from lakeshift.load import open_target

COLS = [col("id", pa.int64()), col("name", pa.string(), "varchar(20)", "varchar"),
        col("note", pa.string(), "varchar(20)", "varchar"), col("updated_at", pa.timestamp("us"))]
HIST = History(("id",), ("name",), 0.1, force_deletes=True)
T = '"analytics"."t"'
V = '"_lakeshift_v"'
# the id column may be NULL (as load_kit makes columns): compared with a stand-in for NULL
ID_MATCH = (f'COALESCE({T}."id", 0) = COALESCE({V}."id", 0) AND CASE WHEN {T}."id" IS NULL THEN 1 ELSE 0 END = '
            f'CASE WHEN {V}."id" IS NULL THEN 1 ELSE 0 END')
HISTORY_TABLE = [("id", "bigint", None, 64, 0), ("name", "character varying", 80, None, None),
                 ("note", "character varying", 80, None, None),
                 ("updated_at", "timestamp without time zone", None, None, None),
                 ("_lakeshift_valid_from", "timestamp without time zone", None, None, None),
                 ("_lakeshift_valid_to", "timestamp without time zone", None, None, None),
                 ("_lakeshift_is_current", "boolean", None, None, None),
                 ("_lakeshift_is_deleted", "boolean", None, None, None),
                 ("_lakeshift_row_hash", "character varying", 32, None, None)]


class HistoryFake(FakeRedshift):
    """Answers the count of the versions a batch opens: no tombstone, `in_place` rows changed in place."""

    in_place = 1

    def respond(self, statement: str, params: Any) -> tuple[list[tuple[Any, ...]], int]:
        if statement.startswith("SELECT SUM(CASE WHEN"):
            return [(0, self.in_place)], 1
        return super().respond(statement, params)


@pytest.fixture
def fake() -> HistoryFake:
    return HistoryFake()


def test_the_history_statements_redshift_gets(fake, lake):
    m, paths = batch(lake, COLS, [{"id": [1], "name": ["a"], "note": ["x"], "updated_at": [None]}], bid=BID,
                     ts="updated_at")
    m = dataclasses.replace(m, history=HIST)
    fake.columns["t"] = HISTORY_TABLE
    fake.staged_rows = 1
    loader = open_target(rs_target(), SETTINGS, connection_factory=fake.connect)
    loader.state.ready = True
    assert stage_batch(loader, lake, m, paths).commit(m).status == "loaded"
    stmts = fake.statements()
    work_c, work_v = STAGE[:-1] + '_c"', STAGE[:-1] + '_v"'
    begin, load = stmts.index("BEGIN"), stmts.index(INSERT_LOAD)
    history = stmts[stmts.index(f"SELECT COUNT(*) FROM {STAGE}") + 1:load]
    text = "CAST(\"_lakeshift_s\".\"name\" AS VARCHAR(65535))"
    assert history[0] == (f'CREATE TEMP TABLE {work_c} ("id" BIGINT, "name" VARCHAR(80), "note" VARCHAR(80), '
                          '"updated_at" TIMESTAMP, "_lakeshift_h" VARCHAR(32), "_lakeshift_d" BOOLEAN, '
                          '"_lakeshift_t" TIMESTAMP, "_lakeshift_o" BIGINT, "_lakeshift_b" INTEGER)')
    assert history[1].endswith(
        f"SELECT \"_lakeshift_s\".\"id\", \"_lakeshift_s\".\"name\", \"_lakeshift_s\".\"note\", "
        f"\"_lakeshift_s\".\"updated_at\", MD5(COALESCE(CAST(LENGTH({text}) AS VARCHAR(12)) || ':' || {text}, '~')), "
        "FALSE, COALESCE(CAST(\"_lakeshift_s\".\"updated_at\" AS TIMESTAMP), "
        f"CAST('2026-01-01 00:00:00.000000' AS TIMESTAMP)), 0, 0 FROM {STAGE} AS \"_lakeshift_s\"")
    assert history[2].startswith(f"INSERT INTO {work_c} (") and " FROM " + T in history[2]  # the current versions
    assert history[3].startswith(f"CREATE TEMP TABLE {work_v} AS SELECT ")
    assert history[4] == ('SELECT SUM(CASE WHEN "_lakeshift_g" >= 1 AND "_lakeshift_d" THEN 1 ELSE 0 END), '
                          'SUM(CASE WHEN "_lakeshift_g" = 0 AND "_lakeshift_b" = 0 THEN 1 ELSE 0 END) '
                          f'FROM {work_v}')
    close = f'"_lakeshift_valid_to" = {V}."_lakeshift_vt", "_lakeshift_is_current" = {V}."_lakeshift_vt" IS NULL'
    where = f'FROM {work_v} AS {V} WHERE {ID_MATCH} AND {T}."_lakeshift_is_current" AND {V}."_lakeshift_g" = 0 AND '
    assert history[5:] == [
        f'UPDATE {T} SET {close} {where}{V}."_lakeshift_b" = 1 AND {V}."_lakeshift_vt" IS NOT NULL',
        f'UPDATE {T} SET "name" = {V}."name", "note" = {V}."note", "updated_at" = {V}."updated_at", {close} '
        f'{where}{V}."_lakeshift_b" = 0',  # only when the batch changes a current version in place
        f'INSERT INTO {T} ("id", "name", "note", "updated_at", "_lakeshift_valid_from", "_lakeshift_valid_to", '
        f'"_lakeshift_is_current", "_lakeshift_is_deleted", "_lakeshift_row_hash") SELECT {V}."id", {V}."name", '
        f'{V}."note", {V}."updated_at", {V}."_lakeshift_vf", {V}."_lakeshift_vt", {V}."_lakeshift_vt" IS NULL, '
        f'{V}."_lakeshift_d", {V}."_lakeshift_h" FROM {work_v} AS {V} WHERE {V}."_lakeshift_g" >= 1',
        f"DROP TABLE IF EXISTS {work_c}", f"DROP TABLE IF EXISTS {work_v}"]
    assert begin < stmts.index(history[0]) and stmts[-1] == "COMMIT"
    assert not any("ANALYZE" in s or "CREATE INDEX" in s for s in stmts)  # PostgreSQL only
    parse_all(stmts)


def test_a_new_history_table_has_the_version_columns_and_no_primary_key(fake, lake):
    m, paths = batch(lake, COLS, [{"id": [1], "name": ["a"], "note": ["x"], "updated_at": [None]}], bid=BID,
                     ts="updated_at")
    m = dataclasses.replace(m, history=HIST)
    fake.staged_rows, fake.in_place = 1, 0
    loader = open_target(rs_target(), SETTINGS, connection_factory=fake.connect)
    loader.state.ready = True
    stage_batch(loader, lake, m, paths).commit(m)
    create = next(s for s in fake.statements() if s.startswith(f"CREATE TABLE {T}"))
    assert create.endswith('"_lakeshift_valid_from" TIMESTAMP, "_lakeshift_valid_to" TIMESTAMP, '
                           '"_lakeshift_is_current" BOOLEAN, "_lakeshift_is_deleted" BOOLEAN, '
                           '"_lakeshift_row_hash" VARCHAR(32))')
    assert "PRIMARY KEY" not in create
    assert [s for s in fake.statements() if s.startswith("UPDATE")] == [  # nothing changed in place: no 2nd UPDATE
        next(s for s in fake.statements() if s.startswith(f"UPDATE {T} SET \"_lakeshift_valid_to\""))]
    parse_all(fake.statements())


def test_the_redshift_history_sql_runs_for_real_on_postgresql(pg_schema, pg, lake):
    pg.execute(f'CREATE SCHEMA "{pg_schema}"')
    pg.execute(f'CREATE VIEW "{pg_schema}".stv_sessions AS SELECT pid AS process FROM pg_stat_activity')
    log: list[str] = []
    loader = open_target(rs_target(schema=pg_schema), SETTINGS,
                         connection_factory=lambda: PgProxy(lake.root, S3_ROOT, pg_schema, log))
    loader.ensure_state_tables()

    def load(rows: list[tuple[Any, ...]], hour: int, mode: str = "merge", columns: list[Any] = COLS) -> None:
        data = {c.name: [r[i] for r in rows] for i, c in enumerate(columns)}
        m, paths = batch(lake, columns, [data], mode=mode, ts="updated_at" if mode == "merge" else None,
                         ordinal=True)  # Redshift's parts carry the row ordinal
        m = dataclasses.replace(m, history=HIST, created_at=f"2026-03-01T{hour:02d}:30:00+00:00")
        assert stage_batch(loader, lake, m, paths).commit(m).status == "loaded"

    at = [datetime(2026, 3, 1, h) for h in range(24)]
    with loader.lock("pipe", "t"):
        load([(1, "a", "x", at[10]), (2, "b", "x", at[10])], 10)
        load([(1, "a2", "x", at[11]), (1, "a3", "x", at[11]), (2, "b", "y", at[11])], 11)  # two changes, in place
        load([(2,)], 12, mode="delete", columns=COLS[:1])
        load([(2, "b", "y", at[13]), (1, "a3", "x", at[11])], 13)  # back; A re-read unchanged
    rows = pg.execute(f'SELECT id, name, note, "_lakeshift_valid_from", "_lakeshift_valid_to", "_lakeshift_is_current", '
                      f'"_lakeshift_is_deleted" FROM "{pg_schema}".t ORDER BY id, "_lakeshift_valid_from", '
                      '"_lakeshift_valid_to" NULLS LAST, "_lakeshift_is_deleted"').fetchall()
    tomb = datetime(2026, 3, 1, 12, 30)
    assert rows == [(1, "a", "x", at[10], at[11], False, False), (1, "a2", "x", at[11], at[11], False, False),
                    (1, "a3", "x", at[11], None, True, False),
                    (2, "b", "y", at[10], tomb, False, False), (2, "b", "y", tomb, at[13], False, True),
                    (2, "b", "y", at[13], None, True, False)]
    parse_all([s for s in log if not s.startswith(("COPY", "ANALYZE"))])
