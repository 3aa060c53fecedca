"""End-to-end helpers: build a config folder for a MySQL test database, a
target (PostgreSQL schema or DuckDB file) and a lake (local folder or the moto
S3 server), run the CLI in a real subprocess, and compare target with source."""

from __future__ import annotations

import datetime as dt
import decimal
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import yaml

from conftest import MYSQL, PG_DSN, mysql_connect


def build_config(root: Path, mysql_db: str, target: dict[str, Any], storage: dict[str, Any],
                 tables: dict[str, dict[str, Any]], pipeline: str = "p1", **pipeline_extra: Any) -> Path:
    files = {
        "connections.yml": {
            "connections": {
                "sources": {"src": {"type": "mysql", "host": MYSQL["host"], "port": MYSQL["port"],
                                    "database": mysql_db, "username": MYSQL["user"], "password": "${TEST_MYSQL_PASSWORD:-}",
                                    "connection_pool": {"retry_attempts": 1}}},
                "targets": {"dst": target},
                "storage": {"default": storage},
            },
            "connection_settings": {"connection_retry_delay": 0.1, "default_timeout": 20},
        },
        f"pipelines/{pipeline}.yml": {
            "pipeline": {"name": pipeline, "source": "src", "target": "dst", **pipeline_extra},
            "tables": tables,
        },
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return root


def set_source(config: Path, retry_delay: float | None = None, **values: Any) -> None:
    """Change keys of the source `src` of a build_config folder (and the retry delay)."""
    path = config / "connections.yml"
    data = yaml.safe_load(path.read_text())
    data["connections"]["sources"]["src"].update(values)
    if retry_delay is not None:
        data["connection_settings"]["connection_retry_delay"] = retry_delay
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def pg_target(schema: str) -> dict[str, Any]:
    return {"type": "postgres", "host": "127.0.0.1", "port": 5432, "database": "test", "username": "postgres",
            "schema": schema}


def duckdb_target(path: Path, schema: str = "lake") -> dict[str, Any]:
    return {"type": "duckdb", "path": str(path), "schema": schema}


def local_storage(path: Path) -> dict[str, Any]:
    return {"type": "local", "path": str(path)}


def run_cli(config_dir: Path, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """The real `python -m lakeshift` in a subprocess (so SIGKILL fault points work)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "lakeshift", "--config-dir", str(config_dir), *args],
                          capture_output=True, text=True, env=full_env, cwd=cwd or config_dir.parent, timeout=timeout)


def _norm(value: Any) -> Any:
    """Compare values across drivers: datetimes to naive UTC, decimals exact."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, bytearray):
        return bytes(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, decimal.Decimal):
        # int(), not normalize(): normalize() rounds to the context's 28 digits, so two different
        # DECIMAL(65,0) values would compare equal (and 10**65-1 would read as 1E+65)
        return int(value) if value == value.to_integral_value() else value
    return value


def source_rows(mysql_db: str, table: str, columns: list[str], order_by: str) -> list[tuple[Any, ...]]:
    cols = ", ".join(f"`{c}`" for c in columns)
    with mysql_connect(mysql_db, init_command="SET time_zone = '+00:00'") as conn, conn.cursor() as cur:
        cur.execute(f"SELECT {cols} FROM `{table}` ORDER BY {order_by}")
        return [tuple(_norm(v) for v in row) for row in cur.fetchall()]


def pg_rows(schema: str, table: str, columns: list[str], order_by: str) -> list[tuple[Any, ...]]:
    cols = ", ".join(f'"{c}"' for c in columns)
    with psycopg.connect(PG_DSN) as conn:
        rows = conn.execute(f'SELECT {cols} FROM "{schema}"."{table}" ORDER BY {order_by}').fetchall()
    return [tuple(_norm(v) for v in row) for row in rows]


def duckdb_rows(path: Path, schema: str, table: str, columns: list[str], order_by: str) -> list[tuple[Any, ...]]:
    cols = ", ".join(f'"{c}"' for c in columns)
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute(f"SELECT {cols} FROM {qualify(schema)}.\"{table}\" ORDER BY {order_by}").fetchall()
    finally:
        con.close()
    return [tuple(_norm(v) for v in row) for row in rows]


def qualify(schema: str) -> str:
    """'s' -> "s"; 'catalog.s' -> "catalog"."s"."""
    return ".".join(f'"{part}"' for part in schema.split("."))
