"""hard_deletes in the engine without a database: the max_delete_fraction guard,
which runs compare keys, what --dry-run says, and a delete batch written to a
local lake (it moves no watermark and is no column reference)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pytest
from engine_kit import FULL_SYNC, HYBRID, items_table, local_lake, table_plan

from lakeshift.batch import Cursor
from lakeshift.config.models import LakeSettings
from lakeshift.engine.deletes import check_delete_fraction, describe_deletes, detects_deletes
from lakeshift.engine.plan import Stages
from lakeshift.errors import DeletesRefused, LakeError
from lakeshift.lake import TableLake, write_delete_batch


def test_the_guard_refuses_more_than_the_fraction_naming_the_table_and_the_count() -> None:
    check_delete_fraction("items", 10, 100, 0.1, force=False)  # exactly the share: allowed
    with pytest.raises(DeletesRefused) as refused:
        check_delete_fraction("items", 50, 100, 0.1, force=False)
    text = str(refused.value)
    assert "tables.items: 50 row(s) are gone from MySQL, 50% of the 100 row(s)" in text and "\n" not in text
    assert "--force-deletes" in text
    check_delete_fraction("items", 50, 100, 0.1, force=True)
    with pytest.raises(DeletesRefused, match="tables.items: 3 row"):
        check_delete_fraction("items", 3, 0, 0.1, force=False)  # an empty target cannot lose rows


def plan(cfg, stages=Stages(), limit=None, force=False):  # type: ignore[no-untyped-def]
    return SimpleNamespace(stages=stages, limit=limit, force_deletes=force)


def test_only_incremental_runs_that_extract_and_load_compare_keys() -> None:
    t = table_plan(HYBRID.model_copy(update={"hard_deletes": "delete"}))
    assert detects_deletes(plan(t), t)
    assert "key-only comparison" in describe_deletes(plan(t), t) and "max_delete_fraction" in describe_deletes(
        plan(t), t)
    assert "--force-deletes" in describe_deletes(plan(t, force=True), t)
    for p, why in ((plan(t, Stages(load=False)), "backup only"), (plan(t, Stages(extract=False)), "load only"),
                   (plan(t, limit=5), "--limit")):
        assert not detects_deletes(p, t) and why in describe_deletes(p, t)
    ignore = table_plan(HYBRID)
    assert not detects_deletes(plan(ignore), ignore) and "hard_deletes: ignore" in describe_deletes(plan(ignore), ignore)
    soft_full = table_plan(FULL_SYNC.model_copy(update={"hard_deletes": "soft"}))
    assert not detects_deletes(plan(soft_full), soft_full)
    assert "marked in _lakeshift_deleted_at" in describe_deletes(plan(soft_full), soft_full)


def test_a_delete_batch_in_the_lake_moves_no_watermark_and_is_no_column_reference(tmp_path: Path) -> None:
    tl = TableLake(local_lake(tmp_path / "lake"), "p1", "items")
    columns = items_table().apply(HYBRID).columns
    tl.write_watermark(Cursor("2026-01-01T00:00:00", 9), None)
    key = [c for c in columns if c.name == "id"]
    assert write_delete_batch(tl, LakeSettings(), pipeline="p1", table="items", source_table="shop.items",
                              strategy="hybrid", key_columns=key, keys=pa.table({"id": pa.array([], pa.int32())}),
                              soft=False) is None
    m = write_delete_batch(tl, LakeSettings(), pipeline="p1", table="items", source_table="shop.items",
                           strategy="hybrid", key_columns=key, keys=pa.table({"id": [3, 4], "other": ["x", "y"]}),
                           soft=True)
    assert m is not None and (m.mode, m.rows, m.primary_key, m.soft_delete) == ("delete", 2, ["id"], True)
    assert tl.read_manifest(m.batch_id) == m and '"soft_delete": true' in m.to_json()
    assert tl.effective_watermark()[0] == Cursor("2026-01-01T00:00:00", 9)
    assert tl.newest_manifest() is None
    with pytest.raises(LakeError, match="lack the key column"):
        write_delete_batch(tl, LakeSettings(), pipeline="p1", table="items", source_table="shop.items",
                           strategy="hybrid", key_columns=key, keys=pa.table({"other": [1]}), soft=False)


def test_hard_deletes_on_a_table_without_a_key_is_refused_in_one_line() -> None:
    from lakeshift.engine.table_checks import check_table
    from lakeshift.errors import ConfigError

    cfg = HYBRID.model_copy(update={"cdc_strategy": "timestamp_only", "cdc_id_column": None, "hard_deletes": "soft"})
    with pytest.raises(ConfigError, match=r"tables.items: hard_deletes: soft finds deleted rows by their key, but "
                                          r"MySQL shop.items has no key; set primary_key, or hard_deletes: ignore"):
        check_table("items", cfg, items_table(key=False))
    assert check_table("items", cfg.model_copy(update={"hard_deletes": "ignore"}), items_table(key=False)).mode == "append"
