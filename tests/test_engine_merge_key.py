"""The merge key and the batch mode of a table, decided from its MySQL
catalogue and its configuration, before anything is read: pure, no database."""

from __future__ import annotations

import pyarrow as pa
import pytest

from lakeshift.config.models import TableConfig
from lakeshift.engine.merge_key import MergeKey, RepeatCheck, batch_mode, check_strategy, resolve_merge_key
from lakeshift.errors import ConfigError, SourceError
from lakeshift.source.description import TableDescription
from lakeshift.source.types import ColumnInfo

HYBRID = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id"}


def table(unique_keys: list[tuple[str, list[str]]], nullable: tuple[str, ...] = ()) -> TableDescription:
    """`shop.orders` (id, code, region, updated_at) with the given unique keys."""
    infos = [ColumnInfo(n, "int", "int(11)", n in nullable, numeric_precision=10, numeric_scale=0)
             for n in ("id", "code", "region")]
    infos.append(ColumnInfo("updated_at", "datetime", "datetime(6)", False, datetime_precision=6))
    pk = next((cols for index, cols in unique_keys if index == "PRIMARY"), [])
    return TableDescription("shop", "orders", [], pk, infos=infos, unique_keys=unique_keys)


def test_the_source_primary_key_is_the_merge_key() -> None:
    key = resolve_merge_key("orders", TableConfig(**HYBRID), table([("PRIMARY", ["id"]), ("uq_code", ["code"])]))
    assert key == MergeKey(["id"], "the source's primary key")
    assert key.declared_unique and key.describe() == "(id) from the source's primary key"


def test_without_a_primary_key_a_unique_index_on_not_null_columns_is_used_and_a_nullable_one_is_not() -> None:
    keys = [("uq_code", ["code"]), ("uq_region_code", ["region", "code"])]
    assert resolve_merge_key("orders", TableConfig(**HYBRID), table(keys)) == \
        MergeKey(["code"], "the source's unique index uq_code")
    # NULLs never compare equal: a unique index over a nullable column identifies no row
    key = resolve_merge_key("orders", TableConfig(**HYBRID), table(keys, nullable=("code",)))
    assert key == MergeKey([], "none") and key.describe() == "no key"


def test_a_configured_key_that_contains_a_unique_key_is_unique_by_construction() -> None:
    cfg = TableConfig(**HYBRID, primary_key=["region", "code"])
    key = resolve_merge_key("orders", cfg, table([("uq_code", ["code"])]))
    assert key.columns == ["region", "code"] and key.declared_unique
    assert key.origin == "primary_key (unique in MySQL by its unique index uq_code)"
    assert not RepeatCheck("orders", key).active


def test_a_configured_key_that_is_not_unique_while_the_table_has_one_is_refused() -> None:
    cfg = TableConfig(**HYBRID, primary_key=["region"])
    with pytest.raises(ConfigError) as err:
        resolve_merge_key("orders", cfg, table([("PRIMARY", ["id"])]))
    message = str(err.value)
    assert message.startswith("tables.orders.primary_key (region) is not unique in MySQL shop.orders")
    assert "primary key is (id)" in message and "Remove primary_key to merge on (id)" in message


def test_a_configured_key_on_a_keyless_table_is_checked_in_every_batch() -> None:
    key = resolve_merge_key("orders", TableConfig(**HYBRID, primary_key=["code"]), table([]))
    assert key.columns == ["code"] and not key.declared_unique
    assert RepeatCheck("orders", key).active


def test_a_configured_key_naming_no_column_of_the_table_names_the_columns() -> None:
    with pytest.raises(SourceError, match=r"table shop.orders has no column 'sku' \(columns: id, code, region, "):
        resolve_merge_key("orders", TableConfig(**HYBRID, primary_key=["sku"]), table([]))


@pytest.mark.parametrize("strategy", ["hybrid", "id_only"])
def test_strategies_that_merge_changed_rows_are_refused_on_a_keyless_table(strategy: str) -> None:
    cfg = TableConfig(cdc_strategy=strategy, cdc_timestamp_column="updated_at", cdc_id_column="id")
    with pytest.raises(ConfigError, match=rf"^tables.orders: cdc_strategy {strategy} merges changed rows by key, "
                                          r"but MySQL shop.orders has no primary key"):
        check_strategy("orders", cfg, MergeKey([], "none"), table([]))
    check_strategy("orders", cfg, MergeKey(["id"], "the source's primary key"), table([("PRIMARY", ["id"])]))


@pytest.mark.parametrize("cfg", [TableConfig(cdc_strategy="timestamp_only", cdc_timestamp_column="updated_at"),
                                 TableConfig(cdc_strategy="full_sync")])
def test_appending_and_snapshot_strategies_need_no_key(cfg: TableConfig) -> None:
    check_strategy("orders", cfg, MergeKey([], "none"), table([]))  # no error


def test_the_batch_mode_follows_the_strategy_and_the_key() -> None:
    keyed, keyless = MergeKey(["id"], "the source's primary key"), MergeKey([], "none")
    assert batch_mode(TableConfig(cdc_strategy="full_sync"), keyed) == "replace"
    assert batch_mode(TableConfig(cdc_strategy="full_sync"), keyless) == "replace"
    assert batch_mode(TableConfig(**HYBRID), keyed) == "merge"
    assert batch_mode(TableConfig(cdc_strategy="timestamp_only", cdc_timestamp_column="updated_at"), keyless) == "append"


def test_a_repeated_value_of_an_undeclared_key_fails_the_batch_across_its_parts() -> None:
    check = RepeatCheck("orders", MergeKey(["region", "code"], "primary_key", declared_unique=False))
    check.add(pa.record_batch({"region": [1, 1], "code": [7, 8], "v": ["a", "b"]}))
    check.add(pa.record_batch({"region": [2, 1], "code": [7, 8], "v": ["c", "d"]}))  # (1, 8) again, in another part
    with pytest.raises(SourceError, match=r"^tables.orders.primary_key \(region, code\) does not identify rows: "
                                          r"region=1, code=8 appears 2 times in this batch \(and 0 more"):
        check.check()
    check.check()  # the next batch starts empty: nothing carried over


def test_unique_values_pass_and_a_declared_key_is_never_collected() -> None:
    undeclared = RepeatCheck("orders", MergeKey(["code"], "primary_key", declared_unique=False))
    undeclared.add(pa.record_batch({"code": [1, 2, 3]}))
    undeclared.check()
    declared = RepeatCheck("orders", MergeKey(["code"], "the source's primary key"))
    declared.add(pa.record_batch({"code": [1, 1]}))
    declared.check()  # MySQL promises uniqueness: nothing to check, nothing kept
