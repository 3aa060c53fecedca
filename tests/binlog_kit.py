"""Helpers for the binlog CDC tests: a throwaway MariaDB with a row-based
binary log (tests/kit/servers.py starts it), a database on it, and a config
folder whose source is that server."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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


def replace_server(server: MariaDBServer, server_id: int) -> None:
    """The server behind the address replaced, for real: mariadbd stopped, its binary log (files,
    index and GTID state) deleted and started again on the same data and port under another
    server_id, the identity MariaDB gives a position (it has no server_uuid): a server restored
    from a backup of the data, with a log of its own that holds none of the old one's GTIDs."""
    assert server.process is not None
    argv = [a for a in server.process.args if not str(a).startswith("--server-id=")]  # type: ignore[union-attr]
    server.process.terminate()
    server.process.wait(timeout=120)
    for f in (server.folder / "data").glob("mysql-bin.*"):
        f.unlink()
    with open(server.folder / "server.log", "ab") as log:
        server.process = subprocess.Popen([*argv, f"--server-id={server_id}"], stdout=log, stderr=subprocess.STDOUT)

    def up() -> bool:
        if server.process is not None and server.process.poll() is not None:
            raise RuntimeError("the MariaDB did not start again: " + (server.folder / "server.log").read_text()[-2000:])
        try:
            server.connect().close()
            return True
        except Exception:  # noqa: BLE001 - not accepting connections yet
            return False

    wait_for(up, "the replaced MariaDB to accept connections", attempts=600, delay=0.1)


__all__ = ["MariaDBServer", "ROW_LOG", "binlog_config", "binlog_files", "binlog_server", "execute", "new_database",
           "replace_server", "rows", "transaction"]
