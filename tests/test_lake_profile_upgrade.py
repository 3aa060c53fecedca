"""Batches written before the lake type profile (lakeshift 1.x: unsigned Parquet
types, manifests without `lake_profile`) still load with `--load-only`: they are
converted when read, exactly, and load into the same target types as a batch of
the current profile written after them (no type change, no recreate)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from kit.config import build_config
from kit.lake import local_storage
from kit.targets import make_target

from lakeshift.batch import BatchFile, Column, Manifest
from lakeshift.lake_profile import PROFILE_VERSION, ROW_ORDINAL, ordinals

MAXES = [255, 65535, 4294967295, 2**64 - 1, 2**64 - 1]
# name, MySQL type, DATA_TYPE, type of lakeshift 1.x, type of the current profile
COLS = [("tu", "tinyint(3) unsigned", "tinyint", pa.uint8(), pa.int16()),
        ("su", "smallint(5) unsigned", "smallint", pa.uint16(), pa.int32()),
        ("iu", "int(10) unsigned", "int", pa.uint32(), pa.int64()),
        ("bu", "bigint(20) unsigned", "bigint", pa.uint64(), pa.decimal128(20, 0)),
        ("bits", "bit(64)", "bit", pa.uint64(), pa.decimal128(20, 0))]


def write_batch(table_dir: Path, bid: str, hour: str, rows: list[tuple[int, list[int]]], legacy: bool) -> None:
    """One batch as the given lakeshift version wrote it: a part and its manifest."""
    types = [c[3] if legacy else c[4] for c in COLS]
    data = {"id": pa.array([r[0] for r in rows], pa.int32())}
    for i, (name, *_rest) in enumerate(COLS):
        data[name] = pa.array([r[1][i] for r in rows], types[i])
    table = pa.table(data)
    if not legacy:
        table = table.append_column(ROW_ORDINAL, ordinals(0, table.num_rows))
    rel = f"year=2026/month=01/day=01/hour={hour}/batch={bid}/part-00000.parquet"
    (table_dir / rel).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, table_dir / rel)
    columns = [Column("id", "int(11)", "int", False, "int32")] + [
        Column(name, mt, dt, True, str(t), unsigned="unsigned" in mt) for (name, mt, dt, *_), t in zip(COLS, types)]
    m = Manifest(batch_id=bid, pipeline="p1", table="t", source_table="src.t", strategy="id_only", mode="merge", cursor_id_column="id",
                 columns=columns, primary_key=["id"], files=[BatchFile(rel, len(rows), (table_dir / rel).stat().st_size)],
                 rows=len(rows), created_at="2026-01-01T00:00:00+00:00", lake_profile=PROFILE_VERSION,
                 row_ordinal=not legacy)
    doc = json.loads(m.to_json())
    if legacy:  # the manifest of lakeshift 1.x: neither field existed
        del doc["lake_profile"], doc["row_ordinal"]
    (table_dir / "_manifests").mkdir(parents=True, exist_ok=True)
    (table_dir / "_manifests" / f"{bid}.json").write_text(json.dumps(doc))


@pytest.mark.parametrize("kind", ["postgres", "duckdb"])
def test_a_lake_of_the_earlier_format_loads_exactly_with_load_only(kind: str, mysql_db: str, tmp_path: Path, cli: Any,
                                                                    request: pytest.FixtureRequest) -> None:
    table_dir = tmp_path / "lake" / "p1" / "t"
    write_batch(table_dir, "20260101T000000000000Z-aaaaaa", "00", [(1, MAXES), (2, [0] * 5), (3, [1] * 5)], legacy=True)
    write_batch(table_dir, "20260101T010000000000Z-bbbbbb", "01", [(3, MAXES), (4, [7] * 5)], legacy=False)
    tgt = make_target(kind, request, tmp_path)
    tables = {"t": {"cdc_strategy": "id_only", "cdc_id_column": "id"}}
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(tmp_path / "lake"), tables)
    result = cli("sync", "pipeline", "-p", "p1", "-t", "t", "--load-only", config_dir=config)
    assert result.exit_code == 0, result.output + result.stderr
    rows = tgt.rows("t", ["id", *[c[0] for c in COLS]], '"id"')
    assert [tuple(int(v) for v in r) for r in rows] == [(1, *MAXES), (2, 0, 0, 0, 0, 0), (3, *MAXES), (4, 7, 7, 7, 7, 7)]
    if kind == "duckdb":  # the target types of an unsigned column are what they were before the profile
        types = dict(tgt.query("SELECT column_name, data_type FROM information_schema.columns "
                               f"WHERE table_schema = '{tgt.schema}' AND table_name = 't'"))
        assert [types[c[0]] for c in COLS] == ["UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UBIGINT"]
    else:
        types = dict(tgt.query("SELECT column_name, data_type FROM information_schema.columns "
                               f"WHERE table_schema = '{tgt.schema}' AND table_name = 't'"))
        assert [types[c[0]] for c in COLS] == ["smallint", "integer", "bigint", "numeric", "numeric"]
