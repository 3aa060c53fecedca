"""Issue 6, case 26: a multi-million-row table synced end to end with flat
memory, and source count == manifest count == target count.

    .venv/bin/python bench/reliability_memory.py [--rows 5000000] [--targets postgres,duckdb]
                                                 [--strategy full_sync|hybrid] [--keep]

The data comes from the benchmark's generator (bench/run.py: MariaDB's
SEQUENCE engine, no row through Python) into a database of this script's own
(`lakeshift_reliability_<size>`), and a quarter of the rows into
`lakeshift_reliability_<size>_quarter` (`--limit` cannot be used: it never
shrinks a full_sync target). For each target the script syncs twice, each
run its own process - first the quarter table, then the whole one, each into
an empty target and lake - and samples the resident memory
of the process tree every 50 ms. Flat memory means the peak does not grow with
the number of rows: the report gives both peaks and their ratio, with the
sampled curve in quartiles of the run. After each full run it counts the rows
in MySQL, in the batch manifests and in the target (and in the load record),
and compares SUM(id) and SUM(amount) as a cheap checksum of every row.

Not a test: it takes minutes and its numbers depend on the machine. The report
goes to bench/results/<date>-reliability-<size>.md (and is printed)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import psutil
import psycopg
import yaml

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT / "src"))

from run import PG_DSN, generate, mysql  # noqa: E402  (the benchmark's generator)


def short(n: int) -> str:
    return f"{n // 1_000_000}m" if n % 1_000_000 == 0 else f"{n // 1000}k"


def sample_run(argv: list[str], log: Path, cwd: Path) -> dict[str, Any]:
    """Run argv; RSS of its process tree every 50 ms (MB), wall time, exit code."""
    log.parent.mkdir(parents=True, exist_ok=True)
    samples: list[float] = []
    with open(log, "wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, stdin=subprocess.DEVNULL)
        root = psutil.Process(proc.pid)
        usage = None
        while True:
            rss = 0
            try:
                for p in [root] + root.children(recursive=True):
                    try:
                        rss += p.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                pass
            if rss:
                samples.append(rss / 2**20)
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.05)
        wall = time.perf_counter() - started
    rc = os.waitstatus_to_exitcode(status)
    peak = max(max(samples, default=0.0), usage.ru_maxrss / 1024 if usage else 0.0)
    n = len(samples)
    quartiles = [max(samples[int(n * q / 4):max(int(n * (q + 1) / 4), int(n * q / 4) + 1)], default=0.0)
                 for q in range(4)] if n else []
    return {"wall": wall, "rc": rc, "peak_mb": peak, "quartile_peaks_mb": quartiles, "samples": n, "log": str(log)}


def write_config(work: Path, db: str, target: str, schema: str, strategy: str, batch_size: int | None) -> Path:
    cfg = work / "config"
    shutil.rmtree(cfg, ignore_errors=True)
    (cfg / "pipelines").mkdir(parents=True)
    if target == "postgres":
        tgt: dict[str, Any] = {"type": "postgres", "host": "127.0.0.1", "port": 5432, "database": "test",
                               "username": "postgres", "schema": schema}
    else:
        tgt = {"type": "duckdb", "path": str(work / "target.duckdb"), "schema": schema}
    conns = {"connections": {
        "sources": {"src": {"type": "mysql", "host": "127.0.0.1", "port": 3306, "database": db, "username": "root",
                            "password": ""}},
        "targets": {"dst": tgt},
        "storage": {"default": {"type": "local", "path": str(work / "lake")}}}}
    (cfg / "connections.yml").write_text(yaml.safe_dump(conns, sort_keys=False))
    table: dict[str, Any] = {"cdc_strategy": strategy}
    if batch_size:
        table["processing"] = {"batch_size": batch_size}
    if strategy == "hybrid":
        table.update(cdc_timestamp_column="updated_at", cdc_id_column="id")
    doc = {"pipeline": {"name": "reliability", "source": "src", "target": "dst"}, "tables": {"orders": table}}
    (cfg / "pipelines" / "reliability.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return cfg


def reset_target(work: Path, target: str, schema: str) -> None:
    shutil.rmtree(work / "lake", ignore_errors=True)
    if target == "postgres":
        with psycopg.connect(PG_DSN, autocommit=True) as c:
            c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    else:
        for p in work.glob("target.duckdb*"):
            shutil.rmtree(p) if p.is_dir() else p.unlink()


def counts(db: str, work: Path, target: str, schema: str) -> dict[str, Any]:
    with mysql(db) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*), SUM(id), SUM(amount) FROM orders")
        src = cur.fetchone()
    from lakeshift.config.models import LocalStorage
    from lakeshift.lake import Lake, TableLake

    manifests = TableLake(Lake(LocalStorage(type="local", path=str(work / "lake"))), "reliability", "orders").manifests()
    sql = (f'SELECT COUNT(*), SUM(id), SUM(amount) FROM "{schema}"."orders"',
           f'SELECT SUM("rows"), COUNT(*) FROM "{schema}"."_lakeshift_loads"')
    if target == "postgres":
        with psycopg.connect(PG_DSN) as c:
            tgt, loads = c.execute(sql[0]).fetchone(), c.execute(sql[1]).fetchone()
    else:
        c = duckdb.connect(str(work / "target.duckdb"), read_only=True)
        try:
            tgt, loads = c.execute(sql[0]).fetchone(), c.execute(sql[1]).fetchone()
        finally:
            c.close()
    return {"source": int(src[0]), "source_sum_id": int(src[1]), "source_sum_amount": str(Decimal(src[2])),
            "manifests": len(manifests), "manifest_rows": sum(m.rows for m in manifests),
            "manifest_files": sum(len(m.files) for m in manifests),
            "target": int(tgt[0]), "target_sum_id": int(tgt[1]), "target_sum_amount": str(Decimal(tgt[2])),
            "load_record_rows": int(loads[0] or 0), "load_records": int(loads[1])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--targets", default="postgres,duckdb")
    ap.add_argument("--strategy", choices=["full_sync", "hybrid"], default="full_sync")
    ap.add_argument("--batch-size", type=int, default=None,
                    help="rows per source page (processing.batch_size; default: lakeshift's)")
    ap.add_argument("--keep", action="store_true", help="keep the target schema/file and the lake afterwards")
    args = ap.parse_args(argv)
    label = short(args.rows)
    db = f"lakeshift_reliability_{label}"
    work = BENCH / ".work" / f"reliability-{label}"
    work.mkdir(parents=True, exist_ok=True)
    log = lambda m: print(f"[reliability {time.strftime('%H:%M:%S')}] {m}", flush=True)  # noqa: E731
    log(f"{args.rows:,} rows, {args.strategy}, batch_size {args.batch_size or 'default'}, machine {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.2f}")
    generate(db, args.rows, 1, log)
    quarter_db = f"{db}_quarter"
    generate(quarter_db, args.rows // 4, 1, log)
    results: dict[str, Any] = {}
    for target in args.targets.split(","):
        schema = f"reliability_{label}"
        runs = {}
        for name, source_db, rows in (("quarter", quarter_db, args.rows // 4), ("full", db, args.rows)):
            reset_target(work, target, schema)
            cfg = write_config(work, source_db, target, schema, args.strategy, args.batch_size)
            argv = [sys.executable, "-m", "lakeshift", "--config-dir", str(cfg), "--quiet", "sync", "pipeline",
                    "-p", "reliability", "-t", "orders"]
            r = sample_run(argv, work / "logs" / f"{target}-{name}.log", work)
            log(f"{target} {name} ({rows:,} rows): exit {r['rc']}, {r['wall']:.1f}s, peak RSS {r['peak_mb']:.0f} MB, "
                f"quartile peaks {[round(q) for q in r['quartile_peaks_mb']]} MB")
            if r["rc"] != 0:
                log("FAILED:\n" + Path(r["log"]).read_text()[-3000:])
            runs[name] = {**r, "rows": rows}
        c = counts(db, work, target, schema) if runs["full"]["rc"] == 0 else {}
        if c:
            equal = (c["source"] == c["manifest_rows"] == c["target"] == c["load_record_rows"]
                     and c["source_sum_id"] == c["target_sum_id"]
                     and Decimal(c["source_sum_amount"]) == Decimal(c["target_sum_amount"]))
            c["all_equal"] = equal
            log(f"{target} counts: source {c['source']:,} = manifests {c['manifest_rows']:,} "
                f"({c['manifests']} batch, {c['manifest_files']} files) = target {c['target']:,} "
                f"= load record {c['load_record_rows']:,}; SUM(id), SUM(amount) equal: {equal}")
        results[target] = {"runs": runs, "counts": c}
        if not args.keep:
            reset_target(work, target, schema)
    report = render(args, db, results)
    out = BENCH / "results" / f"{datetime.now(timezone.utc):%Y-%m-%d}-reliability-{label}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1, default=str))
    print(report)
    log(f"report: {out}")
    ok = all(r["counts"].get("all_equal") for r in results.values())
    return 0 if ok else 1


def render(args: argparse.Namespace, db: str, results: dict[str, Any]) -> str:
    lines = [f"# lakeshift reliability: {args.rows:,} rows end to end ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC)",
             "", f"`{db}.orders`, {args.strategy}, batch_size {args.batch_size or 'default'}; each run its own process, "
             f"RSS of the process tree sampled every 50 ms. Machine: {os.cpu_count()} cores, Python "
             f"{sys.version.split()[0]}.", "",
             "| target | rows | wall s | peak RSS MB | peak per quarter of the run, MB | exit |", "|---|---:|---:|---:|---|---:|"]
    for target, r in results.items():
        for name in ("quarter", "full"):
            x = r["runs"][name]
            lines.append(f"| {target} | {x['rows']:,} | {x['wall']:.1f} | {x['peak_mb']:.0f} | "
                         f"{' / '.join(str(round(q)) for q in x['quartile_peaks_mb'])} | {x['rc']} |")
    lines += ["", "| target | peak RSS, all rows ÷ a quarter of them | source | manifests | target | load record | "
              "SUM(id), SUM(amount) equal |", "|---|---:|---:|---:|---:|---:|---|"]
    for target, r in results.items():
        q, f, c = r["runs"]["quarter"], r["runs"]["full"], r["counts"]
        ratio = f["peak_mb"] / q["peak_mb"] if q["peak_mb"] else float("nan")
        if c:
            lines.append(f"| {target} | {ratio:.2f}× (4× the rows) | {c['source']:,} | {c['manifest_rows']:,} | "
                         f"{c['target']:,} | {c['load_record_rows']:,} | {'yes' if c['all_equal'] else 'NO'} |")
        else:
            lines.append(f"| {target} | {ratio:.2f}× | – | – | – | – | run failed |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
