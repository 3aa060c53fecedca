"""Helpers for the fault-injection and isolation suites (issue 6, cases 1-10
and 27): a source table with deterministic changes, targets (a PostgreSQL
schema, a DuckDB file, or a throwaway PostgreSQL cluster the test may
restart) with row reads and load records, the lake as lakeshift sees it, the
real CLI in a subprocess, and the comparison every test ends with.

Everything here is bounded: loops have a number of attempts, subprocesses a
timeout, and every server or process started is stopped by its owner."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import psycopg

from conftest import PG_DSN, mysql_connect
from e2e_kit import _norm, source_rows
from hostile_kit import _pg_bin

ITEMS = ["id", "name", "amount", "updated_at"]
T0 = dt.datetime(2026, 3, 1, 12, 0, 0, 123456)
HYBRID: dict[str, Any] = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id"}
FULL_SYNC: dict[str, Any] = {"cdc_strategy": "full_sync"}


# ---------------------------------------------------------------- the source


def create_items(mysql: Any, n: int, table: str = "items", name: str = "item") -> None:
    """`n` rows, three per timestamp (ties), every tenth amount NULL."""
    with mysql.cursor() as cur:
        cur.execute(f"""CREATE TABLE `{table}` (
            id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
            name VARCHAR(60) NOT NULL,
            amount DECIMAL(12,2) NULL,
            updated_at DATETIME(6) NOT NULL,
            KEY ix_cursor (updated_at, id))""")
        insert_items(mysql, n, table, name)


def insert_items(mysql: Any, n: int, table: str = "items", name: str = "item",
                 at: dt.datetime | None = None) -> None:
    with mysql.cursor() as cur:
        cur.execute(f"SELECT COALESCE(MAX(id), 0) FROM `{table}`")
        start = int(cur.fetchone()[0]) + 1
        rows = [(f"{name} {i} ✓", None if i % 10 == 0 else f"{i}.{i % 100:02d}",
                 at or T0 + dt.timedelta(seconds=i // 3)) for i in range(start, start + n)]
        for k in range(0, len(rows), 5000):
            cur.executemany(f"INSERT INTO `{table}` (name, amount, updated_at) VALUES (%s, %s, %s)", rows[k:k + 5000])


def change_items(mysql: Any, round_: int, table: str = "items", inserts: int = 50,
                 updates: tuple[int, ...] = (3, 4, 5, 100)) -> None:
    """New rows and updated rows, all on one (new) timestamp per round; the
    updated rows change again in every round, so batches applied out of
    order would leave a stale value behind."""
    later = T0 + dt.timedelta(days=round_)
    insert_items(mysql, inserts, table, f"round {round_}", at=later)
    with mysql.cursor() as cur:
        cur.execute(f"UPDATE `{table}` SET name = %s, amount = %s, updated_at = %s WHERE id IN "
                    f"({', '.join(str(i) for i in updates)})", (f"updated in round {round_}", f"{round_}.25", later))


def mysql_count(mysql_db: str, table: str = "items") -> int:
    with mysql_connect(mysql_db) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM `{table}`")
        return int(cur.fetchone()[0])


# ---------------------------------------------------------------- targets


@dataclass
class Target:
    """A PostgreSQL schema (on the shared server or a throwaway cluster) or a
    DuckDB file, as an end-to-end target."""

    kind: str  # postgres | duckdb
    config: dict[str, Any]
    schema: str
    path: Path | None = None  # DuckDB
    dsn: str = PG_DSN  # PostgreSQL

    def query(self, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
        if self.kind == "postgres":
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                return [tuple(r) for r in conn.execute(statement, params).fetchall()]
        assert self.path is not None
        con = duckdb.connect(str(self.path), read_only=True)
        try:
            return [tuple(r) for r in con.execute(statement, params).fetchall()]
        finally:
            con.close()

    def name(self, table: str) -> str:
        return f'"{self.schema}"."{table}"'

    def exists(self, table: str) -> bool:
        if self.kind == "duckdb" and (self.path is None or not self.path.exists()):
            return False
        return bool(self.query("SELECT 1 FROM information_schema.tables WHERE table_schema = "
                               f"'{self.schema}' AND table_name = '{table}'"))

    def rows(self, table: str = "items", columns: list[str] = ITEMS, order_by: str = "id") -> list[tuple[Any, ...]]:
        if not self.exists(table):
            return []
        cols = ", ".join(f'"{c}"' for c in columns)
        return [tuple(_norm(v) for v in r)
                for r in self.query(f"SELECT {cols} FROM {self.name(table)} ORDER BY {order_by}")]

    def loads(self, pipeline: str = "p1", table: str = "items") -> list[tuple[str, int]]:
        """(batch_id, rows) of every batch recorded as loaded, oldest first."""
        if not self.exists("_lakeshift_loads"):
            return []
        return [(r[0], int(r[1])) for r in self.query(
            f'SELECT "batch_id", "rows" FROM {self.name("_lakeshift_loads")} WHERE "pipeline" = \'{pipeline}\' '
            f'AND "table_name" = \'{table}\' ORDER BY "batch_id"')]

    def staging_tables(self) -> list[str]:
        """PostgreSQL staging tables left in the schema (DuckDB stages in TEMP tables)."""
        if self.kind != "postgres":
            return []
        return [r[0] for r in self.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_name LIKE '\\_ls\\_stage\\_%%'",
            (self.schema,))]


def pg_target(schema: str, port: int = 5432) -> Target:
    config = {"type": "postgres", "host": "127.0.0.1", "port": port, "database": "test", "username": "postgres",
              "schema": schema}
    return Target("postgres", config, schema, dsn=f"host=127.0.0.1 port={port} user=postgres dbname=test")


def duck_target(path: Path, schema: str = "lake") -> Target:
    return Target("duckdb", {"type": "duckdb", "path": str(path), "schema": schema}, schema, path=path)


def make_target(kind: str, request: Any, tmp_path: Path, name: str = "target") -> Target:
    if kind == "postgres":
        return pg_target(request.getfixturevalue("pg_schema"))
    return duck_target(tmp_path / f"{name}.duckdb")


# ---------------------------------------------------------------- the lake


def table_lake(storage: dict[str, Any], pipeline: str = "p1", table: str = "items") -> Any:
    """The table's folder as lakeshift sees it (local folder or the S3 server)."""
    from lakeshift.config.models import LocalStorage, S3Storage
    from lakeshift.lake import Lake, TableLake

    model = S3Storage(**storage) if storage["type"] == "s3" else LocalStorage(**storage)
    return TableLake(Lake.from_config(model), pipeline, table)


def manifest_ids(storage: dict[str, Any], pipeline: str = "p1", table: str = "items") -> list[str]:
    return table_lake(storage, pipeline, table).manifest_ids()


def part_files(storage: dict[str, Any], pipeline: str = "p1", table: str = "items") -> list[str]:
    tl = table_lake(storage, pipeline, table)
    return [f.path for f in tl.files() if f.path.endswith(".parquet")]


# ---------------------------------------------------------------- the CLI


def cli_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **extra}
    env.pop("LAKESHIFT_FAULT", None)
    env.update(extra)
    return env


def sync_argv(config: Path, pipeline: str = "p1", tables: tuple[str, ...] = ("items",), *extra: str) -> list[str]:
    argv = [sys.executable, "-m", "lakeshift", "--config-dir", str(config), "sync", "pipeline", "-p", pipeline]
    for t in tables:
        argv += ["-t", t]
    return argv + list(extra)


def sync(config: Path, pipeline: str = "p1", tables: tuple[str, ...] = ("items",), *extra: str,
         fault: str | None = None, env: dict[str, str] | None = None, cwd: Path | None = None,
         timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """`lakeshift sync pipeline` in a real subprocess; `fault` sets LAKESHIFT_FAULT."""
    full_env = cli_env(**(env or {}), **({"LAKESHIFT_FAULT": fault} if fault else {}))
    return subprocess.run(sync_argv(config, pipeline, tables, *extra), capture_output=True, text=True,
                          env=full_env, cwd=cwd or config.parent, timeout=timeout)


def start_sync(config: Path, pipeline: str = "p1", tables: tuple[str, ...] = ("items",), *extra: str,
               env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(sync_argv(config, pipeline, tables, *extra), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=cli_env(**(env or {})), cwd=cwd or config.parent)


@contextmanager
def running(proc: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """Never leave a started process behind (SIGCONT first: it may be stopped)."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            for sig in (signal.SIGCONT, signal.SIGKILL):
                try:
                    proc.send_signal(sig)
                except ProcessLookupError:
                    pass
        try:
            proc.communicate(timeout=60)
        except (subprocess.TimeoutExpired, ValueError):
            pass


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def killed(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == -signal.SIGKILL, (
        f"expected the fault point to SIGKILL the run, got exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Error:")]


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit 1, exactly one `Error:` line naming every fragment, no traceback."""
    assert result.returncode == 1, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and "panicked" not in result.stderr, result.stderr
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


def summary(output: str, table: str = "items") -> tuple[str, int, int]:
    """(status, extracted, loaded) of `table` in the sync summary."""
    for line in output.splitlines():
        cells = [c.strip() for c in line.replace("│", "|").replace("┃", "|").split("|") if c.strip()]
        if len(cells) >= 4 and cells[0] == table and cells[1] in ("ok", "failed", "skipped"):
            num = lambda s: int(s.replace(",", "")) if s not in ("-", "") else -1  # noqa: E731
            return cells[1], num(cells[2]), num(cells[3])
    raise AssertionError(f"no summary row for {table!r} in:\n{output}")


# ---------------------------------------------------------------- comparisons


def assert_mirrors(target: Target, mysql_db: str, table: str = "items", source_table: str | None = None,
                   columns: list[str] = ITEMS, key: str = "id") -> int:
    """Target == source row by row (every column), no key twice. Returns the row count."""
    src = source_rows(mysql_db, source_table or table, columns, key)
    got = target.rows(table, columns, f'"{key}"')
    keys = [r[columns.index(key)] for r in got]
    assert len(keys) == len(set(keys)), f"{len(keys) - len(set(keys))} duplicate key(s) in {target.schema}.{table}"
    if got != src:
        missing = [r for r in src if r not in got][:5]
        extra = [r for r in got if r not in src][:5]
        raise AssertionError(f"{target.kind} {target.schema}.{table}: {len(got)} rows, source {len(src)}; "
                             f"missing {missing}, unexpected {extra}")
    return len(src)


def assert_loaded_once(target: Target, storage: dict[str, Any], pipeline: str = "p1", table: str = "items",
                       snapshots: bool = False) -> None:
    """Every batch in the lake is recorded as loaded exactly once, and nothing
    else is. `snapshots` (full_sync): an older snapshot left unloaded by a failed
    run is superseded by a newer one; the newest is loaded."""
    loads = [b for b, _ in target.loads(pipeline, table)]
    assert len(loads) == len(set(loads)), loads
    manifests = manifest_ids(storage, pipeline, table)
    if snapshots:
        assert set(loads) <= set(manifests) and manifests and manifests[-1] in loads, (loads, manifests)
    else:
        assert sorted(loads) == manifests


# ---------------------------------------------------------------- waiting


def wait_for(check: Callable[[], Any], what: str, attempts: int = 600, delay: float = 0.05,
             proc: subprocess.Popen[str] | None = None) -> Any:
    """Poll `check` until it returns something truthy (bounded); fail with `what`.
    With `proc`, fail early when the process ended first."""
    for _ in range(attempts):
        value = check()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate(timeout=30)
            raise AssertionError(f"the run ended (exit {proc.returncode}) before {what}\n{out}\n{err}")
        time.sleep(delay)
    raise AssertionError(f"gave up waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- a PostgreSQL cluster of the test's own


@dataclass
class PgCluster:
    """A throwaway PostgreSQL cluster on a free loopback port (trust auth,
    database `test`) that a test may restart or stop without hurting the
    shared server other tests use."""

    port: int
    folder: Path
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.folder / "server.log"

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=test"

    def _ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["runuser", "-u", "postgres", "--", _pg_bin("pg_ctl"), "-D", str(self.data), *args],
                              capture_output=True, timeout=120, check=check)

    def start(self) -> None:
        self._ctl("-l", str(self.log), "-w", "-t", "60", "start")
        self.wait_up()

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: every session is ended, the server comes back."""
        self._ctl("-l", str(self.log), "-m", "fast", "-w", "-t", "60", "restart")
        self.wait_up()

    def halt(self) -> None:
        """`pg_ctl stop -m fast`: down until start()."""
        self._ctl("-m", "fast", "-w", "-t", "60", "stop")

    def wait_up(self) -> None:
        def up() -> bool:
            try:
                psycopg.connect(self.dsn.replace("dbname=test", "dbname=postgres"), connect_timeout=2).close()
                return True
            except psycopg.Error:
                return False

        wait_for(up, f"PostgreSQL on port {self.port} to accept connections", attempts=300, delay=0.1)

    def stop(self) -> None:
        self._ctl("-m", "immediate", "-w", "-t", "60", "stop", check=False)
        shutil.rmtree(self.folder, ignore_errors=True)


def start_pg_cluster() -> PgCluster:
    folder = Path(tempfile.mkdtemp(prefix="ls-faults-pg-", dir="/tmp"))
    folder.chmod(0o755)
    shutil.chown(folder, "postgres", "postgres")
    cluster = PgCluster(free_port(), folder)
    try:
        subprocess.run(["runuser", "-u", "postgres", "--", _pg_bin("initdb"), "-D", str(cluster.data), "-U", "postgres",
                        "--auth=trust"], check=True, capture_output=True, timeout=120)
        with open(cluster.data / "postgresql.conf", "a") as conf:
            conf.write(f"\nlisten_addresses = '127.0.0.1'\nport = {cluster.port}\nunix_socket_directories = '{folder}'\n"
                       "max_connections = 40\nshared_buffers = 16MB\nfsync = off\n")
        cluster.start()
        with psycopg.connect(f"host=127.0.0.1 port={cluster.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute("CREATE DATABASE test")
        return cluster
    except BaseException:
        cluster.stop()
        raise


# ---------------------------------------------------------------- a TCP proxy the test can cut


class TcpProxy:
    """Loopback TCP proxy to `upstream_port`. `cut()` is an outage as clients
    see it: the listening socket closes and every open connection is reset
    (RST), so even kept-alive HTTP connections die; `restore()` listens again on
    the same port. The server behind it keeps running and keeps its data.

    With `stall_after`, a connection that has brought the client that many
    bytes from the server stops forwarding anything, both ends left open (a
    server or network that stopped answering), until `cut()`; `stalled` counts
    such connections."""

    def __init__(self, upstream_port: int, stall_after: int | None = None) -> None:
        import threading

        self.upstream = upstream_port
        self.stall_after = stall_after
        self.stalled = 0
        self._cutting = threading.Event()
        self.port = 0
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._threads: list[Any] = []
        self.restore()

    def restore(self) -> None:
        import threading

        self._cutting.clear()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.2)
        self.port = listener.getsockname()[1]
        self._listener = listener
        t = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        t.start()
        self._threads.append(t)

    def _accept(self, listener: socket.socket) -> None:
        import threading

        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    server.close()
                    return
                self._conns += [client, server]
            t = threading.Thread(target=self._pump, args=(client, server), daemon=True)
            t.start()
            self._threads.append(t)

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        import select

        peers = {a: b, b: a}
        to_client = 0
        try:
            while True:
                readable, _, _ = select.select([a, b], [], [], 0.5)
                for s in readable:
                    data = s.recv(65536)
                    if not data:
                        return
                    peers[s].sendall(data)
                    to_client += len(data) if s is b else 0
                if self.stall_after is not None and to_client >= self.stall_after:
                    with self._lock:
                        self.stalled += 1
                    self._cutting.wait(300)  # forward nothing more; the sockets stay open
                    return
        except (OSError, ValueError):
            return
        finally:
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass

    def cut(self) -> None:
        import struct

        self._cutting.set()
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        if listener is not None:
            listener.close()
        for s in conns:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass
        for t in self._threads:
            t.join(5)
        self._threads = [t for t in self._threads if t.is_alive()]

    close = cut
