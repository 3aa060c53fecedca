"""Helpers for the binlog CDC tests: a throwaway MariaDB with a row-based
binary log (tests/kit/servers.py starts it), a database on it, and a config
folder whose source is that server."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kit.config import build_config, set_source

from kit.lake import local_storage
from kit.servers import MariaDBServer, start_mariadb

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


__all__ = ["MariaDBServer", "ROW_LOG", "binlog_config", "binlog_files", "binlog_server", "execute", "new_database",
           "rows", "transaction"]
