"""PostgreSQL full_sync (replace) by table swap: the staging table, made in the
target's own types, is swapped in when that loses nothing; otherwise (views,
indexes, grants, comments, other columns, a repeated key, readers holding the
table) the old DELETE + INSERT path runs, in the same one transaction."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pyarrow as pa
import pytest
from conftest import PG_DSN
from load_kit import Lake, batch, col, load
from kit.targets import pg_target

from lakeshift.load.strategies import swap as swapmod

@pytest.fixture
def lake(tmp_path: Any) -> Lake:
    return Lake(tmp_path / "lake")


COLS = [col("id", pa.uint64()), col("v", pa.string(), "varchar(20)", "varchar"), col("n", pa.decimal128(12, 2))]


def _oid(pg: psycopg.Connection, schema: str) -> int:
    return pg.execute("SELECT to_regclass(%s)::oid", (f'"{schema}"."t"',)).fetchone()[0]


def _rows(pg: psycopg.Connection, schema: str) -> list[tuple[Any, ...]]:
    return pg.execute(f'SELECT id, v, n FROM "{schema}"."t" ORDER BY id').fetchall()


def _stages(pg: psycopg.Connection, schema: str) -> list[str]:
    return [r[0] for r in pg.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname LIKE '\\_ls\\_stage\\_%%'", (schema,)).fetchall()]


def _replace(lake: Any, schema: str, data: dict[str, list[Any]], **kw: Any) -> Any:
    m, p = batch(lake, COLS, [data], mode="replace", **kw)
    loader = pg_target(schema).open()
    try:
        return load(loader, lake, m, p)
    finally:
        loader.close()


def test_a_plain_target_is_swapped_with_its_key_and_types(pg_schema, pg, lake):
    _replace(lake, pg_schema, {"id": [1, 2], "v": ["a", "b"], "n": [1, 2]})
    first = _oid(pg, pg_schema)
    result = _replace(lake, pg_schema, {"id": [3, 2**64 - 1], "v": ["c", "é"], "n": [3, None]})
    assert result.rows == 2
    assert _oid(pg, pg_schema) != first  # a new table took the old one's place
    assert [tuple(map(str, r)) for r in _rows(pg, pg_schema)] == [("3", "c", "3.00"), (str(2**64 - 1), "é", "None")]
    assert _stages(pg, pg_schema) == []
    cols = pg.execute("SELECT column_name, data_type, character_maximum_length, numeric_precision, numeric_scale "
                      "FROM information_schema.columns WHERE table_schema = %s AND table_name = 't' "
                      "ORDER BY ordinal_position", (pg_schema,)).fetchall()
    assert cols == [("id", "numeric", None, 20, 0), ("v", "character varying", 20, None, None),
                    ("n", "numeric", None, 12, 2)]
    key = pg.execute("SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(%s) AND contype = 'p'",
                     (f'"{pg_schema}"."t"',)).fetchall()
    assert key == [("t_pkey",)]


@pytest.mark.parametrize("extra", [
    'CREATE INDEX ON "{s}"."t" (v)',
    'CREATE VIEW "{s}".vv AS SELECT id FROM "{s}"."t"',
    'COMMENT ON COLUMN "{s}"."t".v IS \'keep me\'',
    'GRANT SELECT ON "{s}"."t" TO PUBLIC',
    'ALTER TABLE "{s}"."t" ADD COLUMN mine text',
])
def test_what_a_swap_would_lose_keeps_the_table(pg_schema, pg, lake, extra):
    _replace(lake, pg_schema, {"id": [1], "v": ["a"], "n": [1]})
    pg.execute(extra.format(s=pg_schema))
    first = _oid(pg, pg_schema)
    _replace(lake, pg_schema, {"id": [2, 1], "v": ["b", "A"], "n": [2, 1]})
    assert _oid(pg, pg_schema) == first  # DELETE + INSERT into the same table
    assert [(int(i), v) for i, v, _ in _rows(pg, pg_schema)] == [(1, "A"), (2, "b")]
    assert _stages(pg, pg_schema) == []


def test_a_repeated_key_is_deduplicated_instead(pg_schema, pg, lake):
    _replace(lake, pg_schema, {"id": [1, 1, 2], "v": ["old", "new", "x"], "n": [1, 2, 3]})
    assert [(int(i), v) for i, v, _ in _rows(pg, pg_schema)] in ([(1, "old"), (2, "x")], [(1, "new"), (2, "x")])
    assert pg.execute("SELECT count(*) FROM pg_constraint WHERE conrelid = to_regclass(%s) AND contype = 'p'",
                      (f'"{pg_schema}"."t"',)).fetchone()[0] == 1


def test_a_reader_holding_the_table_makes_it_fall_back(pg_schema, pg, lake, monkeypatch):
    monkeypatch.setattr(swapmod, "SWAP_LOCK_TIMEOUT", "200ms")
    _replace(lake, pg_schema, {"id": [1], "v": ["a"], "n": [1]})
    first = _oid(pg, pg_schema)
    reader = psycopg.connect(PG_DSN)  # a transaction reading the table: ACCESS SHARE until it ends
    try:
        assert reader.execute(f'SELECT count(*) FROM "{pg_schema}"."t"').fetchone() == (1,)
        started = time.monotonic()
        _replace(lake, pg_schema, {"id": [5], "v": ["e"], "n": [5]})
        assert time.monotonic() - started < 30
    finally:
        reader.rollback()
        reader.close()
    assert _oid(pg, pg_schema) == first
    assert [(int(i), v) for i, v, _ in _rows(pg, pg_schema)] == [(5, "e")]


def test_readers_see_the_old_rows_until_the_swap_commits(pg_schema, pg, lake):
    _replace(lake, pg_schema, {"id": [1, 2], "v": ["a", "b"], "n": [1, 2]})
    seen: list[int] = []
    stop = threading.Event()

    def read() -> None:
        with psycopg.connect(PG_DSN, autocommit=True) as c:
            while not stop.is_set():
                seen.append(c.execute(f'SELECT count(*) FROM "{pg_schema}"."t"').fetchone()[0])

    t = threading.Thread(target=read)
    t.start()
    try:
        _replace(lake, pg_schema, {"id": [7, 8, 9], "v": ["x", "y", "z"], "n": [7, 8, 9]})
        time.sleep(0.05)
    finally:
        stop.set()
        t.join()
    assert set(seen) <= {2, 3} and seen[-1] == 3  # never empty, never half
