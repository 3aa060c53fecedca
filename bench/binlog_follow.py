"""`sync pipeline --follow` under a steady stream of changes (issue 13's
target: at 1,000 changes/s the median commit-to-visible latency in PostgreSQL
<= 3 s, the 99th percentile <= 10 s, peak RSS <= 250 MB over 10 minutes).

A throwaway MariaDB with a row-based binary log (tests/kit/servers.py) gets a
table of --rows rows, a first sync takes its snapshot into PostgreSQL, then
`lakeshift sync pipeline --follow --interval I` runs in a subprocess while

- a writer commits --rate changes/s in transactions of --tx-size changes
  (60% updates, 30% inserts, 10% deletes; each transaction sends BEGIN ...
  COMMIT in one round trip and stamps the rows it writes with its number
  `tx`), recording each COMMIT's return time (monotonic clock);
- a poller reads max(tx) in PostgreSQL every --poll seconds: a batch ends at
  a commit and loads in commit order, so every transaction <= max(tx) is
  visible (its deletes too). A transaction's latency is the first poll that
  saw it minus its commit time; each of its changes counts with it;
- a sampler reads the follow process tree's RSS (psutil) every 0.5 s, and the
  main process's VmHWM before it is stopped.

Then the writer stops, the poller waits for the last transaction, the
follower gets SIGTERM (it must end with exit 0 after its current batch) and
the target must equal the source (row count and a checksum of every row).

Why --interval 1s (the default here): a change waits on average half the
interval plus one cycle before its batch starts, then one cycle to load; 1 s
keeps the wait well under the 3 s median target while a cycle's fixed cost
(plan, locks, lake listing, binlog connection) stays a small share of it.

    PYTHONPATH=src python bench/binlog_follow.py [--seconds 600] [--rate 1000] [--interval 1s]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pymysql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from binlog_kit import binlog_config, binlog_server, execute, new_database  # noqa: E402
from kit.targets import pg_target  # noqa: E402

PG = "host=127.0.0.1 port=5432 user=postgres dbname=test"
DDL = ("CREATE TABLE items (id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(40) NOT NULL, qty INT NOT NULL, "
       "tx BIGINT NOT NULL, changed_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))")


@dataclass
class Writer:
    """Commits `rate` changes/s in transactions of `size`; commit times by transaction number."""

    server: Any
    db: str
    rows: int
    rate: float
    size: int
    committed: dict[int, float] = field(default_factory=dict)
    changes: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        conn = pymysql.connect(host=self.server.host, port=self.server.port, user="root", password="",
                               database=self.db, autocommit=True,
                               client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS)
        live, next_id, rng = list(range(1, self.rows + 1)), self.rows + 1, random.Random(13)
        ups, ins = round(self.size * 0.6), round(self.size * 0.3)
        dels = self.size - ups - ins
        start, tx = time.monotonic(), 0
        with conn, conn.cursor() as cur:
            while not self.stop.is_set():
                tx += 1
                due = start + (tx - 1) * self.size / self.rate
                if (wait := due - time.monotonic()) > 0:
                    time.sleep(wait)
                picked = rng.sample(range(len(live)), ups + dels)
                updated = [live[i] for i in picked[:ups]]
                for i in sorted(picked[ups:], reverse=True):  # deleted: swap-remove from the live ids
                    live[i], live[-1] = live[-1], live[i]
                gone = [live.pop() for _ in range(dels)]
                new = list(range(next_id, next_id + ins))
                next_id += ins
                live.extend(new)
                sql = ["BEGIN",
                       "INSERT INTO items (id, name, qty, tx) VALUES "
                       + ", ".join(f"({i}, 'new {i}', {i % 1000}, {tx})" for i in new),
                       f"UPDATE items SET qty = qty + 1, name = 'tx {tx}', tx = {tx}, changed_at = NOW(6) "
                       f"WHERE id IN ({', '.join(map(str, updated))})",
                       f"DELETE FROM items WHERE id IN ({', '.join(map(str, gone))})", "COMMIT"]
                cur.execute(";\n".join(sql))
                while cur.nextset():
                    pass
                self.committed[tx] = time.monotonic()
                self.changes += self.size


@dataclass
class Poller:
    """max(tx) in PostgreSQL every `every` seconds; when each transaction was first seen."""

    table: str
    every: float
    seen: dict[int, float] = field(default_factory=dict)
    high: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with psycopg.connect(PG, autocommit=True) as pg:
            while not self.stop.is_set():
                (top,), = pg.execute(f"SELECT COALESCE(MAX(tx), 0) FROM {self.table}").fetchall()
                now = time.monotonic()
                for t in range(self.high + 1, int(top) + 1):
                    self.seen[t] = now
                self.high = max(self.high, int(top))
                self.stop.wait(self.every)


@dataclass
class Sampler:
    """The follow process tree's RSS and PSS (sums over the tree: RSS counts the libraries both
    the follower and its connectorx child map twice, PSS shares them out), every 0.5 s."""

    pid: int
    peak: int = 0
    peak_pss: int = 0
    main: int = 0  # the main process's own RSS at its peak
    cpu: float = 0.0  # CPU seconds of the follower and the children it has reaped (connectorx workers)
    hwm: int = 0  # the main process's VmHWM (kB), read before it is stopped
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        root = psutil.Process(self.pid)
        while not self.stop.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs))
                self.peak_pss = max(self.peak_pss, sum(p.memory_full_info().pss for p in procs))
                self.main = max(self.main, root.memory_info().rss)
                t = root.cpu_times()
                self.cpu = t.user + t.system + t.children_user + t.children_system
                self.hwm = _hwm(self.pid) or self.hwm
            except psutil.Error:
                pass
            self.stop.wait(0.5)


def _hwm(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def checksum_mariadb(server: Any, db: str) -> tuple[int, str]:
    with server.connect(database=db) as conn, conn.cursor() as cur:
        cur.execute("SELECT id, name, qty, tx FROM items ORDER BY id")
        return _digest(cur.fetchall())


def checksum_pg(table: str) -> tuple[int, str]:
    with psycopg.connect(PG) as pg:
        return _digest(pg.execute(f"SELECT id, name, qty, tx FROM {table} ORDER BY id").fetchall())


def _digest(rows: Any) -> tuple[int, str]:
    h, n = hashlib.sha256(), 0
    for r in rows:
        h.update(("|".join(map(str, r)) + "\n").encode())
        n += 1
    return n, h.hexdigest()[:16]


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--rate", type=float, default=1000, help="changes per second")
    ap.add_argument("--tx-size", type=int, default=10, help="changes per transaction")
    ap.add_argument("--rows", type=int, default=100_000, help="rows before the first sync")
    ap.add_argument("--interval", default="1s", help="the follower's --interval")
    ap.add_argument("--max-changes", type=int, help="the follower's --max-changes (default: the CLI's)")
    ap.add_argument("--poll", type=float, default=0.1, help="seconds between PostgreSQL polls")
    ap.add_argument("--label", default=str(os.getpid()), help="names the PostgreSQL schema bench_follow_<label>")
    ap.add_argument("--log", metavar="FILE", help="keep the follower's output in FILE")
    ap.add_argument("--profile", metavar="FILE", help="run the follower under cProfile, its profile in FILE")
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "AWS_EC2_METADATA_DISABLED": "true",
           "PYTHONUNBUFFERED": "1"}
    print(f"start: {uptime()}", flush=True)
    # the writer's commits should not wait on fsync (the machine is shared): the log is what is measured
    server = binlog_server("--innodb-flush-log-at-trx-commit=2", "--max-binlog-size=256M")
    work = Path(tempfile.mkdtemp(prefix="ls-follow-bench-"))
    schema = f"bench_follow_{args.label}"
    table = f'"{schema}"."items"'
    proc = None
    try:
        db = new_database(server)
        execute(server, db, DDL, f"INSERT INTO items (id, name, qty, tx) SELECT seq, CONCAT('n', seq), seq % 1000, 0 "
                                 f"FROM seq_1_to_{args.rows}")
        config = binlog_config(work, server, db, pg_target(schema).config, {"items": {"cdc_strategy": "binlog"}})
        cli = [sys.executable, "-m", "lakeshift", "--config-dir", str(config), "sync", "pipeline", "-p", "p1", "--all"]
        t = time.monotonic()
        first = subprocess.run(cli, capture_output=True, text=True, env=env)
        if first.returncode:
            raise SystemExit(f"first sync failed:\n{first.stdout}\n{first.stderr}")
        print(f"snapshot of {args.rows:,} rows: {time.monotonic() - t:.1f}s", flush=True)
        with psycopg.connect(PG, autocommit=True) as pg:  # the poller's max(tx) is an index look-up
            pg.execute(f"CREATE INDEX ON {table} (tx)")
        log = open(args.log or work / "follow.log", "w")  # noqa: SIM115 - closed below
        extra = ["--max-changes", str(args.max_changes)] if args.max_changes else []
        prof = ["-m", "cProfile", "-o", args.profile] if args.profile else []
        follow = [cli[0], *prof, *cli[1:], "--follow", "--interval", args.interval, *extra]
        proc = subprocess.Popen(follow, stdout=log,
                                stderr=subprocess.STDOUT, env=env)
        writer = Writer(server, db, args.rows, args.rate, args.tx_size)
        poller, sampler = Poller(table, args.poll), Sampler(proc.pid)
        threads = [threading.Thread(target=x.run, daemon=True) for x in (poller, sampler)]
        for th in threads:
            th.start()
        wt = threading.Thread(target=writer.run, daemon=True)
        began = time.monotonic()
        wt.start()
        report = began + 60
        while time.monotonic() - began < args.seconds:
            if proc.poll() is not None:
                raise SystemExit(f"the follower exited with {proc.returncode} (see {log.name})")
            time.sleep(1)
            if time.monotonic() >= report:
                report += 60
                print(f"  {time.monotonic() - began:.0f}s: {writer.changes:,} changes committed, "
                      f"tx {max(writer.committed, default=0)} committed / {poller.high} visible, "
                      f"RSS {sampler.main / 2**20:.0f} MB (tree {sampler.peak / 2**20:.0f}, PSS {sampler.peak_pss / 2**20:.0f})", flush=True)
        writer.stop.set()
        wt.join()
        wrote = time.monotonic() - began
        last = max(writer.committed)
        deadline = time.monotonic() + 120
        while poller.high < last and time.monotonic() < deadline:
            time.sleep(0.1)
        sampler.hwm = _hwm(proc.pid) or sampler.hwm
        poller.stop.set()
        sampler.stop.set()
        proc.send_signal(signal.SIGTERM)
        t = time.monotonic()
        rc = proc.wait(timeout=180)
        stopped = time.monotonic() - t
        log.close()
        tail = Path(log.name).read_text().strip().splitlines()
        lat = [poller.seen[tx] - c for tx, c in writer.committed.items() if tx in poller.seen]
        missing = len(writer.committed) - len(lat)
        src, dst = checksum_mariadb(server, db), checksum_pg(table)
        cycles = sum(1 for x in tail if "change(s) read" in x)
        print(f"follow --interval {args.interval}: {writer.changes:,} changes in {len(writer.committed):,} transactions "
              f"over {wrote:.0f}s ({writer.changes / wrote:,.0f}/s achieved, {args.rate:,.0f}/s asked); "
              f"{cycles} loading cycles")
        print(f"commit-to-visible latency (s): median {statistics.median(lat):.2f}  p95 {pct(lat, 95):.2f}  "
              f"p99 {pct(lat, 99):.2f}  max {max(lat):.2f}  (targets: median <= 3, p99 <= 10)"
              + (f"; {missing} transaction(s) never seen" if missing else ""))
        print(f"peak memory (target RSS <= 250 MB): follower VmHWM {sampler.hwm / 1024:.0f} MB; sampled every "
              f"0.5s: follower RSS {sampler.main / 2**20:.0f} MB, with its children RSS {sampler.peak / 2**20:.0f} "
              f"MB, PSS {sampler.peak_pss / 2**20:.0f} MB")
        print(f"follower CPU: {sampler.cpu:.0f}s over {wrote:.0f}s ({100 * sampler.cpu / wrote:.0f}% of one core)")
        print(f"SIGTERM: exit {rc} after {stopped:.1f}s; last line: {tail[-1] if tail else ''!r}")
        print(f"source {src[0]:,} rows {src[1]} / target {dst[0]:,} rows {dst[1]}: "
              f"{'EQUAL' if src == dst else 'DIFFERENT'}")
        print(f"end: {uptime()}")
        return 0 if rc == 0 and src == dst and not missing else 1
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
        with psycopg.connect(PG, autocommit=True) as pg:
            pg.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    raise SystemExit(main())
