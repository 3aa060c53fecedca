"""Binlog CDC against the hybrid cursor run and the raw binlog read, on the same
changes, in one run (issue 13's speed targets; ratios, the machine is shared).

A throwaway MariaDB with a row-based binary log (tests/kit/servers.py) gets a
table of --rows rows; both pipelines take it once (binlog: a snapshot;
hybrid: a full first read) into PostgreSQL. Then 1% of the rows change
(updates 80%, inserts 15%, deletes 5%, in transactions of 100), and the three
are timed, each in its own process:

- binlog: `lakeshift sync pipeline` of the binlog table (read, Parquet, load);
- hybrid: `lakeshift sync pipeline` of the hybrid table (the same changes but
  the deletes, which a cursor cannot see);
- raw: mysql-replication alone reading the same events and their rows.

    PYTHONPATH=src python bench/binlog_apply.py [--rows 2000000]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from binlog_kit import binlog_config, binlog_server, execute, new_database  # noqa: E402
from kit.targets import pg_target  # noqa: E402

DDL = ("CREATE TABLE items (id INT NOT NULL PRIMARY KEY, name VARCHAR(40) NOT NULL, amount DECIMAL(12,2), "
       "qty INT, updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6), "
       "KEY (updated_at, id))")
RAW = """
import sys, time
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.row_event import WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent
host, port, file, pos, schema = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
s = BinLogStreamReader(connection_settings={"host": host, "port": port, "user": "root", "passwd": ""},
                       server_id=4242, log_file=file, log_pos=pos, resume_stream=True, blocking=False,
                       only_events=[WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent], only_schemas=[schema])
n = sum(len(e.rows) for e in s)
print(n)
"""


CPU: dict[str, float] = {}  # CPU seconds (user + sys) of the last process `timed` ran, by label


def timed(argv: list[str], env: dict[str, str], label: str = "") -> tuple[float, str]:
    """Wall seconds and stdout of one process; its CPU seconds go to CPU[label] (the machine is shared:
    wall time carries the waits on other work, CPU time does not)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.monotonic()
    run = subprocess.run(argv, capture_output=True, text=True, env=env)
    if run.returncode:
        raise SystemExit(f"{' '.join(argv[:6])}... failed:\n{run.stdout}\n{run.stderr}")
    took = time.monotonic() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU[label] = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return took, run.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--profile", metavar="FILE", help="also write a cProfile of the binlog run to FILE (its time "
                                                      "and the ratios then carry cProfile's overhead, about 2x)")
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "AWS_EC2_METADATA_DISABLED": "true"}
    server = binlog_server("--max-binlog-size=1G")
    work = Path(tempfile.mkdtemp(prefix="ls-binlog-bench-"))
    try:
        db = new_database(server)
        execute(server, db, DDL, f"INSERT INTO items (id, name, amount, qty) SELECT seq, CONCAT('n', seq), "
                                 f"seq / 100, seq % 1000 FROM seq_1_to_{args.rows}")
        configs = {}
        for kind, table in (("binlog", {"cdc_strategy": "binlog"}),
                            ("hybrid", {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at",
                                        "cdc_id_column": "id"})):
            target = pg_target(f"ls_bench_{kind}_{os.getpid()}")
            configs[kind] = binlog_config(work / kind, server, db, target.config, {"items": table})
            took, _ = timed([sys.executable, "-m", "lakeshift", "--config-dir", str(configs[kind]), "sync", "pipeline",
                             "-p", "p1", "--all"], env)
            print(f"first run {kind}: {took:.1f}s", flush=True)
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute("SHOW MASTER STATUS")
            file, pos = cur.fetchone()[:2]
        changes = args.rows // 100
        time.sleep(1.1)  # the changes' updated_at is past the hybrid watermark's second
        stmts = []
        ups, ins, dels = int(changes * 0.8), int(changes * 0.15), changes - int(changes * 0.8) - int(changes * 0.15)
        step = max(1, args.rows // ups)
        stmts += [f"UPDATE items SET qty = qty + 1, name = 'changed' WHERE id = {i}" for i in range(1, args.rows, step)][:ups]
        stmts += [f"INSERT INTO items (id, name, amount, qty) VALUES ({args.rows + i}, 'new', 1, 1)" for i in range(1, ins + 1)]
        stmts += [f"DELETE FROM items WHERE id = {i}" for i in range(2, args.rows, max(1, args.rows // dels))][:dels]
        with server.connect(database=db) as conn, conn.cursor() as cur:
            for i in range(0, len(stmts), 100):
                cur.execute("BEGIN")
                for s in stmts[i:i + 100]:
                    cur.execute(s)
                cur.execute("COMMIT")
        print(f"{len(stmts):,} changes on {args.rows:,} rows", flush=True)
        raw, out = timed([sys.executable, "-c", RAW, server.host, str(server.port), file, str(pos), db], env, "raw")
        print(f"raw mysql-replication read: {raw:.2f}s, CPU {CPU['raw']:.2f}s ({out.strip()} rows)", flush=True)
        results = {}
        for kind in ("binlog", "hybrid"):
            prof = ["-m", "cProfile", "-o", args.profile] if args.profile and kind == "binlog" else []
            results[kind], _ = timed([sys.executable, *prof, "-m", "lakeshift", "--config-dir", str(configs[kind]), "sync",
                                      "pipeline", "-p", "p1", "--all"], env, kind)
            print(f"{kind} run: {results[kind]:.2f}s, CPU {CPU[kind]:.2f}s", flush=True)
        print(f"binlog / hybrid = {results['binlog'] / results['hybrid']:.2f} (target <= 0.5); "
              f"binlog / raw read = {results['binlog'] / raw:.2f} (target <= 2); CPU: binlog / hybrid = "
              f"{CPU['binlog'] / CPU['hybrid']:.2f}, binlog / raw = {CPU['binlog'] / CPU['raw']:.2f}")
        print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)  # the lakes and configs (about 100 MB at 2M rows)
        import psycopg

        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True) as pg:
            for kind in ("binlog", "hybrid"):
                pg.execute(f'DROP SCHEMA IF EXISTS "ls_bench_{kind}_{os.getpid()}" CASCADE')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
