"""The data quality checks on Arrow data (pure, no service): typed comparisons,
time zones, NULLs, composite keys, binlog change batches and config errors."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pyarrow as pa
import pytest
from load_kit import col

from lakeshift.batch import Manifest
from lakeshift.config.models import TableConfig
from lakeshift.engine.quality_checks import run_checks, scan_columns

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
DATA = pa.table({"id": pa.array([1, 2, 3, 4], pa.int64()), "day": pa.array([date(2026, 6, 1)] * 2 + [date(2026, 5, 1)] * 2),
                 "amount": pa.array([Decimal("1.50"), Decimal("2.00"), None, Decimal("1.50")], pa.decimal128(5, 2)),
                 "at": pa.array([NOW - timedelta(hours=h) for h in (1, 2, 3, 30)], pa.timestamp("us", tz="UTC"))})


def _manifest(mode: str = "merge", key: tuple[str, ...] = ("id",)) -> Manifest:
    return Manifest("b1", "p", "t", "s.t", "hybrid", mode, [col(n, DATA[n].type) for n in DATA.column_names],  # type: ignore[arg-type]
                    list(key), rows=DATA.num_rows, null_counts={"amount": 1})


def _one(checks: list, mode: str = "merge") -> list:
    cfg = TableConfig(data_quality_checks=checks)
    m = _manifest(mode)
    data = DATA.select(scan_columns(cfg.data_quality_checks, m, cfg))
    return [(r.passed, r.column, r.offending) for r in run_checks(cfg.data_quality_checks, cfg, m, data, NOW)]


def test_each_check_on_typed_columns() -> None:
    assert _one([{"accepted_values": {"amount": [1.5, 2]}}]) == [(True, None, 0)]  # NULL passes; decimals compare
    assert _one([{"accepted_values": {"amount": ["1.50"], "id": [1]}}]) == [(False, "amount", 1)]
    assert _one([{"accepted_values": {"id": ["x"]}}])[0][:2] == (False, "id")  # not an integer: said so
    assert _one([{"freshness": {"column": "at", "max_age": "2h"}}]) == [(True, None, 0)]
    assert _one([{"freshness": {"column": "day", "max_age": "1d"}}]) == [(True, None, 0)]
    assert _one([{"freshness": {"column": "at", "max_age": "30m"}}]) == [(False, "at", 4)]
    assert _one([{"null_check": {"columns": ["amount"], "max_null_percentage": 25}}]) == [(True, None, 0)]
    assert _one([{"null_check": {"columns": ["amount"]}}]) == [(False, "amount", 1)]
    assert _one([{"duplicate_check": {"columns": ["day", "amount"]}}]) == [(True, None, 0)]  # column by column
    assert _one([{"duplicate_check": {"columns": ["amount"]}}]) == [(False, "amount", 1)]
    assert _one(["duplicate_check"]) == [(True, None, 0)]
    assert _one([{"duplicate_check": {"columns": ["day"]}}]) == [(False, "day", 2)]
    assert _one([{"row_count_min": 4}, {"row_count_min": 5}]) == [(True, None, 0), (False, None, 1)]
    assert _one(["duplicate_check"], mode="changes") == [(True, None, 0)]  # the target judges a change batch


@pytest.mark.parametrize("bad,message", [
    (["row_count_min"], "row_count_min needs settings"),
    ([{"accepted_values": {"status": []}}], "lists no accepted value"),
    ([{"null_check": {"colums": ["a"]}}], "colums"),
    ([{"freshness": {"column": "a", "max_age": "0s"}}], "must be more than 0"),
    ([{"null_check": None, "duplicate_check": None}], "each check is a name"),
    ("null_check", "must be a list"),
])
def test_bad_settings_are_one_line(bad: object, message: str) -> None:
    with pytest.raises(Exception) as err:
        TableConfig(data_quality_checks=bad)
    assert message in str(err.value)
