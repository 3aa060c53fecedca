"""SCD type 2 load against the plain merge of the same batch (issue 14): a batch
of N changed rows loaded into a table of M rows by the plain merge, and into
a history of M current versions (scd_type: type_2), in one process, rounds
alternating which goes first. Each load is the loader's whole batch: staging
(COPY / Arrow scan), the move, the load record, COMMIT. Untimed set-up builds
both tables with SQL. Prints one JSON line per load and a summary line.

    python bench/scd2_load.py [--rows 2000000] [--changed 20000] [--repeat 3] [--targets postgres,duckdb]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from lakeshift.batch import BatchFile, Column, History, Manifest, new_batch_id  # noqa: E402
from lakeshift.config.models import ConnectionSettings, DuckDBTarget, PostgresTarget  # noqa: E402
from lakeshift.load import open_target  # noqa: E402

PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
SCHEMA = "bench_scd2"  # --schema
COLUMNS = [Column("id", "bigint(20)", "bigint", False, "int64", numeric_precision=19, numeric_scale=0),
           Column("name", "varchar(40)", "varchar", True, "string", char_max_length=40),
           Column("amount", "decimal(12,2)", "decimal", True, "decimal128(12, 2)", numeric_precision=12, numeric_scale=2),
           Column("updated_at", "datetime(6)", "datetime", True, "timestamp[us]", datetime_precision=6)]
HISTORY = History(("id",), ("name", "amount"), 0.1, False)
BASE = "id, 'name ' || id, CAST((id % 1000) AS DECIMAL(12,2)) / 10, TIMESTAMP '2026-01-01' + id * INTERVAL '1 second'"
HIST_COLS = ("TIMESTAMP '2026-01-01', CAST(NULL AS TIMESTAMP), TRUE, FALSE, md5(CAST(id AS VARCHAR))")


def create_sql(table: str, history: bool, rows: int, series: str, pg: bool) -> list[str]:
    ts = "timestamp(6)" if pg else "TIMESTAMP"
    cols = f'"id" BIGINT{"" if history else " PRIMARY KEY"}, "name" VARCHAR(40), "amount" DECIMAL(12,2), "updated_at" {ts}'
    if history:
        cols += (', "_lakeshift_valid_from" TIMESTAMP, "_lakeshift_valid_to" TIMESTAMP, '
                 '"_lakeshift_is_current" BOOLEAN, "_lakeshift_is_deleted" BOOLEAN, "_lakeshift_row_hash" VARCHAR(32)')
    out = [f'DROP TABLE IF EXISTS "{SCHEMA}"."{table}"', f'CREATE TABLE "{SCHEMA}"."{table}" ({cols})',
           f'INSERT INTO "{SCHEMA}"."{table}" SELECT {BASE}{", " + HIST_COLS if history else ""} FROM {series}']
    if history and pg:  # what the first SCD2 batch makes (load/strategies/history.py), made here untimed
        out.append(f'CREATE INDEX "{table}_lakeshift_cur" ON "{SCHEMA}"."{table}" ("id") WHERE "_lakeshift_is_current"')
    if pg:
        out.append(f'ANALYZE "{SCHEMA}"."{table}"')
    return out


def setup_postgres(rows: int) -> None:
    with psycopg.connect(PG_DSN, autocommit=True) as c:
        c.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
        c.execute(f'CREATE SCHEMA "{SCHEMA}"')
        for table, history in (("plain", False), ("hist", True)):
            for stmt in create_sql(table, history, rows, f"generate_series(1, {rows}) AS g(id)", pg=True):
                c.execute(stmt)


def setup_duckdb(path: Path, rows: int) -> None:
    import duckdb

    con = duckdb.connect(str(path))
    con.execute(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"')
    for table, history in (("plain", False), ("hist", True)):
        for stmt in create_sql(table, history, rows, f"range(1, {rows + 1}) AS g(id)", pg=False):
            con.execute(stmt)
    con.close()


def write_batch(folder: Path, rows: int, changed: int, rnd: int) -> tuple[Manifest, Path]:
    step = max(1, rows // changed)
    ids = list(range(1 + rnd, rows + 1, step))[:changed]
    at = datetime(2026, 6, 1) + timedelta(days=rnd)
    table = pa.table({"id": pa.array(ids, pa.int64()), "name": [f"changed {rnd} {i}" for i in ids],
                      "amount": pa.array([None] * len(ids), pa.decimal128(12, 2)),
                      "updated_at": pa.array([at] * len(ids), pa.timestamp("us"))})
    bid = new_batch_id()
    path = folder / f"{bid}.parquet"
    pq.write_table(table, path)
    m = Manifest(batch_id=bid, pipeline="bench", table="t", source_table="bench.t", strategy="hybrid", mode="merge",
                 columns=list(COLUMNS), primary_key=["id"], cursor_timestamp_column="updated_at",
                 files=[BatchFile(path.name, len(ids), path.stat().st_size)], rows=len(ids),
                 bytes=path.stat().st_size, created_at=datetime.now().isoformat())
    return m, path


def load(loader: Any, m: Manifest, path: Path, table: str) -> float:
    started = time.perf_counter()
    staged = loader.begin(m, table)
    staged.add_part(str(path), pafs.LocalFileSystem(), "file://" + str(path), m.files[0])
    result = staged.commit(m)
    elapsed = time.perf_counter() - started
    if result.status != "loaded":
        raise SystemExit(f"{table}: batch {m.batch_id} {result.status}")
    return elapsed


def bench(target: str, rows: int, changed: int, repeat: int, work: Path) -> dict[str, Any]:
    duck = work / "scd2.duckdb"
    started = time.perf_counter()
    if target == "postgres":
        setup_postgres(rows)
        model: Any = PostgresTarget(type="postgres", host="127.0.0.1", port=5432, database="test",
                                    username="postgres", schema=SCHEMA)
    else:
        duck.unlink(missing_ok=True)
        setup_duckdb(duck, rows)
        model = DuckDBTarget(type="duckdb", path=str(duck), schema=SCHEMA)
    print(f"[{target}] set-up {time.perf_counter() - started:.1f}s", file=sys.stderr, flush=True)
    loader = open_target(model, ConnectionSettings())
    loader.ensure_state_tables()
    ratios, times = [], {"merge": [], "scd2": []}
    try:
        for rnd in range(repeat):
            m, path = write_batch(work, rows, changed, rnd)
            hm = Manifest(**{**m.__dict__, "batch_id": m.batch_id + "h", "history": HISTORY})
            order = [("merge", m, "plain"), ("scd2", hm, "hist")]
            took = {}
            for kind, man, table in (order if rnd % 2 == 0 else order[::-1]):
                took[kind] = load(loader, man, path, table)
                times[kind].append(took[kind])
                print(json.dumps({"target": target, "round": rnd + 1, "kind": kind, "seconds": round(took[kind], 3)}),
                      flush=True)
            ratios.append(took["scd2"] / took["merge"])
    finally:
        loader.close()
    return {"target": target, "rows": rows, "changed": changed, "merge_median": statistics.median(times["merge"]),
            "scd2_median": statistics.median(times["scd2"]), "ratios": [round(r, 2) for r in ratios],
            "ratio_median": round(statistics.median(ratios), 2)}


def main() -> int:
    global SCHEMA
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--changed", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--targets", default="postgres,duckdb")
    ap.add_argument("--schema", default=SCHEMA, help="the PostgreSQL schema (dropped and made again)")
    args = ap.parse_args()
    SCHEMA = args.schema
    print(f"load average {os.getloadavg()}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="lakeshift-scd2-") as tmp:
        for target in args.targets.split(","):
            summary = bench(target, args.rows, args.changed, args.repeat, Path(tmp))
            print(json.dumps({"summary": summary}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
