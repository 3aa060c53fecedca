"""What a sync will do, decided before anything connects: the tables in
dependency order with their resolved settings, the stages, and the refusals
(--limit on a snapshot, no tables, exclusive flags). Pure: config files only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import write_config
from lakeshift.config import load_config
from lakeshift.engine.plan import Plan, Stages, build_plan
from lakeshift.errors import ConfigError

CONNECTIONS = {"connections": {
    "sources": {"src": {"host": "db", "database": "shop", "username": "u"}},
    "targets": {"dst": {"type": "duckdb", "path": "./w.duckdb"}},
    "storage": {"lake": {"type": "local", "path": "./lake"}}}}
HYBRID = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id"}


def plan(tmp_path: Path, tables: dict[str, Any], selected: list[str], stages: Stages = Stages(),
         limit: int | None = None, **pipeline: Any) -> Plan:
    body = {"pipeline": {"source": "src", "target": "dst", **pipeline}, "tables": tables}
    config = load_config(write_config(tmp_path / "config", {"connections.yml": CONNECTIONS, "pipelines/p.yml": body}),
                         environ={})
    return build_plan(config, config.pipeline("p"), selected, stages, limit)


def test_tables_come_in_dependency_order_with_their_resolved_settings(tmp_path: Path) -> None:
    tables = {"lines": {**HYBRID, "depends_on": ["orders", "products"]},
              "orders": {**HYBRID, "full_name": "sales.orders_v2", "processing": {"batch_size": 500}},
              "products": {"cdc_strategy": "full_sync", "target_name": "dim_products"}}
    p = plan(tmp_path, tables, ["lines", "products", "orders"], processing={"batch_size": 2000})
    assert [t.name for t in p.tables][-1] == "lines" and {t.name for t in p.tables} == set(tables)
    by = {t.name: t for t in p.tables}
    assert (by["orders"].source_table, by["orders"].target_table, by["orders"].batch_size) == \
        ("sales.orders_v2", "orders_v2", 500)
    assert (by["products"].source_table, by["products"].target_table, by["products"].batch_size) == \
        ("products", "dim_products", 2000)
    assert by["lines"].depends_on == ("orders", "products")


def test_a_dependency_not_selected_is_not_waited_for(tmp_path: Path) -> None:
    tables = {"lines": {**HYBRID, "depends_on": ["orders"]}, "orders": HYBRID}
    p = plan(tmp_path, tables, ["lines", "lines"])
    assert [(t.name, t.depends_on) for t in p.tables] == [("lines", ())]  # selected once, runs alone


def test_parallel_only_with_more_than_one_table(tmp_path: Path) -> None:
    tables = {"a": HYBRID, "b": HYBRID}
    assert plan(tmp_path / "1", tables, ["a", "b"], processing={"strategy": "parallel"}).parallel
    assert not plan(tmp_path / "2", tables, ["a"], processing={"strategy": "parallel"}).parallel
    assert not plan(tmp_path / "3", tables, ["a", "b"], processing={"strategy": "sequential"}).parallel


def test_no_table_selected_names_the_pipelines_tables(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^no tables selected; pass -t TABLE \(tables of p: a, b\) or --all$"):
        plan(tmp_path, {"a": HYBRID, "b": HYBRID}, [])


def test_a_limit_on_a_snapshot_is_refused_unless_only_backed_up(tmp_path: Path) -> None:
    tables = {"a": HYBRID, "snap": {"cdc_strategy": "full_sync"}}
    with pytest.raises(ConfigError, match=r"^--limit 10 on full_sync table p.snap would replace the whole target "
                                          r"table with 10 row\(s\); nothing was run"):
        plan(tmp_path / "1", tables, ["a", "snap"], limit=10)
    sample = plan(tmp_path / "2", tables, ["a", "snap"], Stages.from_flags(backup_only=True, load_only=False), limit=10)
    assert sample.limit == 10 and sample.stages == Stages(extract=True, load=False)
    assert plan(tmp_path / "3", tables, ["a"], limit=10).limit == 10  # incremental batches may be limited


@pytest.mark.parametrize("limit", [0, -5])
def test_a_limit_must_be_positive(tmp_path: Path, limit: int) -> None:
    with pytest.raises(ConfigError, match=rf"^--limit must be a positive number of rows \(got {limit}\)$"):
        plan(tmp_path, {"a": HYBRID}, ["a"], limit=limit)


def test_the_stages_follow_the_flags_and_exclude_each_other() -> None:
    assert Stages.from_flags(backup_only=False, load_only=False) == Stages(extract=True, load=True)
    assert Stages.from_flags(backup_only=True, load_only=False) == Stages(extract=True, load=False)
    assert Stages.from_flags(backup_only=False, load_only=True) == Stages(extract=False, load=True)
    with pytest.raises(ConfigError, match="--backup-only and --redshift-only/--load-only exclude each other"):
        Stages.from_flags(backup_only=True, load_only=True)


@pytest.mark.parametrize("strategies, children", [(["binlog", "binlog"], 0), (["binlog", "full_sync"], 1)])
def test_a_run_starts_a_connectorx_child_ahead_only_when_a_table_reads_with_it(
        tmp_path: Path, strategies: list[str], children: int) -> None:
    """A binlog change read never uses one: a --follow cycle (a run) of binlog tables starts none,
    where it used to start and stop one per cycle (docs/benchmarks.md, issue 13's --follow)."""
    import psutil

    from lakeshift.engine.runner import RunContext

    tables = {f"t{i}": {"cdc_strategy": s} for i, s in enumerate(strategies)}
    ctx = RunContext(plan(tmp_path, tables, list(tables)))
    before = {p.pid for p in psutil.Process().children()}
    try:
        ctx.reader()
        started = [p for p in psutil.Process().children() if p.pid not in before]
        assert [p.cmdline()[-1].endswith("worker.py") for p in started] == [True] * children
    finally:
        ctx.close()
