"""The library entry point orchestrators call (engine/sync_api.py): the
pipeline's graph from the YAML alone, `sync_tables` = `sync pipeline -p P -t T`
with batch ids and watermark in its result, and a base install that never
imports Dagster or Airflow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kit.lake import local_storage, manifest_ids
from kit.source import insert_items
from kit.targets import duck_target
from lakeshift.engine.sync_api import TableFailed, pipeline_graph, raise_for_failures, sync_tables
from lakeshift.errors import ConfigError
from orch_kit import DEPS, assert_all_mirrored, five_tables

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

BASE_IMPORTS = r"""
import importlib, pkgutil, sys
import lakeshift
skipped = {"lakeshift.dagster", "lakeshift.airflow", "lakeshift.__main__"}
names = [m.name for m in pkgutil.walk_packages(lakeshift.__path__, "lakeshift.") if m.name not in skipped]
for name in names:
    importlib.import_module(name)
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"dagster", "airflow", "dagster_shared"})
print(len(names), ",".join(heavy) or "-")
"""


def test_every_base_module_imports_without_dagster_or_airflow() -> None:
    out = subprocess.run([sys.executable, "-c", BASE_IMPORTS], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    count, heavy = out.stdout.split()
    assert int(count) > 50 and heavy == "-", out.stdout


def test_the_graph_comes_from_the_yaml_alone_with_unset_secrets_and_unreachable_hosts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("SALES_DB_USER", "SALES_DB_PASS"):
        monkeypatch.delenv(var, raising=False)
    graph = pipeline_graph(EXAMPLES / "config", "sales_pipeline")
    assert (graph.key, graph.source, graph.source_max_connections) == ("sales_pipeline", "sales_mysql", 10)
    names = [t.name for t in graph.tables]
    for t in graph.tables:  # dependency order
        assert all(names.index(d) < names.index(t.name) for d in t.depends_on)
    with pytest.raises(ConfigError, match="unknown pipeline 'nope'"):
        pipeline_graph(EXAMPLES / "config", "nope")


def test_sync_tables_is_sync_pipeline_and_reports_batch_ids_and_watermark(mysql: Any, mysql_db: str,
                                                                          tmp_path: Path) -> None:
    target = duck_target(tmp_path / "t.duckdb")
    storage = local_storage(tmp_path / "lake")
    config = five_tables(mysql, mysql_db, tmp_path / "config", target, storage)
    assert {t.name: list(t.depends_on) for t in pipeline_graph(config, "p1").tables} == DEPS
    report = sync_tables(config, "p1", ["a", "e"])
    assert report.ok and [o.name for o in report.outcomes] == ["a", "e"]
    a = report.outcomes[0].result
    assert a is not None and a.batches_written_ids == manifest_ids(storage, table="a") == a.batches_loaded_ids
    assert a.rows_extracted == a.rows_loaded == 40 and a.watermark and a.watermark["id"] == 40
    insert_items(mysql, 3, table="a")
    again = sync_tables(config, "p1", ["a"]).outcomes[0].result
    assert again is not None and again.rows_loaded == 3 and again.batches_loaded_ids == manifest_ids(storage, table="a")[1:]
    assert sync_tables(config, "p1").ok
    assert_all_mirrored(target, mysql_db, storage)


def test_a_failed_table_is_one_line_naming_it_and_skips_its_dependents(mysql: Any, mysql_db: str,
                                                                        tmp_path: Path) -> None:
    target = duck_target(tmp_path / "t.duckdb")
    storage = local_storage(tmp_path / "lake")
    config = five_tables(mysql, mysql_db, tmp_path / "config", target, storage)
    with mysql.cursor() as cur:
        cur.execute("DROP TABLE b")
    report = sync_tables(config, "p1")
    status = {o.name: o.status for o in report.outcomes}
    assert status == {"a": "ok", "b": "failed", "c": "ok", "d": "skipped", "e": "ok"}
    with pytest.raises(TableFailed) as err:
        raise_for_failures(report)
    assert "\n" not in str(err.value) and str(err.value).startswith("b: ") and "d: skipped because b" in str(err.value)
