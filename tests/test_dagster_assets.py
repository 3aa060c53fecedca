"""lakeshift[dagster]: one asset per table, materialized by Dagster in process
and with its multiprocess executor into PostgreSQL and DuckDB; a subset runs
only itself; a failing table fails its asset and skips its dependents while the
others succeed; a second materialization loads only the changes; two concurrent
materializations of one table are serialised by lakeshift's locks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

if os.environ.get("LAKESHIFT_TEST_EXTRAS"):
    import dagster  # noqa: F401  # scripts/test.sh's extras stage: never skipped there
dg = pytest.importorskip("dagster")

from kit.checks import assert_loaded_once, assert_mirrors  # noqa: E402
from kit.lake import local_storage, part_files  # noqa: E402
from kit.source import insert_items  # noqa: E402
from kit.targets import duck_target, pg_target  # noqa: E402
from lakeshift.dagster import SOURCE_TAG, lakeshift_assets, pool_name, source_concurrency_limits  # noqa: E402
from orch_kit import DEPS, ROWS, assert_all_mirrored, five_tables  # noqa: E402

pytestmark = pytest.mark.slow


def key(*parts: str) -> Any:
    return dg.AssetKey(list(parts))


def materialized(result: Any) -> dict[str, dict[str, Any]]:
    """Table -> metadata (plain values) of every materialization of the run."""
    out = {}
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        out[mat.asset_key.path[-1]] = {k: v.value for k, v in mat.metadata.items()}
    return out


def test_definitions_mirror_the_yaml_and_touch_no_database(tmp_path: Path) -> None:
    from kit.config import build_config
    from kit.source import HYBRID

    tables = {n: {**HYBRID, "depends_on": d} for n, d in DEPS.items()}
    tables["e"]["full_name"] = "shop.e"
    config = build_config(tmp_path / "config", "no_such_db", {"type": "postgres", "host": "192.0.2.1", "port": 1,
                          "database": "x", "username": "x"}, local_storage(tmp_path / "lake"), tables)
    defs = lakeshift_assets(config, "p1", key_prefix=["lake"])
    assets = {a.key: a for a in defs if isinstance(a, dg.AssetsDefinition)}
    sources = {s.key for s in defs if isinstance(s, dg.AssetSpec)}
    assert set(assets) == {key("lake", "p1", n) for n in DEPS}
    assert sources == {key("lake", "src", n) for n in "abcd"} | {key("lake", "src", "shop", "e")}
    for name, deps in DEPS.items():
        a = assets[key("lake", "p1", name)]
        src = key("lake", "src", *(["shop", "e"] if name == "e" else [name]))
        assert set(a.asset_deps[a.key]) == {src, *(key("lake", "p1", d) for d in deps)}
        assert a.op.pool == pool_name("src") and a.op.tags[SOURCE_TAG] == "src"
    assert source_concurrency_limits(config, "p1") == [{"key": SOURCE_TAG, "value": "src", "limit": 5}]
    dg.Definitions(assets=defs).resolve_asset_graph()  # a valid code location


def test_materialize_subset_changes_and_a_failure(mysql: Any, mysql_db: str, tmp_path: Path,
                                                  pg_schema: str) -> None:
    """In process, into PostgreSQL (the multiprocess test below loads DuckDB)."""
    target = pg_target(pg_schema)
    storage = local_storage(tmp_path / "lake")
    config = five_tables(mysql, mysql_db, tmp_path / "config", target, storage)
    assets = lakeshift_assets(config, "p1")
    instance = dg.DagsterInstance.ephemeral()

    first = dg.materialize(assets, selection=["p1/e"], instance=instance)  # a subset: e only
    assert first.success and set(materialized(first)) == {"e"} and not target.exists("a")

    full = dg.materialize(assets, instance=instance)
    meta = materialized(full)
    assert full.success and set(meta) == set(DEPS)
    for name, n in ROWS.items():
        m = meta[name]
        want = 0 if name == "e" else n
        assert (m["rows_extracted"], m["rows_loaded"], m["rows_deleted"]) == (want, want, 0), (name, m)
        assert m["seconds"] >= 0 and len(m["batches_loaded"]) == (0 if name == "e" else 1)
    assert meta["a"]["watermark"]["id"] == 40 and meta["e"]["watermark"] == "unchanged"
    assert_all_mirrored(target, mysql_db, storage)

    insert_items(mysql, 4, table="b")
    with mysql.cursor() as cur:
        cur.execute("DROP TABLE c")  # c fails: d (after b and c) is skipped, a, b and e succeed
    broken = dg.materialize(assets, instance=instance, raise_on_error=False)
    meta = materialized(broken)
    assert not broken.success and set(meta) == {"a", "b", "e"}
    assert meta["b"]["rows_loaded"] == 4 and meta["a"]["rows_loaded"] == 0 == meta["e"]["rows_loaded"]
    failed = {e.step_key: e for e in broken.all_events if e.event_type_value == "STEP_FAILURE"}
    started = {e.step_key for e in broken.all_events if e.event_type_value == "STEP_START"}
    assert set(failed) == {"p1__c"} and started == {"p1__a", "p1__b", "p1__c", "p1__e"}  # d never ran
    text = failed["p1__c"].step_failure_data.user_failure_data.description
    assert text.startswith("c: ") and "\n" not in text and f"{mysql_db}.c does not exist" in text, text
    for name in "abe":
        assert_mirrors(target, mysql_db, table=name)
        assert_loaded_once(target, storage, table=name)


def max_overlap(instance: Any, run_id: str) -> int:
    """The most table steps of the run running at once (from its event log)."""
    ends = ("STEP_SUCCESS", "STEP_FAILURE")
    marks = sorted((e.timestamp, 1 if e.dagster_event.event_type_value == "STEP_START" else -1)
                   for e in instance.all_logs(run_id) if e.dagster_event
                   and e.dagster_event.event_type_value in ("STEP_START", *ends))
    running = peak = 0
    for _, step in marks:
        running += step
        peak = max(peak, running)
    return peak


def _write_defs_module(folder: Path, config: Path, max_connections: int) -> Path:
    path = folder / "lakeshift_defs.py"
    path.write_text(textwrap.dedent(f"""
        import dagster as dg
        from lakeshift.dagster import lakeshift_assets, source_concurrency_limits

        def job():
            assets = lakeshift_assets({str(config)!r}, "p1")
            executor = dg.multiprocess_executor.configured({{
                "max_concurrent": 4,
                "tag_concurrency_limits": source_concurrency_limits({str(config)!r}, "p1")}})
            return dg.Definitions(assets=assets, jobs=[dg.define_asset_job("all", executor_def=executor)]
                                  ).resolve_job_def("all")
        """))
    return path


def test_multiprocess_executor_runs_every_table_in_its_own_process(mysql: Any, mysql_db: str, tmp_path: Path) -> None:
    target = duck_target(tmp_path / "t.duckdb")
    storage = local_storage(tmp_path / "lake")
    config = five_tables(mysql, mysql_db, tmp_path / "config", target, storage, max_connections=2)
    module = _write_defs_module(tmp_path, config, 2)
    recon = dg.ReconstructableJob.for_file(str(module), "job") if hasattr(dg, "ReconstructableJob") else None
    if recon is None:
        from dagster._core.definitions.reconstruct import ReconstructableJob

        recon = ReconstructableJob.for_file(str(module), "job")
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        result = dg.execute_job(recon, instance=instance)
        assert result.success
        pids = {e.pid for e in result.all_events if e.event_type_value == "STEP_START"}
        assert len(pids) == 5  # one process per table step
        assert max_overlap(instance, result.run_id) <= 2  # b, c and e could run together: the source's cap holds
        assert set(materialized(result)) == set(DEPS)
    assert_all_mirrored(target, mysql_db, storage)


MATERIALIZE_ONE = """
import sys, dagster as dg
from lakeshift.dagster import lakeshift_assets
result = dg.materialize(lakeshift_assets(sys.argv[1], "p1"), selection=["p1/items"], raise_on_error=False)
sys.exit(0 if result.success else 3)
"""


def test_two_materializations_of_one_table_are_serialised_by_the_locks(mysql: Any, mysql_db: str,
                                                                       tmp_path: Path) -> None:
    from kit.cli import running
    from kit.config import build_config
    from kit.source import HYBRID, create_items
    from kit.wait import wait_for

    target = duck_target(tmp_path / "t.duckdb")
    storage = local_storage(tmp_path / "lake")
    create_items(mysql, 20_000)
    config = build_config(tmp_path / "config", mysql_db, target.config, storage,
                          {"items": {**HYBRID, "processing": {"batch_size": 200}}}, s3={"max_file_rows": 1000})
    first = subprocess.Popen([sys.executable, "-c", MATERIALIZE_ONE, str(config)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    with running(first):
        wait_for(lambda: part_files(storage), "the first materialization's first part", proc=first, delay=0.005,
                 attempts=24000)
        first.send_signal(signal.SIGSTOP)  # frozen mid-extract, holding the table's extract lock
        try:
            second = dg.materialize(lakeshift_assets(config, "p1"), raise_on_error=False)
        finally:
            first.send_signal(signal.SIGCONT)
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-3000:]
    (failure,) = [e for e in second.all_events if e.event_type_value == "STEP_FAILURE"]
    text = failure.step_failure_data.user_failure_data.description
    assert text.startswith("items: ") and "another lakeshift run" in text and "\n" not in text, text
    assert_mirrors(target, mysql_db)
    assert_loaded_once(target, storage)
