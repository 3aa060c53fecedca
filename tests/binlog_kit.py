"""Helpers for the binlog CDC tests: a throwaway MariaDB with a row-based
binary log (tests/kit/servers.py starts it), a database on it, and a config
folder whose source is that server."""

from __future__ import annotations

import re
import secrets
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pymysql
from kit.config import build_config, set_source

from kit.lake import local_storage
from kit.servers import MariaDBServer, start_mariadb
from kit.wait import wait_for

ROW_LOG = ("--log-bin=mysql-bin", "--binlog-format=ROW", "--binlog-row-metadata=FULL", "--server-id=1")


def binlog_server(*extra: str) -> MariaDBServer:
    return start_mariadb(server_args=[*ROW_LOG, *extra])


def new_database(server: MariaDBServer) -> str:
    name = f"cdc_{secrets.token_hex(4)}"
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    return name


def execute(server: MariaDBServer, database: str, *statements: str, params: Any = None) -> None:
    """Each statement in autocommit; a list inside one transaction when wrapped by `transaction`."""
    with server.connect(database=database) as conn, conn.cursor() as cur:
        for stmt in statements:
            cur.execute(stmt, params)


def transaction(server: MariaDBServer, database: str, statements: Sequence[str]) -> None:
    with server.connect(database=database) as conn, conn.cursor() as cur:
        cur.execute("BEGIN")
        for stmt in statements:
            cur.execute(stmt)
        cur.execute("COMMIT")


def rows(server: MariaDBServer, database: str, table: str, columns: str = "*") -> list[tuple[Any, ...]]:
    with server.connect(database=database, init_command="SET time_zone = '+00:00'") as conn, conn.cursor() as cur:
        cur.execute(f"SELECT {columns} FROM `{table}` ORDER BY 1")
        return [tuple(r) for r in cur.fetchall()]


def binlog_config(root: Path, server: MariaDBServer, database: str, target: dict[str, Any],
                  tables: dict[str, dict[str, Any]], pipeline: str = "p1", **pipeline_extra: Any) -> Path:
    config = build_config(root / "config", database, target, local_storage(root / "lake"), tables,
                          pipeline=pipeline, **pipeline_extra)
    set_source(config, host=server.host, port=server.port, username="root")
    return config


def binlog_files(server: MariaDBServer) -> list[str]:
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("SHOW BINARY LOGS")
        return [r[0] for r in cur.fetchall()]


def restart(server: MariaDBServer) -> None:
    """Stop the server and start it again on its data, as it was started: a new binary log file,
    and table ids numbered anew from a low number."""
    assert server.process is not None
    argv = list(server.process.args)  # type: ignore[arg-type]
    _stop(server)
    _start(server, argv, "the restarted MariaDB")


def replace_server(server: MariaDBServer, server_id: int) -> None:
    """The server behind the address replaced, for real: mariadbd stopped, its binary log (files,
    index and GTID state) deleted and started again on the same data and port under another
    server_id, the identity MariaDB gives a position (it has no server_uuid): a server restored
    from a backup of the data, with a log of its own that holds none of the old one's GTIDs."""
    assert server.process is not None
    argv = [a for a in server.process.args if not str(a).startswith("--server-id=")]  # type: ignore[union-attr]
    _stop(server)
    for f in (server.folder / "data").glob("mysql-bin.*"):
        f.unlink()
    _start(server, [*argv, f"--server-id={server_id}"], "the replaced MariaDB")


def _stop(server: MariaDBServer) -> None:
    assert server.process is not None
    server.process.terminate()
    server.process.wait(timeout=120)


def _start(server: MariaDBServer, argv: list[Any], what: str) -> None:
    with open(server.folder / "server.log", "ab") as log:
        server.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

    def up() -> bool:
        if server.process is not None and server.process.poll() is not None:
            raise RuntimeError(f"{what} did not start: " + (server.folder / "server.log").read_text()[-2000:])
        try:
            server.connect().close()
            return True
        except pymysql.MySQLError:  # not accepting connections yet
            return False

    wait_for(up, f"{what} to accept connections", attempts=600, delay=0.1)


def last_table_id(server: MariaDBServer, table: str) -> int:
    """The table id of the newest table map of `table` in the server's current binary log file."""
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("SHOW MASTER STATUS")
        cur.execute(f"SHOW BINLOG EVENTS IN '{cur.fetchone()[0]}'")
        ids = [int(m.group(1)) for r in cur.fetchall() if r[2] == "Table_map"
               for m in [re.match(r"table_id: (\d+) \(\S+\.`?" + re.escape(table) + r"`?\)", r[5])] if m]
    assert ids, f"no table map of {table} in the current binary log file"
    return ids[-1]


__all__ = ["MariaDBServer", "ROW_LOG", "binlog_config", "binlog_files", "binlog_server", "execute", "last_table_id",
           "new_database", "replace_server", "restart", "rows", "transaction"]
