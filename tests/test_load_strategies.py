"""The choice of a write strategy (load/strategies/plan.py), from a batch's mode
and the facts about its target table alone: no database. What each strategy
then does to real tables is in test_load_targets/postgres/postgres_swap/redshift."""

from __future__ import annotations

from dataclasses import replace

import pyarrow as pa
import pytest
from load_kit import col, manifest

from lakeshift.batch import BatchFile
from lakeshift.errors import LoadError
from lakeshift.load.dialects import PostgresTypes
from lakeshift.load.state import LoadResult
from lakeshift.load.strategies import (
    MODES,
    Append,
    CatalogFacts,
    DeleteInsert,
    MoveJob,
    NoRows,
    Replace,
    Swap,
    SwapFacts,
    TableFacts,
    Upsert,
    plan_move,
)

KEY = ("id",)
PLAIN = CatalogFacts(relkind="r", unique_keys=(("id",),), columns=("id", "v", "extra"), estimated_rows=100,
                     size_bytes=8192)


def staged(rows: int = 10, *, exists: bool = True, catalog: CatalogFacts | None = None) -> TableFacts:
    return TableFacts(exists=exists, staged=True, staged_rows=rows, key=KEY, catalog=catalog)


# ---------------------------------------------------------------- merge


def test_a_merge_into_a_plain_postgresql_table_with_a_unique_key_upserts() -> None:
    assert plan_move("merge", staged(catalog=PLAIN)) == Upsert(target_columns=("id", "v", "extra"))


def test_a_composite_key_is_matched_in_any_column_order() -> None:
    facts = TableFacts(exists=True, staged_rows=1, key=("b", "a"), catalog=replace(PLAIN, unique_keys=(("a", "b"),)))
    assert isinstance(plan_move("merge", facts), Upsert)


@pytest.mark.parametrize("catalog", [
    replace(PLAIN, triggers=True),  # an audit trigger or a foreign key would see an UPDATE
    replace(PLAIN, rules=True),
    replace(PLAIN, unique_keys=()),  # no arbiter for ON CONFLICT
    replace(PLAIN, unique_keys=(("id", "v"),)),  # unique, but not on exactly the key
    replace(PLAIN, relkind="p"),  # partitioned
], ids=["triggers", "rules", "no unique index", "other unique index", "not a plain table"])
def test_a_merge_where_an_upsert_would_differ_deletes_and_inserts(catalog: CatalogFacts) -> None:
    assert plan_move("merge", staged(catalog=catalog)) == DeleteInsert(analyze=True, key_lookups=False)


def test_a_small_batch_into_a_large_table_probes_the_key() -> None:
    large = replace(PLAIN, triggers=True, estimated_rows=2_000_000)
    assert plan_move("merge", staged(20_000, catalog=large)) == DeleteInsert(analyze=True, key_lookups=True)
    assert plan_move("merge", staged(200_000, catalog=large)) == DeleteInsert(analyze=True, key_lookups=False)


def test_the_size_on_disk_stands_in_for_row_estimates_not_made_yet() -> None:
    never_analysed = replace(PLAIN, triggers=True, estimated_rows=0, size_bytes=200 * 20 * 1000)
    assert plan_move("merge", staged(1000, catalog=never_analysed)) == DeleteInsert(analyze=True, key_lookups=True)


def test_a_merge_into_a_table_the_batch_creates_only_inserts() -> None:
    assert plan_move("merge", staged(exists=False, catalog=PLAIN)) == DeleteInsert(delete=False)


def test_targets_without_catalogue_facts_merge_by_delete_and_insert() -> None:
    assert plan_move("merge", staged()) == DeleteInsert()  # DuckDB, Redshift


def test_a_merge_or_append_without_parts_moves_nothing() -> None:
    empty = TableFacts(exists=True, staged=False, key=KEY, catalog=PLAIN)
    assert plan_move("merge", empty) == NoRows()
    assert plan_move("append", replace(empty, key=())) == NoRows()


# ---------------------------------------------------------------- replace


CLEAN_SWAP = SwapFacts(primary_key=KEY, staged_xid=1234)  # a table lakeshift made, no reader older than staging
SWAPPABLE = replace(PLAIN, swap=CLEAN_SWAP)


def test_a_replace_staged_in_the_target_types_swaps_when_nothing_is_lost() -> None:
    assert plan_move("replace", staged(7, catalog=SWAPPABLE)) == Swap(estimated_rows=100, staged_rows=7)


@pytest.mark.parametrize(("change", "why"), [
    ({"same_owner": False}, "it has another owner"),
    ({"same_grants": False}, "it has grants of its own"),
    ({"storage_options": True}, "it has storage options"),
    ({"same_tablespace": False}, "it is in another tablespace"),
    ({"row_security": True}, "it has row security"),
    ({"partition": True}, "it is a partition"),
    ({"replica_identity": "f"}, "it has a replica identity"),
    ({"same_columns": False}, "its columns differ from the batch's"),
    ({"primary_key": ("v",)}, "another primary key"),
    ({"dependents": 1}, "views, indexes, constraints or other objects depend on it"),
    ({"own_extras": 2}, "inheritance, comments or indexes of its own"),
    ({"staged_xid": None}, "no rows were staged"),
    ({"old_snapshots": 3},
     "3 open transaction(s) began before the new rows were staged and would see a swapped-in table empty"),
], ids=lambda v: next(iter(v)) if isinstance(v, dict) else "")
def test_what_a_swap_would_lose_replaces_row_by_row_and_says_why(change: dict[str, object], why: str) -> None:
    swap = replace(CLEAN_SWAP, **change)  # type: ignore[arg-type]
    assert plan_move("replace", staged(catalog=replace(SWAPPABLE, swap=swap))) == Replace(instead_of_swap=why)


@pytest.mark.parametrize(("catalog", "why"), [
    (replace(SWAPPABLE, triggers=True), "it has triggers or foreign keys"),
    (replace(SWAPPABLE, rules=True), "it has rules"),
    (replace(SWAPPABLE, relkind="v"), "it is not a plain table"),
    (replace(SWAPPABLE, relkind=None), "the target table is not there"),
])
def test_the_table_itself_can_stop_a_swap(catalog: CatalogFacts, why: str) -> None:
    assert plan_move("replace", staged(catalog=catalog)) == Replace(instead_of_swap=why)


def test_a_replace_not_staged_for_a_swap_deletes_and_inserts() -> None:
    assert plan_move("replace", staged(catalog=None)) == Replace()  # DuckDB, Redshift, a cast column
    assert plan_move("replace", TableFacts(exists=True, staged=False, catalog=SWAPPABLE)) == Replace()  # empty snapshot


# ---------------------------------------------------------------- append and the modes


def test_an_append_replaces_its_window_unless_the_batch_made_the_table() -> None:
    assert plan_move("append", TableFacts(exists=True, staged_rows=3)) == Append(window=True)
    assert plan_move("append", TableFacts(exists=False, staged_rows=3)) == Append(window=False)


def test_an_unknown_mode_is_refused_naming_the_known_ones() -> None:
    assert set(MODES) == {"merge", "replace", "append", "delete", "changes"}
    with pytest.raises(LoadError, match="unknown mode 'scd2'; lakeshift loads replace, merge, append, delete, changes"):
        plan_move("scd2", staged())


def test_the_append_window_honours_an_exclusive_low_watermark() -> None:
    from lakeshift.batch import Cursor

    ts = col("ts", pa.timestamp("us"))
    m = manifest([col("id", pa.int64()), ts], [BatchFile("p", 1, 1)], mode="append", ts="ts",
                 low=Cursor(timestamp="2026-01-01T00:00:00"), high=Cursor(timestamp="2026-01-02T00:00:00"))
    m = replace(m, strategy="timestamp_only")
    types = {c.name: PostgresTypes().target_type(c) for c in m.columns}
    job = MoveJob(m, PostgresTypes(), "s", "t", "stage", '"stage"', True, types)
    inclusive = Append.window_delete("%s", job)
    exclusive = Append.window_delete("%s", replace(job, manifest=replace(m, low_inclusive=False)))
    assert inclusive == ('DELETE FROM "s"."t" WHERE "ts" >= CAST(%s AS timestamp(6)) AND "ts" <= '
                         "CAST(%s AS timestamp(6))", ("2026-01-01T00:00:00", "2026-01-02T00:00:00"))
    assert exclusive is not None and exclusive[0].startswith('DELETE FROM "s"."t" WHERE "ts" > CAST')


# ---------------------------------------------------------------- the result


def test_a_load_result_is_never_equal_to_a_string() -> None:
    skipped = LoadResult("b1", "skipped")
    assert skipped.skipped and skipped != "skipped" and skipped.status == "skipped"
    assert LoadResult("b1", "loaded", 3, 1, seconds=1.5, notes=("x",)) == LoadResult("b1", "loaded", 3, 1)
    assert LoadResult("b1", "loaded", 3) != LoadResult("b1", "loaded", 4)


def test_a_binlog_changes_batch_applies_its_changes_on_any_target() -> None:
    from lakeshift.load.strategies import ApplyChanges

    assert "changes" in MODES
    for catalog in (None, PLAIN):
        assert plan_move("changes", staged(catalog=catalog)) == ApplyChanges()
    assert plan_move("changes", staged(exists=False)) == ApplyChanges(delete=False)  # the batch made the table
    soft = TableFacts(exists=True, staged=True, staged_rows=3, key=KEY, soft_delete=True)
    assert plan_move("changes", soft) == ApplyChanges(soft=True)  # hard_deletes: soft
    assert plan_move("changes", TableFacts(exists=True, staged=False, key=KEY)) == NoRows()


def test_a_delete_batch_removes_or_marks_its_keys_and_a_missing_table_has_none() -> None:
    from lakeshift.load.strategies import DeleteKeys, SoftDelete

    assert plan_move("delete", staged()) == DeleteKeys()
    assert plan_move("delete", staged(catalog=PLAIN)) == DeleteKeys()
    assert plan_move("delete", replace(staged(), soft_delete=True)) == SoftDelete()
    assert plan_move("delete", staged(exists=False)) == NoRows()
    assert plan_move("delete", TableFacts(exists=True, staged=False, key=KEY)) == NoRows()


def test_a_soft_full_sync_keeps_the_swap_where_it_loses_nothing_and_marks_row_by_row_elsewhere() -> None:
    from lakeshift.load.strategies import SoftReplace, SoftSwap

    swap = CatalogFacts(relkind="r", estimated_rows=100, swap=SwapFacts(primary_key=KEY, staged_xid=5))
    soft = replace(staged(catalog=swap), soft_delete=True)
    assert plan_move("replace", soft) == SoftSwap(staged_rows=10)
    blocked = replace(soft, catalog=replace(swap, swap=SwapFacts(primary_key=KEY, staged_xid=5, dependents=1)))
    assert plan_move("replace", blocked) == SoftReplace()
    assert plan_move("replace", replace(staged(), soft_delete=True)) == SoftReplace()  # DuckDB, Redshift
    assert plan_move("replace", TableFacts(exists=True, staged=False, key=KEY, soft_delete=True)) == SoftReplace()
    assert plan_move("replace", replace(staged(exists=False, catalog=swap), soft_delete=True)) == Replace()
