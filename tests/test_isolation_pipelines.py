"""Issue 6, case 27: many pipelines at once, each with its own source (a MySQL
database of its own, every one with a table called `items`) and its own
target (PostgreSQL schemas, DuckDB files, two pipelines in one schema under
different table names, two in one DuckDB file under different schemas), all
through one lake root (a local folder, and one S3 bucket for some), run as
parallel processes twice with changes in between. No pipeline may touch
another's lake files, watermarks, load records or tables."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import MYSQL, mysql_connect, unique
from kit.checks import assert_mirrors
from kit.cli import start_sync
from kit.lake import table_lake
from kit.source import HYBRID, change_items, create_items
from kit.targets import Target, duck_target, pg_target

pytestmark = pytest.mark.slow  # pipelines in concurrent CLI subprocesses

N_PIPELINES = 7


@pytest.fixture
def databases() -> Iterator[list[str]]:
    names = [unique(f"ls_iso{i}") for i in range(1, N_PIPELINES + 1)]
    with mysql_connect() as conn, conn.cursor() as cur:
        for n in names:
            cur.execute(f"CREATE DATABASE `{n}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    try:
        yield names
    finally:
        with mysql_connect() as conn, conn.cursor() as cur:
            for n in names:
                cur.execute(f"DROP DATABASE IF EXISTS `{n}`")


@pytest.fixture
def schemas(pg: Any) -> Iterator[list[str]]:
    names = [unique("ls_iso") for _ in range(3)]
    try:
        yield names
    finally:
        for n in names:
            pg.execute(f'DROP SCHEMA IF EXISTS "{n}" CASCADE')


def plan(databases: list[str], schemas: list[str], tmp_path: Path) -> list[dict[str, Any]]:
    """pipeline -> (database, target, target table, storage)."""
    duck_a, duck_b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    targets = [pg_target(schemas[0]), pg_target(schemas[1]), pg_target(schemas[2]),
               duck_target(duck_a, "lake"), duck_target(duck_b, "lake"), duck_target(duck_a, "other"),
               pg_target(schemas[0])]  # p7: the same schema as p1, another table
    out = []
    for i, (db, target) in enumerate(zip(databases, targets), 1):
        out.append({"name": f"p{i}", "db": db, "target": target, "table": "items_p7" if i == 7 else "items",
                    "storage": "s3" if i in (2, 5) else "default", "rows": 300 + 97 * i})
    return out


def write_config(root: Path, pipelines: list[dict[str, Any]], lake: Path, s3: dict[str, Any]) -> Path:
    conns = {
        "connections": {
            "sources": {f"src_{p['name']}": {"type": "mysql", "host": MYSQL["host"], "port": MYSQL["port"],
                                             "database": p["db"], "username": MYSQL["user"],
                                             "password": "${TEST_MYSQL_PASSWORD:-}"} for p in pipelines},
            "targets": {f"dst_{p['name']}": p["target"].config for p in pipelines},
            "storage": {"default": {"type": "local", "path": str(lake)}, "s3": s3},
        },
        "connection_settings": {"connection_retry_delay": 0.1, "default_timeout": 60},
    }
    (root / "pipelines").mkdir(parents=True)
    (root / "connections.yml").write_text(yaml.safe_dump(conns, sort_keys=False))
    for p in pipelines:
        table = {**HYBRID, "target_name": p["table"], "processing": {"batch_size": 64}}
        doc = {"pipeline": {"name": p["name"], "source": f"src_{p['name']}", "target": f"dst_{p['name']}",
                            "s3": {"storage": p["storage"], "max_file_rows": 150}},
               "tables": {"items": table}}
        (root / "pipelines" / f"{p['name']}.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return root


def run_all(config: Path, pipelines: list[dict[str, Any]]) -> None:
    procs = [(p["name"], start_sync(config, p["name"])) for p in pipelines]
    failures = []
    for name, proc in procs:
        try:
            out, err = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate(timeout=30)
        if proc.returncode != 0:
            failures.append(f"{name}: exit {proc.returncode}\n{out}\n{err}")
    assert failures == [], "\n".join(failures)


def newest_cursor(db: str) -> tuple[dt.datetime, int]:
    with mysql_connect(db, init_command="SET time_zone = '+00:00'") as conn, conn.cursor() as cur:
        cur.execute("SELECT updated_at, id FROM items ORDER BY updated_at DESC, id DESC LIMIT 1")
        ts, ident = cur.fetchone()
    return ts, int(ident)


def check(pipelines: list[dict[str, Any]], storages: dict[str, dict[str, Any]], lake: Path) -> None:
    for p in pipelines:
        target: Target = p["target"]
        assert_mirrors(target, p["db"], table=p["table"], source_table="items")
        tl = table_lake(storages[p["storage"]], p["name"], "items")
        manifests = tl.manifests()
        assert manifests and {m.pipeline for m in manifests} == {p["name"]}
        assert {m.source_table for m in manifests} == {f"{p['db']}.items"}
        files = tl.files()
        named = {f.path for m in manifests for f in m.files}
        assert {f.path for f in files if f.path.endswith(".parquet")} == named  # no file of another pipeline
        state = json.loads(tl.lake.read_bytes(tl.rel("_state/watermark.json")))
        assert state["batch_id"] == manifests[-1].batch_id
        ts, ident = newest_cursor(p["db"])  # the watermark is this pipeline's own source position
        assert dt.datetime.fromisoformat(state["watermark"]["timestamp"]).replace(tzinfo=None) == ts
        assert state["watermark"]["id"] == ident
        loads = target.loads(p["name"], "items")
        assert sorted(b for b, _ in loads) == [m.batch_id for m in manifests]
        assert sum(r for _, r in loads) == sum(m.rows for m in manifests)
    # the local lake root holds one folder per local pipeline and nothing else
    local = sorted(p["name"] for p in pipelines if p["storage"] == "default")
    assert sorted(x.name for x in lake.iterdir()) == local
    # p1 and p7 share a schema: their tables and their load records are apart
    p1, p7 = pipelines[0], pipelines[6]
    assert p1["target"].schema == p7["target"].schema
    assert {b for b, _ in p1["target"].loads("p1", "items")}.isdisjoint({b for b, _ in p7["target"].loads("p7", "items")})


def test_parallel_pipelines_stay_apart(databases: list[str], schemas: list[str], tmp_path: Path,
                                       s3_storage: dict[str, Any]) -> None:
    pipelines = plan(databases, schemas, tmp_path)
    for p in pipelines:
        with mysql_connect(p["db"], init_command="SET time_zone = '+00:00'") as conn:
            create_items(conn, p["rows"], name=f"{p['name']} row")
    lake = tmp_path / "lake"
    config = write_config(tmp_path / "config", pipelines, lake, s3_storage)
    storages = {"default": {"type": "local", "path": str(lake)}, "s3": s3_storage}

    run_all(config, pipelines)
    check(pipelines, storages, lake)

    for i, p in enumerate(pipelines, 1):  # each source changes in its own way
        with mysql_connect(p["db"], init_command="SET time_zone = '+00:00'") as conn:
            change_items(conn, i, inserts=10 * i, updates=(i, 2 * i, 3 * i))
    run_all(config, pipelines)
    check(pipelines, storages, lake)

    # nothing left: a third round loads nothing anywhere
    run_all(config, pipelines)
    for p in pipelines:
        assert len(p["target"].loads(p["name"], "items")) == 2
