"""The scale-out simulation of docs/scale-out.md: N small tables of one MariaDB
database loaded into PostgreSQL through `lakeshift.dagster` assets and Dagster's
multiprocess executor (one process per table step), at 1, 2 and 4 workers; then
4 workers under a source cap of 2 (the peak of concurrent steps is measured), and
a run where the worker of one table is SIGKILLed after its batch is in the lake,
re-executed from failure. Every run ends checked: target == source, every batch
loaded once.

    .venv-orchestrators/bin/python bench/scale_out.py --tables 16 --rows 500

Needs lakeshift[dagster]; MariaDB and PostgreSQL on 127.0.0.1 as in the tests."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pymysql
import yaml

PG = "host=127.0.0.1 port=5432 user=postgres dbname=test"
KILL_MARK = "LAKESHIFT_BENCH_KILL"  # file path: the first worker of table KILL_TABLE dies, then the file exists


def make_source(db: str, tables: int, rows: int) -> None:
    conn = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{db}`")
        cur.execute(f"USE `{db}`")
        for i in range(tables):
            cur.execute(f"CREATE TABLE t{i:03d} (id BIGINT PRIMARY KEY, v VARCHAR(40), updated_at DATETIME(6) NOT NULL,"
                        " KEY ix (updated_at, id))")
            cur.execute(f"INSERT INTO t{i:03d} SELECT seq, CONCAT('row ', seq), '2026-01-01' + INTERVAL seq SECOND "
                        f"FROM seq_1_to_{rows}")
    conn.close()


def make_config(root: Path, db: str, schema: str, tables: int, max_connections: int) -> Path:
    files = {
        "connections.yml": {"connections": {
            "sources": {"src": {"type": "mariadb", "host": "127.0.0.1", "port": 3306, "database": db,
                                "username": "root", "password": "",
                                "connection_pool": {"max_connections": max_connections}}},
            "targets": {"pg": {"type": "postgres", "host": "127.0.0.1", "port": 5432, "database": "test",
                               "username": "postgres", "schema": schema}},
            "storage": {"default": {"type": "local", "path": str(root / "lake")}}}},
        "pipelines/sim.yml": {
            "pipeline": {"name": "sim", "source": "src", "target": "pg"},
            "tables": {f"t{i:03d}": {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at",
                                     "cdc_id_column": "id"} for i in range(tables)}},
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(yaml.safe_dump(data, sort_keys=False))
    return root


DEFS = """
import os
import dagster as dg
import lakeshift.dagster as lsd
from lakeshift.dagster import lakeshift_assets, source_concurrency_limits

_sync = lsd.sync_tables

def _crashing_once(config, pipeline, tables, env=None, **kw):
    mark = os.environ.get("{kill}")
    if mark and not os.path.exists(mark) and list(tables) == [os.environ["LAKESHIFT_BENCH_KILL_TABLE"]]:
        open(mark, "w").close()  # this worker dies once, after its batch is in the lake (a crash, no cleanup)
        os.environ["LAKESHIFT_FAULT"] = "after_manifest"
    return _sync(config, pipeline, tables, env, **kw)

lsd.sync_tables = _crashing_once  # the simulation's fault injection only

def job():
    config, workers = os.environ["LAKESHIFT_BENCH_CONFIG"], int(os.environ["LAKESHIFT_BENCH_WORKERS"])
    executor = dg.multiprocess_executor.configured({{
        "max_concurrent": workers, "tag_concurrency_limits": source_concurrency_limits(config, "sim")}})
    return dg.Definitions(assets=lakeshift_assets(config, "sim"),
                          jobs=[dg.define_asset_job("all", executor_def=executor)]).resolve_job_def("all")
"""


def peak(instance: Any, run_id: str) -> int:
    marks = sorted((e.timestamp, 1 if e.dagster_event.event_type_value == "STEP_START" else -1)
                   for e in instance.all_logs(run_id) if e.dagster_event
                   and e.dagster_event.event_type_value in ("STEP_START", "STEP_SUCCESS", "STEP_FAILURE"))
    now = top = 0
    for _, step in marks:
        now += step
        top = max(top, now)
    return top


def check(db: str, schema: str, tables: int) -> None:
    """Target == source (count and key sum) and no batch loaded twice."""
    src = pymysql.connect(host="127.0.0.1", user="root", database=db)
    with src.cursor() as cur, psycopg.connect(PG) as pg:
        for i in range(tables):
            cur.execute(f"SELECT COUNT(*), SUM(id) FROM t{i:03d}")
            want = tuple(int(x) for x in cur.fetchone())
            got = tuple(int(x or 0) for x in pg.execute(f'SELECT COUNT(*), SUM(id) FROM "{schema}".t{i:03d}').fetchone())
            assert got == want, (i, got, want)
        dup = pg.execute(f'SELECT batch_id FROM "{schema}"._lakeshift_loads GROUP BY batch_id HAVING COUNT(*) > 1')
        assert not dup.fetchall()
    src.close()


def run(work: Path, db: str, tables: int, workers: int, cap: int, kill: str | None = None) -> dict[str, Any]:
    schema = f"ls_sim_{secrets.token_hex(3)}"
    folder = work / schema
    config = make_config(folder, db, schema, tables, cap)
    (folder / "defs.py").write_text(textwrap.dedent(DEFS.format(kill=KILL_MARK)))
    os.environ.update(LAKESHIFT_BENCH_CONFIG=str(config), LAKESHIFT_BENCH_WORKERS=str(workers))
    if kill:
        os.environ.update({KILL_MARK: str(folder / "killed"), "LAKESHIFT_BENCH_KILL_TABLE": kill})
    recon = dg.ReconstructableJob.for_file(str(folder / "defs.py"), "job") if hasattr(dg, "ReconstructableJob") \
        else __import__("dagster._core.definitions.reconstruct", fromlist=["x"]).ReconstructableJob.for_file(
            str(folder / "defs.py"), "job")
    (folder / "dagster").mkdir()
    out: dict[str, Any] = {"tables": tables, "workers": workers, "cap": cap}
    try:
        with dg.instance_for_test(temp_dir=str(folder / "dagster")) as instance:
            t0 = time.monotonic()
            with dg.execute_job(recon, instance=instance, raise_on_error=False) as result:
                out.update(seconds=round(time.monotonic() - t0, 1), success=result.success,
                           peak=peak(instance, result.run_id), failed=sorted(
                               e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"))
                run_id = result.run_id
            if kill:
                t1 = time.monotonic()
                opts = dg.ReexecutionOptions.from_failure(run_id, instance)
                with dg.execute_job(recon, instance=instance, reexecution_options=opts) as again:
                    out.update(retry_seconds=round(time.monotonic() - t1, 1), retry_success=again.success,
                               retried=sorted({e.step_key for e in again.all_events
                                               if e.event_type_value == "STEP_START"}))
        if out.get("retry_success", out["success"]):
            check(db, schema, tables)
            out["target_equals_source"] = True
        out["tables_per_minute"] = round(tables / out["seconds"] * 60, 1)
    finally:
        for key in (KILL_MARK, "LAKESHIFT_BENCH_KILL_TABLE"):
            os.environ.pop(key, None)
        with psycopg.connect(PG, autocommit=True) as pg:
            pg.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", type=int, default=16)
    ap.add_argument("--rows", type=int, default=500)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    db = f"ls_sim_{secrets.token_hex(3)}"
    make_source(db, args.tables, args.rows)
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="ls_sim_") as tmp:
            work = Path(tmp)
            for w in (int(x) for x in args.workers.split(",")):
                results.append(run(work, db, args.tables, w, cap=8))
                print(json.dumps(results[-1]), flush=True)
            results.append(run(work, db, args.tables, 4, cap=2))
            print(json.dumps(results[-1]), flush=True)
            results.append(run(work, db, args.tables, 4, cap=8, kill=f"t{args.tables // 2:03d}"))
            print(json.dumps(results[-1]), flush=True)
    finally:
        conn = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{db}`")
        conn.close()
    up = os.popen("uptime").read().strip()
    print(json.dumps({"uptime": up}))
    if args.out:
        args.out.write_text(json.dumps({"uptime": up, "runs": results}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
