"""Redshift delete batches: the keys are COPYed into a TEMP staging table and
removed by DELETE ... USING, or marked (soft) by UPDATE ... FROM; a full_sync
with soft deletes marks the rows its snapshot lacks. The exact SQL is asserted
and parsed with sqlglot's redshift dialect, then run on the real PostgreSQL
through the COPY-emulating proxy (as tests/test_load_redshift.py does)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pyarrow as pa
from load_kit import SETTINGS, batch, col
from test_load_redshift import (BID, INSERT_LOAD, ROLE, S3_ROOT, STAGE, PgProxy, lake, fake, parse_all,  # noqa: F401
                                rs_target, s3_uri, stage_batch)

from lakeshift.load import open_target

KEY = [col("id", pa.int64())]
COLS = [*KEY, col("name", pa.string(), "varchar(20)", "varchar")]
EXISTING = [("id", "bigint", None, 64, 0), ("name", "character varying", 80, None, None)]


def _delete_batch(lake: Any, ids: list[int], soft: bool) -> tuple[Any, list[str]]:
    m, paths = batch(lake, KEY, [{"id": ids}], bid=BID, mode="delete")
    return dataclasses.replace(m, soft_delete=soft), paths


def test_a_delete_batch_copies_its_keys_and_deletes_using_them(fake, lake):
    m, paths = _delete_batch(lake, [1, 2], soft=False)
    fake.columns["t"] = EXISTING
    fake.staged_rows = 2
    loader = open_target(rs_target(), SETTINGS, connection_factory=fake.connect)
    loader.state.ready = True
    result = stage_batch(loader, lake, m, paths).commit(m)
    assert (result.status, result.deleted) == ("loaded", 5)  # the fake reports 5 rows per DML
    stmts = fake.statements()
    begin = stmts.index("BEGIN")
    assert stmts[begin + 2:] == [
        f'CREATE TEMP TABLE {STAGE} ("id" BIGINT)',
        f"COPY {STAGE} FROM '{S3_ROOT}/t/{BID}/_{BID}.copy-manifest' IAM_ROLE '{ROLE}' FORMAT AS PARQUET MANIFEST",
        f"SELECT COUNT(*) FROM {STAGE}",
        f'DELETE FROM "analytics"."t" USING {STAGE} AS "_lakeshift_s" WHERE "analytics"."t"."id" = "_lakeshift_s"."id"',
        INSERT_LOAD, f"DROP TABLE IF EXISTS {STAGE}", "COMMIT"]
    params = next(p for st, p in fake.log if st == INSERT_LOAD)
    assert params[4:6] == ("delete", 0) and params[-1] == 5  # mode, rows, deleted
    assert not any(s.startswith(("CREATE TABLE", "ALTER")) for s in stmts)
    parse_all(stmts)


def test_a_soft_delete_batch_adds_the_column_and_marks_the_rows(fake, lake):
    m, paths = _delete_batch(lake, [1], soft=True)
    fake.columns["t"] = EXISTING
    fake.staged_rows = 1
    loader = open_target(rs_target(), SETTINGS, connection_factory=fake.connect)
    loader.state.ready = True
    stage_batch(loader, lake, m, paths).commit(m)
    stmts = fake.statements()
    assert 'ALTER TABLE "analytics"."t" ADD COLUMN "_lakeshift_deleted_at" TIMESTAMPTZ' in stmts
    update = (f'UPDATE "analytics"."t" SET "_lakeshift_deleted_at" = %s FROM {STAGE} AS "_lakeshift_s" '
              'WHERE "analytics"."t"."id" = "_lakeshift_s"."id" AND "analytics"."t"."_lakeshift_deleted_at" IS NULL')
    assert stmts.index("BEGIN") < stmts.index(update) < stmts.index(INSERT_LOAD) < stmts.index("COMMIT")
    parse_all(stmts)


def test_a_soft_full_sync_marks_what_the_snapshot_lacks(fake, lake):
    m, paths = batch(lake, COLS, [{"id": [1], "name": ["a"]}], bid=BID, mode="replace")
    m = dataclasses.replace(m, soft_delete=True)
    fake.columns["t"] = [*EXISTING, ("_lakeshift_deleted_at", "timestamp with time zone", None, None, None)]
    fake.staged_rows = 1
    loader = open_target(rs_target(), SETTINGS, connection_factory=fake.connect)
    loader.state.ready = True
    stage_batch(loader, lake, m, paths).commit(m)
    stmts = fake.statements()
    mark = ('UPDATE "analytics"."t" SET "_lakeshift_deleted_at" = %s WHERE "_lakeshift_deleted_at" IS NULL AND '
            f'NOT EXISTS (SELECT 1 FROM {STAGE} AS "_lakeshift_s" WHERE "analytics"."t"."id" = "_lakeshift_s"."id")')
    delete = f'DELETE FROM "analytics"."t" USING {STAGE} AS "_lakeshift_s" WHERE "analytics"."t"."id" = "_lakeshift_s"."id"'
    assert stmts.index(mark) < stmts.index(delete) < stmts.index(INSERT_LOAD)
    assert 'DELETE FROM "analytics"."t"' not in stmts  # never every row
    parse_all(stmts)


def test_redshift_delete_sql_runs_for_real_on_postgresql(pg_schema, pg, lake):
    pg.execute(f'CREATE SCHEMA "{pg_schema}"')
    log: list[str] = []
    loader = open_target(rs_target(schema=pg_schema), SETTINGS,
                         connection_factory=lambda: PgProxy(lake.root, S3_ROOT, pg_schema, log))
    loader.ensure_state_tables()

    def load(m: Any, paths: list[str]) -> Any:
        staged = loader.begin(m, "t")
        for p, f in zip(paths, m.files):
            staged.add_part(p, lake.fs, s3_uri(lake, p), f)
        return staged.commit(m)

    def rows() -> list[tuple[Any, ...]]:
        return pg.execute(f'SELECT id, name, "_lakeshift_deleted_at" IS NOT NULL FROM "{pg_schema}".t '
                          "ORDER BY id").fetchall()

    load(*batch(lake, COLS, [{"id": [1, 2, 3, 4], "name": ["a", "b", "c", "d"]}]))
    m, p = batch(lake, KEY, [{"id": [1]}], mode="delete")
    assert load(m, p).deleted == 1
    m, p = batch(lake, KEY, [{"id": [2, 3]}], mode="delete")
    assert load(dataclasses.replace(m, soft_delete=True), p).deleted == 2
    assert rows() == [(2, "b", True), (3, "c", True), (4, "d", False)]
    load(*batch(lake, COLS, [{"id": [3], "name": ["back"]}]))  # a key that comes back is live
    assert rows() == [(2, "b", True), (3, "back", False), (4, "d", False)]
    m, p = batch(lake, COLS, [{"id": [4, 5], "name": ["d", "e"]}], mode="replace")
    assert load(dataclasses.replace(m, soft_delete=True), p).deleted == 1  # 3 gone now
    assert rows() == [(2, "b", True), (3, "back", True), (4, "d", False), (5, "e", False)]
    recorded = pg.execute(f'SELECT "mode", "deleted" FROM "{pg_schema}"._lakeshift_loads ORDER BY batch_id').fetchall()
    assert recorded == [("merge", 0), ("delete", 1), ("delete", 2), ("merge", 0), ("replace", 1)]
    loader.close()
    parse_all([s for s in log if not s.startswith("SET ")])
