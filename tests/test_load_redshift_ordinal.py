"""Redshift's newest-wins dedupe when a key repeats with equal cursor values
(second-precision cursors, a row read twice while it was updated): the parts
carry the row's position in the batch (`_lakeshift_ord`, written by the lake
writer) and the ROW_NUMBER() orders by it after the cursor, as PostgreSQL and
DuckDB do with the ordinal they number themselves. Also: a batch of the earlier
lake profile (unsigned Parquet types) is refused in one line before any COPY."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from load_kit import SETTINGS, batch, col, ucol
from test_load_redshift import S3_ROOT, STAGE, FakeRedshift, PgProxy, parse_all, rs_target, s3_uri, stage_batch

from lakeshift.errors import LoadError
from lakeshift.load import open_target

COLS = [col("id", pa.int64()), col("name", pa.string(), "varchar(20)", "varchar"), col("ts", pa.timestamp("us"))]
SAME = datetime(2026, 1, 1, 12, 0, 0)
DATA = [{"id": [1, 2], "name": ["old", "b"], "ts": [SAME, SAME]}, {"id": [1], "name": ["new"], "ts": [SAME]}]


@pytest.fixture
def fake() -> FakeRedshift:
    return FakeRedshift()


def test_the_row_ordinal_is_staged_and_breaks_cursor_ties(fake: FakeRedshift, tmp_path: Any) -> None:
    from load_kit import Lake

    lake = Lake(tmp_path / "lake")
    m, paths = batch(lake, COLS, DATA, bid="20260101T000000000001Z-aaaaaa", ts="ts", ordinal=True)
    assert pq.ParquetFile(paths[1]).schema_arrow.names == ["id", "name", "ts", "_lakeshift_ord"]
    fake.staged_rows = 3
    loader = open_target(rs_target(), SETTINGS, connection_factory=fake.connect)
    loader.state.ready = True
    stage_batch(loader, lake, m, paths).commit(m)
    stmts = fake.statements()
    assert (f'CREATE TEMP TABLE {STAGE} ("id" BIGINT, "name" VARCHAR(65535), "ts" TIMESTAMP, '
            '"_lakeshift_ord" BIGINT)') in stmts
    assert ('INSERT INTO "analytics"."t" ("id", "name", "ts") SELECT "_lakeshift_s"."id", "_lakeshift_s"."name", '
            '"_lakeshift_s"."ts" FROM (SELECT "id", "name", "ts", ROW_NUMBER() OVER (PARTITION BY "id" ORDER BY "ts" '
            f'DESC NULLS LAST, "_lakeshift_ord" DESC) AS "_lakeshift_rn" FROM {STAGE}) AS "_lakeshift_s" '
            'WHERE "_lakeshift_s"."_lakeshift_rn" = 1') in stmts
    parse_all(stmts)


def test_the_later_row_of_a_cursor_tie_wins_on_postgresql(pg_schema: str, pg: Any, tmp_path: Any) -> None:
    """The same statements run for real (COPY emulated from the parts by position)."""
    from load_kit import Lake

    lake = Lake(tmp_path / "lake")
    pg.execute(f'CREATE SCHEMA "{pg_schema}"')
    pg.execute(f'CREATE VIEW "{pg_schema}".stv_sessions AS SELECT pid AS process FROM pg_stat_activity')
    log: list[str] = []
    loader = open_target(rs_target(schema=pg_schema), SETTINGS,
                         connection_factory=lambda: PgProxy(lake.root, S3_ROOT, pg_schema, log))
    loader.ensure_state_tables()
    m, paths = batch(lake, COLS, DATA, ts="ts", ordinal=True)
    staged = loader.begin(m, "t")
    for p, f in zip(paths, m.files):
        staged.add_part(p, lake.fs, s3_uri(lake, p), f)
    staged.commit(m)
    loader.close()
    assert pg.execute(f'SELECT id, name FROM "{pg_schema}".t ORDER BY id').fetchall() == [(1, "new"), (2, "b")]


def test_a_batch_of_the_earlier_lake_profile_is_refused_before_the_copy(fake: FakeRedshift, tmp_path: Any) -> None:
    from load_kit import Lake

    lake = Lake(tmp_path / "lake")
    legacy = [col("id", pa.int64()), col("u", pa.uint64())]  # lakeshift 1.x wrote BIGINT UNSIGNED as uint64
    m, paths = batch(lake, legacy, [{"id": [1], "u": [2**64 - 1]}], ts=None, profile=1)
    loader = open_target(rs_target(), SETTINGS, connection_factory=fake.connect)
    loader.state.ready = True
    with pytest.raises(LoadError, match=r"written by an earlier lakeshift with unsigned Parquet types in column\(s\) "
                                        r"'u', which Redshift COPY cannot read"):
        stage_batch(loader, lake, m, paths).commit(m)
    assert not any(s.startswith(("COPY", "CREATE TEMP")) for s in fake.statements())
