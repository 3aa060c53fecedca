"""lakeshift benchmark: lakeshift against the raw limit and against Sling and dlt,
on the same generated data, in one run. Start it with `bash scripts/bench.sh`.

Every measured thing runs as its own process; the harness records its wall
time, rows/s, peak RSS (psutil polling of the process tree every 10 ms, and the
kernel's high-water mark from wait4) and the CPU seconds spent by it, by
MariaDB and by PostgreSQL. Each is repeated (median, min, max). The Markdown
report goes to bench/results/<date>.md.

    python bench/run.py [--rows N] [--repeat K] [--smoke] [--skip-peers] [--only a,b] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil
import pymysql
import psycopg
import yaml

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PEERS_VENV = BENCH / ".venv-peers"
PEER_PACKAGES = ["sling-linux-amd64==1.4.11", "dlt[postgres,sql-database,parquet]==1.31.0", "connectorx==0.4.6",
                 "pymysql", "py-spy", "pyinstrument"]
MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
DATA_VERSION = 1  # bump when the generated data changes
SMALL_TABLES = 20
STATUS_TABLES = 50  # `lakeshift status` over this many tables (issue 15): the small tables, each declared 2-3 times
SMOKE_STATUS_TABLES = 4  # --smoke: the scenario runs, on few tables (the test suite's time)
PSS_EVERY = 10  # the process tree's PSS is read every 10th poll (100 ms), RSS on every poll (10 ms)

# Every scenario, in report order. kind: lakeshift | raw | peer
SCENARIOS = {
    "raw_extract": ("raw", "raw extract: connectorx arrow_stream -> Parquet"),
    "raw_load": ("raw", "raw load: Parquet -> PostgreSQL (ADBC binary COPY)"),
    "backup": ("lakeshift", "lakeshift backup-only: MySQL -> Parquet lake"),
    "full_pg": ("lakeshift", "lakeshift full sync: MySQL -> lake -> PostgreSQL"),
    "full_duck": ("lakeshift", "lakeshift full sync: MySQL -> lake -> DuckDB"),
    "verify_keys": ("lakeshift", "lakeshift verify (keys only) of the full sync's identical PostgreSQL table"),
    "verify_deep": ("lakeshift", "lakeshift verify --deep of the full sync's identical PostgreSQL table"),
    "raw_incr": ("raw", "raw incremental read: connectorx of the changed rows only -> Parquet"),
    "incr_pg": ("lakeshift", "lakeshift incremental, 1% of rows changed -> PostgreSQL"),
    "incr_del": ("lakeshift", "lakeshift incremental, 1% changed + 0.1% deleted, hard_deletes: delete -> PostgreSQL"),
    "nochange": ("lakeshift", f"lakeshift no-change run, {SMALL_TABLES} tables -> PostgreSQL"),
    "scd2": ("lakeshift", "lakeshift SCD2 load of 1% changed rows into a history of --rows versions, and the plain "
                          "merge of the same batch (bench/scd2_load.py; the ratio is in the notes)"),
    "cli_start": ("lakeshift", "lakeshift --help: CLI start-up alone (imports), the floor of every command"),
    "status": ("lakeshift", f"lakeshift status of {STATUS_TABLES} tables ({SMOKE_STATUS_TABLES} in --smoke), "
                            "lake + PostgreSQL state"),
    "sling": ("peer", "Sling 1.4.11 full-refresh: MySQL -> PostgreSQL"),
    "dlt": ("peer", "dlt 1.31 sql_table (connectorx) replace: MySQL -> PostgreSQL"),
}


# ---------------------------------------------------------------- measuring


@dataclass
class Sample:
    wall: float
    peak_rss: int  # bytes, the process tree (sum of RSS at the worst moment)
    peak_main: int  # bytes, the process itself (its children not counted)
    peak_pss: int  # bytes, the process tree's proportional set size (shared pages counted once)
    cpu: float  # user+sys seconds of the process tree
    cpu_mysql: float
    cpu_pg: float
    rc: int
    log: Path


@dataclass
class Result:
    name: str
    rows: int
    samples: list[Sample] = field(default_factory=list)
    error: str | None = None

    def ok(self) -> list[Sample]:
        return [s for s in self.samples if s.rc == 0]

    def median(self) -> float | None:
        ok = self.ok()
        return statistics.median(s.wall for s in ok) if ok else None


def _server_cpu(name: str) -> float:
    total = 0.0
    for p in psutil.process_iter(["name", "cpu_times"]):
        if p.info["name"] and p.info["name"].startswith(name) and p.info["cpu_times"] is not None:
            t = p.info["cpu_times"]
            total += t.user + t.system
    return total


def measure(argv: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> Sample:
    """Run argv as its own process; wall time, peak RSS of its process tree, CPU."""
    log.parent.mkdir(parents=True, exist_ok=True)
    my0, pg0 = _server_cpu("mariadbd") + _server_cpu("mysqld"), _server_cpu("postgres")
    with open(log, "wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                                cwd=cwd, stdin=subprocess.DEVNULL)
        root = psutil.Process(proc.pid)
        peak, peak_main, peak_pss, cpu_seen, polls = 0, 0, 0, {}, 0
        status, usage = None, None
        while status is None:
            try:
                procs = [root] + root.children(recursive=True)
            except psutil.Error:
                procs = []
            rss = pss = 0
            with_pss = polls % PSS_EVERY == 0  # smaps_rollup costs the harness ~1/3 of a core at 10 ms
            polls += 1
            for p in procs:
                with contextlib.suppress(psutil.Error):
                    if with_pss:
                        full = p.memory_full_info()  # RSS and PSS of the same moment
                        mine = full.rss
                        pss += full.pss
                    else:
                        mine = p.memory_info().rss
                    rss += mine
                    if p.pid == proc.pid:
                        peak_main = max(peak_main, mine)
                    t = p.cpu_times()
                    cpu_seen[p.pid] = t.user + t.system
            peak = max(peak, rss)
            peak_pss = max(peak_pss, pss)
            pid, st, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                status = st
                break
            time.sleep(0.01)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    # ru_maxrss (KiB): the largest single process; catches a peak between two polls
    peak = max(peak, usage.ru_maxrss * 1024)
    cpu_children = usage.ru_utime + usage.ru_stime
    my1, pg1 = _server_cpu("mariadbd") + _server_cpu("mysqld"), _server_cpu("postgres")
    return Sample(wall, peak, max(peak_main, min(peak, usage.ru_maxrss * 1024)), peak_pss,
                  max(cpu_children, sum(cpu_seen.values())), my1 - my0, pg1 - pg0, proc.returncode, log)


# ---------------------------------------------------------------- data


def mysql(db: str | None = None) -> pymysql.connections.Connection:
    return pymysql.connect(**MYSQL, database=db, charset="utf8mb4", autocommit=True,
                           init_command="SET time_zone = '+00:00'")


ORDERS_DDL = """
CREATE TABLE orders (
  id BIGINT UNSIGNED NOT NULL,
  customer_id INT NOT NULL,
  status VARCHAR(16) NOT NULL,
  amount DECIMAL(12,2) NOT NULL,
  discount DOUBLE NULL,
  is_paid TINYINT(1) NOT NULL,
  note VARCHAR(255) CHARACTER SET utf8mb4 NULL,
  created_at DATETIME(3) NOT NULL,
  updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"""

# Server-side, from MariaDB's SEQUENCE engine: no row goes through Python.
ORDERS_FILL = """
INSERT INTO orders
SELECT seq,
       (seq * 7919) % 100000 + 1,
       ELT(1 + seq % 5, 'new', 'paid', 'shipped', 'delivered', 'cancelled'),
       ((seq * 104729) % 10000000) / 100,
       IF(seq % 7 = 0, NULL, (seq % 1000) / 37),
       seq % 2,
       IF(seq % 5 = 0, NULL, CONCAT('Bestellung ', seq, ' für Kundin ', (seq * 7919) % 100000 + 1,
                                    ELT(1 + seq % 4, ' — Straße 12', ' 🚚 en route', ' 北京市', ' ok'))),
       TIMESTAMPADD(MICROSECOND, seq * 1500000 + (seq % 1000) * 1000, '2024-01-01 00:00:00'),
       TIMESTAMPADD(MICROSECOND, seq * 1500000 + (seq % 1000) * 1000 + (seq % 86400) * 1000000,
                    '2024-01-01 00:00:00')
FROM seq_{lo}_to_{hi}"""

SMALL_DDL = """
CREATE TABLE small_{n:02d} (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(50) NOT NULL,
  qty INT NOT NULL,
  price DECIMAL(10,2) NULL,
  updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  KEY idx_updated (updated_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"""
SMALL_FILL = """
INSERT INTO small_{n:02d} (id, name, qty, price, updated_at)
SELECT seq, CONCAT('item ', seq), seq % 97, (seq % 10000) / 100,
       TIMESTAMPADD(SECOND, seq, '2024-06-01 00:00:00')
FROM seq_1_to_{rows}"""


def generate(db: str, rows: int, small_rows: int, log: Any) -> None:
    """(Re)create the data unless the database already holds this size and version."""
    with mysql() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        cur.execute(f"USE `{db}`")
        cur.execute("CREATE TABLE IF NOT EXISTS _bench_meta (k VARCHAR(32) PRIMARY KEY, v BIGINT)")
        cur.execute("SELECT k, v FROM _bench_meta")
        meta = dict(cur.fetchall())
        if meta.get("rows") == rows and meta.get("version") == DATA_VERSION and meta.get("small") == small_rows:
            log(f"data: {db} already holds {rows:,} orders (version {DATA_VERSION}); reused")
            return
        started = time.perf_counter()
        cur.execute("DELETE FROM _bench_meta")
        cur.execute("DROP TABLE IF EXISTS orders")
        cur.execute(ORDERS_DDL)
        step = 1_000_000
        for lo in range(1, rows + 1, step):
            cur.execute(ORDERS_FILL.format(lo=lo, hi=min(rows, lo + step - 1)))
        cur.execute("ALTER TABLE orders ADD INDEX idx_updated (updated_at, id)")
        for n in range(1, SMALL_TABLES + 1):
            cur.execute(f"DROP TABLE IF EXISTS small_{n:02d}")
            cur.execute(SMALL_DDL.format(n=n))
            cur.execute(SMALL_FILL.format(n=n, rows=small_rows))
        cur.execute("ANALYZE TABLE orders")
        cur.fetchall()
        cur.executemany("INSERT INTO _bench_meta VALUES (%s, %s)",
                        [("rows", rows), ("version", DATA_VERSION), ("small", small_rows)])
        log(f"data: generated {rows:,} orders + {SMALL_TABLES} x {small_rows:,} small rows in {db} "
            f"in {time.perf_counter() - started:.1f}s")


def change_one_percent(db: str, k: int, table: str = "orders") -> tuple[int, str]:
    """Touch 1% of the orders (every 100th id, shifted by k): new amount, updated_at
    now. Returns the rows changed and the time before the change (the raw
    incremental read selects the rows changed since)."""
    with mysql(db) as conn, conn.cursor() as cur:
        cur.execute("SELECT DATE_FORMAT(NOW(3), '%Y-%m-%d %H:%i:%s.%f')")
        since = cur.fetchone()[0]
        changed = cur.execute(f"UPDATE {table} SET amount = amount + 1, updated_at = NOW(3) WHERE id % 100 = {k % 100}")
        return changed, since


def copy_orders(db: str, log: Any) -> None:
    """orders_d: a copy of orders for the run with hard_deletes (its rows get deleted)."""
    started = time.perf_counter()
    with mysql(db) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS orders_d")
        cur.execute("CREATE TABLE orders_d LIKE orders")
        cur.execute("INSERT INTO orders_d SELECT * FROM orders")
        cur.execute("ANALYZE TABLE orders_d")
        cur.fetchall()
    log(f"data: orders copied to orders_d in {time.perf_counter() - started:.1f}s")


def change_and_delete(db: str, k: int) -> int:
    """orders_d: 1% changed as change_one_percent does, then 0.1% deleted (every 1000th id,
    shifted by k). Returns the rows changed and deleted."""
    changed, _ = change_one_percent(db, k, "orders_d")
    with mysql(db) as conn, conn.cursor() as cur:
        return changed + cur.execute(f"DELETE FROM orders_d WHERE id % 1000 = {500 + k % 500}")


# ---------------------------------------------------------------- lakeshift config


def write_config(work: Path, db: str, suffix: str, small_rows: int, status_tables: int = STATUS_TABLES) -> Path:
    cfg = work / "config"
    shutil.rmtree(cfg, ignore_errors=True)
    (cfg / "pipelines").mkdir(parents=True)

    def pg(schema: str) -> dict[str, Any]:
        return {"type": "postgres", "host": "127.0.0.1", "port": 5432, "database": "test", "username": "postgres",
                "schema": schema}

    connections = {
        "connections": {
            "sources": {"bench_mysql": {"type": "mysql", "host": "127.0.0.1", "port": 3306, "database": db,
                                        "username": "root", "password": ""}},
            "targets": {"pg_full": pg(f"bench_full{suffix}"), "pg_incr": pg(f"bench_incr{suffix}"),
                        "pg_del": pg(f"bench_del{suffix}"),
                        "pg_small": pg(f"bench_small{suffix}"), "pg_status": pg(f"bench_status{suffix}"),
                        "duck": {"type": "duckdb", "path": str(work / "bench.duckdb"), "schema": "bench"}},
            "storage": {"default": {"type": "local", "path": str(work / "lake")}},
        },
    }
    (cfg / "connections.yml").write_text(yaml.safe_dump(connections, sort_keys=False))
    hybrid = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id"}
    pipelines = {
        "backup": ("pg_full", {"orders": {"cdc_strategy": "full_sync"}}, {}),
        "full_pg": ("pg_full", {"orders": {"cdc_strategy": "full_sync"}}, {}),
        "full_duck": ("duck", {"orders": {"cdc_strategy": "full_sync"}}, {}),
        "incr_pg": ("pg_incr", {"orders": dict(hybrid)}, {}),
        "incr_del": ("pg_del", {"orders_d": {**hybrid, "hard_deletes": "delete"}}, {}),
        "nochange": ("pg_small", {f"small_{n:02d}": dict(hybrid) for n in range(1, SMALL_TABLES + 1)},
                     {"processing": {"strategy": "parallel", "max_parallel_tables": 2}}),  # = the cores
        "status50": ("pg_status", {f"status_{n:02d}": {**hybrid, "full_name": f"small_{(n - 1) % SMALL_TABLES + 1:02d}",
                                                        "target_name": f"status_{n:02d}"}
                                   for n in range(1, status_tables + 1)},
                     {"processing": {"strategy": "parallel", "max_parallel_tables": 2}}),
    }
    for name, (target, tables, extra) in pipelines.items():
        body = {"pipeline": {"name": name, "source": "bench_mysql", "target": target, **extra}, "tables": tables}
        (cfg / "pipelines" / f"{name}.yml").write_text(yaml.safe_dump(body, sort_keys=False))
    return cfg


# ---------------------------------------------------------------- the run


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rows = args.rows
        self.small_rows = 50 if args.smoke else 1000
        label = args.label or ("smoke" if args.smoke else _short(self.rows))
        self.suffix = f"_{label}"
        self.db = f"lakeshift_bench{self.suffix}"
        self.work = Path(args.work or BENCH / ".work" / label).resolve()
        self.work.mkdir(parents=True, exist_ok=True)
        self.py = sys.executable
        self.results: dict[str, Result] = {}
        self.notes: list[str] = []
        self.started = datetime.now(timezone.utc)
        self.peer_python: str | None = None
        self.peer_error: str | None = None

    def log(self, msg: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)

    def wanted(self, name: str) -> bool:
        only = self.args.only
        return not only or name in only or (name in ("raw_extract", "raw_load") and "raw" in only)

    # -- lakeshift
    def lakeshift(self, *args: str) -> list[str]:
        return [self.py, "-m", "lakeshift", "--config-dir", str(self.cfg), "--quiet", *args]

    def sync(self, pipeline: str, *flags: str, tables: tuple[str, ...] = ("orders",)) -> list[str]:
        sel = ["--all"] if tables == ("--all",) else [x for t in tables for x in ("-t", t)]
        return self.lakeshift("sync", "pipeline", "-p", pipeline, *sel, *flags)

    def clear_lake(self, pipeline: str) -> None:
        shutil.rmtree(self.work / "lake" / pipeline, ignore_errors=True)

    def run_one(self, name: str, rep: int, argv: list[str], rows: int, env: dict[str, str] | None = None,
                cwd: Path | None = None) -> Sample:
        res = self.results.setdefault(name, Result(name, rows))
        sample = measure(argv, self.work / "logs" / f"{name}-{rep}.log", env=env, cwd=cwd or self.work)
        res.samples.append(sample)
        state = "ok" if sample.rc == 0 else f"FAILED (exit {sample.rc}, see {sample.log})"
        self.log(f"{name} #{rep + 1}: {sample.wall:.2f}s, peak RSS {sample.peak_rss / 2**20:.0f} MB "
                 f"(main process {sample.peak_main / 2**20:.0f} MB, tree PSS {sample.peak_pss / 2**20:.0f} MB), cpu {sample.cpu:.1f}s + MySQL "
                 f"{sample.cpu_mysql:.1f}s: {state}")
        if sample.rc != 0:
            res.error = _tail(sample.log)
        return sample

    def pg(self, sql: str) -> None:
        with psycopg.connect(PG_DSN, autocommit=True) as c:
            c.execute(sql)

    # -- peers
    def ensure_peers(self) -> None:
        if self.args.skip_peers or self.args.smoke:
            self.peer_error = "skipped (--smoke / --skip-peers)"
            return
        py = PEERS_VENV / "bin" / "python"
        try:
            if not py.exists():
                self.log(f"peers: creating {PEERS_VENV} ({', '.join(PEER_PACKAGES)})")
                subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)],
                               check=True, capture_output=True)
            probe = subprocess.run([str(py), "-c", "import dlt, sling_linux_amd64, connectorx, pymysql"],
                                   capture_output=True)
            if probe.returncode != 0:
                subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *PEER_PACKAGES],
                               check=True, capture_output=True, text=True, timeout=900)
            self.peer_python = str(py)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            detail = getattr(exc, "stderr", "") or str(exc)
            self.peer_error = f"could not install the peers: {str(detail).strip().splitlines()[-1:]}"
            self.log(self.peer_error)

    def sling_binary(self) -> str | None:
        found = sorted(PEERS_VENV.glob("lib/python3*/site-packages/sling_linux_amd64/bin/sling-linux-amd64"))
        return str(found[0]) if found else None

    # -- scenarios
    def run(self) -> Path:
        a = self.args
        self.log(f"rows {self.rows:,}, repeat {a.repeat}, database {self.db}, work {self.work}")
        self.log(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
        generate(self.db, self.rows, self.small_rows, self.log)
        self.cfg = write_config(self.work, self.db, self.suffix, self.small_rows,
                                SMOKE_STATUS_TABLES if a.smoke else STATUS_TABLES)
        self.ensure_peers()
        sling = self.sling_binary() if self.peer_python else None
        raw_parquet = self.work / "raw" / "orders.parquet"
        raw_parquet.parent.mkdir(parents=True, exist_ok=True)
        mysql_url = f"mysql://root@127.0.0.1:3306/{self.db}"
        rows = self.rows

        # untimed set-up: the incremental and no-change pipelines start loaded
        if self.wanted("incr_pg"):
            self.pg(f'DROP SCHEMA IF EXISTS "bench_incr{self.suffix}" CASCADE')
            self.clear_lake("incr_pg")
            self.setup("incr_pg", self.sync("incr_pg"))
        if self.wanted("incr_del"):
            copy_orders(self.db, self.log)
            self.pg(f'DROP SCHEMA IF EXISTS "bench_del{self.suffix}" CASCADE')
            self.clear_lake("incr_del")
            self.setup("incr_del", self.sync("incr_del", tables=("orders_d",)))
        if self.wanted("nochange"):
            self.pg(f'DROP SCHEMA IF EXISTS "bench_small{self.suffix}" CASCADE')
            self.clear_lake("nochange")
            self.setup("nochange", self.sync("nochange", tables=("--all",)))
        if self.wanted("status"):  # two runs per table: history, two batches each
            self.pg(f'DROP SCHEMA IF EXISTS "bench_status{self.suffix}" CASCADE')
            self.clear_lake("status50")
            for _ in range(1 if a.smoke else 2):
                self.setup("status", self.sync("status50", tables=("--all",)))
        if self.wanted("sling") or self.wanted("dlt"):
            self.pg(f'CREATE SCHEMA IF NOT EXISTS "bench_sling{self.suffix}"')

        for rep in range(a.repeat):
            self.log(f"--- round {rep + 1}/{a.repeat}")
            if self.wanted("raw_extract") or self.wanted("raw_load"):
                self.run_one("raw_extract", rep, [self.py, str(BENCH / "raw_extract.py"), "--url", mysql_url,
                                                  "--table", "orders", "--out", str(raw_parquet)], rows)
                self.run_one("raw_load", rep, [self.py, str(BENCH / "raw_load.py"), "--parquet", str(raw_parquet),
                                               "--dsn", PG_URL, "--schema", f"bench_raw{self.suffix}",
                                               "--table", "orders"], rows)
            if self.wanted("backup"):
                self.clear_lake("backup")
                self.run_one("backup", rep, self.sync("backup", "--backup-only"), rows)
            if self.wanted("full_pg"):
                self.clear_lake("full_pg")  # the target keeps its table: a steady-state re-sync
                self.run_one("full_pg", rep, self.sync("full_pg"), rows)
            # the table full_pg just synced is identical to MySQL: verify must exit 0 (3 = differences: failed)
            for name, flags in (("verify_keys", ()), ("verify_deep", ("--deep",))):
                if self.wanted(name) and "full_pg" in self.results:
                    self.run_one(name, rep, self.lakeshift("verify", "-p", "full_pg", "-t", "orders", *flags), rows)
            if self.wanted("full_duck"):
                self.clear_lake("full_duck")
                self.run_one("full_duck", rep, self.sync("full_duck"), rows)
            if self.wanted("incr_pg"):
                changed, since = change_one_percent(self.db, rep)
                # the floor first (it warms MariaDB's buffer pool for lakeshift, not the other way round)
                self.run_one("raw_incr", rep, [self.py, str(BENCH / "raw_extract.py"), "--url", mysql_url,
                                               "--table", "orders", "--out", str(raw_parquet.with_name("incr.parquet")),
                                               "--where", f"updated_at >= '{since}'"], changed)
                self.run_one("incr_pg", rep, self.sync("incr_pg"), changed)
            if self.wanted("incr_del"):
                # the same changes as incr_pg's on a copy of the table, and 0.1% of its rows deleted
                touched = change_and_delete(self.db, rep)
                self.run_one("incr_del", rep, self.sync("incr_del", tables=("orders_d",)), touched)
            if self.wanted("nochange"):
                self.run_one("nochange", rep, self.sync("nochange", tables=("--all",)), 0)
            if self.wanted("scd2"):  # load only: both tables are built by SQL, the ratio is measured in-process
                sample = self.run_one("scd2", rep, [self.py, str(BENCH / "scd2_load.py"), "--rows", str(rows),
                                                    "--changed", str(max(1, rows // 100)), "--repeat", "1",
                                                    "--targets", "postgres", "--schema", f"bench_scd2{self.suffix}"],
                                 max(1, rows // 100))
                self.notes.extend(scd2_ratio(sample.log, rep))
            if self.wanted("cli_start") or self.wanted("status"):
                self.run_one("cli_start", rep, self.lakeshift("--help"), 0)
            if self.wanted("status"):
                self.run_one("status", rep, self.lakeshift("status", "-p", "status50", "--json"), 0)
            if self.wanted("sling"):
                if sling:
                    env = {"SLING_DISABLE_TELEMETRY": "true", "SLING_HOME_DIR": str(self.work / "sling"),
                           "MYSQL_SRC": mysql_url, "PG_DST": PG_URL + "?sslmode=disable"}
                    self.run_one("sling", rep, [sling, "run", "--src-conn", "MYSQL_SRC", "--src-stream",
                                                f"{self.db}.orders", "--tgt-conn", "PG_DST", "--tgt-object",
                                                f"bench_sling{self.suffix}.orders", "--mode", "full-refresh"],
                                 rows, env=env)
                else:
                    self.results.setdefault("sling", Result("sling", rows)).error = (
                        self.peer_error or "the sling-linux-amd64 binary was not found")
            if self.wanted("dlt"):
                if self.peer_python:
                    (self.work / "dlt").mkdir(exist_ok=True)
                    self.run_one("dlt", rep, [self.peer_python, str(BENCH / "peers" / "dlt_full.py"), "--mysql",
                                              mysql_url, "--table", "orders", "--pg",
                                              "postgresql://postgres:unused@127.0.0.1:5432/test",
                                              "--dataset", f"bench_dlt{self.suffix}", "--workdir",
                                              str(self.work / "dlt")], rows, cwd=self.work / "dlt")
                else:
                    self.results.setdefault("dlt", Result("dlt", rows)).error = self.peer_error
        if a.profile:
            self.profile()
        return self.report()

    def setup(self, name: str, argv: list[str]) -> None:
        sample = measure(argv, self.work / "logs" / f"{name}-setup.log", cwd=self.work)
        self.log(f"{name} set-up (untimed): {sample.wall:.2f}s" + ("" if sample.rc == 0 else " FAILED"))
        if sample.rc != 0:
            self.results.setdefault(name, Result(name, 0)).error = "set-up failed: " + _tail(sample.log)

    def profile(self) -> None:
        """py-spy (from the peers' venv) over one full sync to PostgreSQL."""
        spy = PEERS_VENV / "bin" / "py-spy"
        if not spy.exists():
            self.notes.append("profile: py-spy is not installed (bench/.venv-peers)")
            return
        out = self.results_dir() / f"{self.stamp()}-profile-full_pg.txt"
        self.clear_lake("full_pg")
        cmd = [str(spy), "record", "-r", "100", "--threads", "--idle", "-f", "raw", "-o", str(out), "--",
               *self.sync("full_pg")]
        subprocess.run(cmd, cwd=self.work, capture_output=True)
        summary = subprocess.run([self.py, str(BENCH / "stacks.py"), str(out), "--top", "20"],
                                 capture_output=True, text=True).stdout
        (out.with_suffix(".summary.txt")).write_text(summary)
        self.notes.append(f"profile of one full sync to PostgreSQL: {out} (summary: {out.with_suffix('.summary.txt')})")

    # -- report
    def results_dir(self) -> Path:
        d = Path(self.args.out).resolve() if self.args.out else BENCH / "results"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def stamp(self) -> str:
        return self.started.strftime("%Y-%m-%d") + ("-smoke" if self.args.smoke else f"-{_short(self.rows)}")

    def report(self) -> Path:
        text = render(self)
        path = self.results_dir() / f"{self.stamp()}.md"
        path.write_text(text, encoding="utf-8")
        (path.with_suffix(".json")).write_text(json.dumps(raw_json(self), indent=1))
        print(text)
        self.log(f"report: {path}")
        return path


def scd2_ratio(log: Path, rep: int) -> list[str]:
    """The SCD2 / plain merge ratio bench/scd2_load.py printed (its summary line)."""
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith('{"summary"'):
            s = json.loads(line)["summary"]
            return [f"scd2 round {rep + 1}: SCD2 {s['scd2_median']:.2f}s vs plain merge {s['merge_median']:.2f}s "
                    f"of the same {s['changed']:,} changed rows into {s['rows']:,}: {s['ratio_median']:.2f}x "
                    "(target <= 2x)"]
    return [f"scd2 round {rep + 1}: no result (see {log})"]


def _short(n: int) -> str:
    for unit, size in (("m", 1_000_000), ("k", 1_000)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def _tail(log: Path, n: int = 3) -> str:
    try:
        lines = [x for x in log.read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        return "(no log)"
    return " | ".join(lines[-n:])[:400]


def _mb(b: float) -> str:
    return f"{b / 2**20:,.0f}"


def render(b: Bench) -> str:
    r = b.results
    med = {k: v.median() for k, v in r.items()}
    raw_total = (med.get("raw_extract") or 0) + (med.get("raw_load") or 0) if med.get("raw_extract") and med.get("raw_load") else None
    lines = [f"# lakeshift benchmark, {b.started:%Y-%m-%d %H:%M} UTC", ""]
    lines += [f"{b.rows:,} rows in `{b.db}.orders` (+ {SMALL_TABLES} tables of {b.small_rows:,} rows for the no-change run); "
              f"{b.args.repeat} run(s) each, median [min–max]; every run its own process. "
              f"Machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
              f"Python {platform.python_version()}, MariaDB + PostgreSQL on loopback.", ""]
    lines += ["| what | rows | wall s, median [min–max] | rows/s | peak RSS MB, process tree (main process) | peak PSS MB, process tree | CPU s (tree / MySQL) | vs reference |",
              "|---|---:|---:|---:|---:|---:|---:|---|"]
    for name, (_, label) in SCENARIOS.items():
        res = r.get(name)
        if res is None:
            continue
        ok = res.ok()
        if not ok:
            lines.append(f"| {label} | {res.rows:,} | not measured: {res.error or 'failed'} | | | | | |")
            continue
        walls = [s.wall for s in ok]
        m = statistics.median(walls)
        rate = f"{res.rows / m:,.0f}" if res.rows else "–"
        cpu = f"{statistics.median(s.cpu for s in ok):.1f} / {statistics.median(s.cpu_mysql for s in ok):.1f}"
        versus = ""
        if name == "backup":
            versus = _versus(r, name, ("raw_extract",), "{:.2f}×", " raw extract")
        elif name == "full_pg":
            versus = _versus(r, name, ("raw_extract", "raw_load"), "{:.2f}×", " raw extract + raw load")
        elif name == "incr_pg":
            versus = _versus(r, name, ("full_pg",), "{:.1%}", " of the full sync")
            if "raw_incr" in r:
                versus += "; " + _versus(r, name, ("raw_incr",), "{:.1f}×", " the raw read of the changed rows")
        elif name in ("verify_keys", "verify_deep"):
            versus = _versus(r, name, ("full_pg",), "{:.2f}×", " the full sync")
        elif name == "incr_del":
            versus = _versus(r, name, ("incr_pg",), "{:.2f}×", " the incremental run without deletes")
        elif name == "raw_incr":
            versus = _versus(r, name, ("full_pg",), "{:.1%}", " of the full sync")
        elif name in ("sling", "dlt"):
            versus = "lakeshift full sync is " + _versus(r, "full_pg", (name,), "{:.1f}×", " faster", invert=True)
        failed = len(res.samples) - len(ok)
        note = f" ({failed} failed)" if failed else ""
        lines.append(f"| {label}{note} | {res.rows:,} | {m:.2f} [{min(walls):.2f}–{max(walls):.2f}] | {rate} | "
                     f"{_mb(max(s.peak_rss for s in ok))} ({_mb(max(s.peak_main for s in ok))}) | "
                     f"{_mb(max(s.peak_pss for s in ok))} | {cpu} | {versus} |")
        if name == "raw_load" and raw_total:
            lines.append(f"| raw extract + raw load (the limit for a full sync) | {res.rows:,} | {raw_total:.2f} | "
                         f"{res.rows / raw_total:,.0f} | | | | |")
    lines += ["", "Targets (issue 5):", ""]
    lines += [f"- {t}" for t in targets(b, med, raw_total)]
    if b.notes:
        lines += ["", *[f"- {n}" for n in b.notes]]
    lines.append("")
    return "\n".join(lines)


def ratios(r: dict[str, Result], name: str, refs: tuple[str, ...]) -> list[float]:
    """name's wall time over the sum of refs' in each round where all of them
    ran: scenarios take turns within a round, so a ratio of one round is not
    skewed by the machine getting busier or quieter between rounds."""
    if name not in r or any(ref not in r for ref in refs):
        return []
    rows = zip(r[name].samples, *(r[ref].samples for ref in refs))
    return [row[0].wall / sum(x.wall for x in row[1:]) for row in rows if all(x.rc == 0 for x in row)]


def _versus(r: dict[str, Result], name: str, refs: tuple[str, ...], fmt: str, what: str,
            invert: bool = False) -> str:
    """'1.18× raw extract + raw load (rounds: 1.07–1.27×)': the median of the
    rounds' ratios, then their range."""
    values = [1 / v if invert else v for v in ratios(r, name, refs)]
    if not values:
        return ""
    text = fmt.format(statistics.median(values)) + what
    if len(values) > 1:
        text += f" (rounds: {fmt.format(min(values)).rstrip('×%')}–{fmt.format(max(values))})"
    return text


def targets(b: Bench, med: dict[str, float | None], raw_total: float | None) -> list[str]:
    out = []

    def check(label: str, value: float | None, limit: float | None, fmt: str) -> None:
        if value is None or limit is None:
            out.append(f"{label}: not measured")
            return
        verdict = "met" if value <= limit else f"MISSED by {value / limit - 1:.0%}"
        out.append(f"{label}: {fmt.format(value=value, limit=limit)}: {verdict}")

    def paired(name: str, refs: tuple[str, ...]) -> float | None:
        values = ratios(b.results, name, refs)
        return statistics.median(values) if values else None

    check("full sync ≤ 1.0× raw extract + raw load (median of the rounds' ratios)",
          paired("full_pg", ("raw_extract", "raw_load")), 1.0, "{value:.2f}× (limit {limit:.1f}×)")
    check("backup-only ≤ 1.2× raw extract", paired("backup", ("raw_extract",)), 1.2,
          "{value:.2f}× (limit {limit:.1f}×)")
    for peer, factor in (("sling", 3.0), ("dlt", 4.0)):
        ratio = paired("full_pg", (peer,))
        check(f"≥ {factor:g}× faster than {peer}", factor * ratio if ratio else None, 1.0,
              f"{1 / ratio:.1f}× faster" if ratio else "")

    def peak(names: tuple[str, ...], of: str) -> float | None:
        values = [getattr(s, of) for n in names for s in (b.results[n].ok() if n in b.results else [])]
        return max(values) / 2**20 if values else None

    pg_runs = ("backup", "full_pg", "incr_pg", "incr_del", "nochange")
    check("peak RSS ≤ 250 MB, lakeshift process (backup, PostgreSQL runs)", peak(pg_runs, "peak_main"), 250,
          "{value:.0f} MB")
    check("peak memory ≤ 250 MB, process tree PSS incl. the connectorx child (backup, PostgreSQL runs)",
          peak(pg_runs, "peak_pss"), 250, "{value:.0f} MB")
    check("peak RSS ≤ 250 MB, process tree RSS sum (backup, PostgreSQL runs; shared pages counted twice)",
          peak(pg_runs, "peak_rss"), 250, "{value:.0f} MB")
    check("peak memory ≤ 250 MB, full sync to DuckDB (process tree PSS)", peak(("full_duck",), "peak_pss"), 250,
          "{value:.0f} MB")
    check("incremental (1%) ≤ 5% of the full sync", paired("incr_pg", ("full_pg",)), 0.05,
          "{value:.1%} (limit {limit:.0%})")
    check("no-change run over 20 tables ≤ 2 s", med.get("nochange"), 2.0, "{value:.2f}s")
    check(f"status over {STATUS_TABLES} tables ≤ 1.5 s (issue 15)", med.get("status"), 1.5,
          "{value:.2f}s" + (f" (CLI start-up alone {med['cli_start']:.2f}s)" if med.get("cli_start") else ""))
    check("verify (keys only) of an identical table ≤ 0.25× its full sync (issue 12)",
          paired("verify_keys", ("full_pg",)), 0.25, "{value:.2f}× (limit {limit:.2f}×)")
    check("verify --deep ≤ 1.0× the full sync (issue 12)", paired("verify_deep", ("full_pg",)), 1.0,
          "{value:.2f}× (limit {limit:.1f}×)")
    check("incremental with hard_deletes: delete, 0.1% deleted ≤ 1.5× the same run without deletes (issue 12)",
          paired("incr_del", ("incr_pg",)), 1.5, "{value:.2f}× (limit {limit:.1f}×)")
    check("peak RSS ≤ 250 MB, verify (process tree PSS)", peak(("verify_keys", "verify_deep"), "peak_pss"), 250,
          "{value:.0f} MB")
    return out


def raw_json(b: Bench) -> dict[str, Any]:
    return {"started": b.started.isoformat(), "rows": b.rows, "database": b.db, "schemas": schemas(b.suffix), "repeat": b.args.repeat, "results": {
        k: {"rows": v.rows, "error": v.error, "samples": [
            {"wall": s.wall, "peak_rss": s.peak_rss, "peak_main": s.peak_main, "peak_pss": s.peak_pss, "cpu": s.cpu, "cpu_mysql": s.cpu_mysql,
             "rc": s.rc} for s in v.samples]} for k, v in b.results.items()}}


def rerender(source: Path, args: argparse.Namespace) -> str:
    """The report of a finished run, from its .json, with this file's report code."""
    data = json.loads(source.read_text(encoding="utf-8"))
    args.rows, args.repeat, args.smoke, args.label = data["rows"], data["repeat"], False, None
    b = Bench(args)
    b.started, b.db = datetime.fromisoformat(data["started"]), data["database"]
    for name, res in data["results"].items():
        b.results[name] = Result(name, res["rows"], [
            Sample(s["wall"], s["peak_rss"], s["peak_main"], s.get("peak_pss", 0), s["cpu"], s["cpu_mysql"], 0.0,
                   s["rc"], source) for s in res["samples"]], res["error"])
    text = render(b)
    source.with_suffix(".md").write_text(text, encoding="utf-8")
    return text


def schemas(suffix: str) -> list[str]:
    """The PostgreSQL schemas a run with this suffix writes to."""
    return [f"bench_{n}{suffix}" for n in ("full", "incr", "del", "small", "raw", "sling", "dlt", "scd2", "status")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="tiny data, one run each, no peers (CI)")
    ap.add_argument("--skip-peers", action="store_true")
    ap.add_argument("--only", type=lambda s: set(s.split(",")), default=None,
                    help=f"comma-separated subset of: raw,{','.join(SCENARIOS)}")
    ap.add_argument("--profile", action="store_true", help="also profile one full sync with py-spy")
    ap.add_argument("--out", help="folder for the report (default bench/results)")
    ap.add_argument("--work", help="working folder (default bench/.work/<size>)")
    ap.add_argument("--label", help="names the MySQL database lakeshift_bench_<label> and the PostgreSQL schemas "
                                    "bench_*_<label> (default: the size, e.g. 2m, or smoke)")
    ap.add_argument("--render", metavar="REPORT.json",
                    help="write the Markdown report again from a run's .json (no measuring)")
    args = ap.parse_args(argv)
    if args.render:
        print(rerender(Path(args.render), args))
        return 0
    if args.smoke:
        args.rows, args.repeat = 2_000, 1
    if args.only:
        unknown = args.only - set(SCENARIOS) - {"raw"}
        if unknown:
            ap.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    Bench(args).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
