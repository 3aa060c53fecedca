"""Helpers for the verify tests: a synced pipeline table on PostgreSQL or
DuckDB, SQL on its target, and verify run through the library."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import psycopg

from conftest import PG_DSN
from e2e_kit import build_config, duckdb_target, local_storage, pg_target


class Target:
    """One test target: PostgreSQL schema or DuckDB file, with SQL on it."""

    def __init__(self, kind: str, tmp_path: Path, pg_schema: str | None) -> None:
        self.kind = kind
        self.path = tmp_path / "t.duckdb"
        self.schema = pg_schema if kind == "postgres" else "lake"
        self.config = pg_target(self.schema) if kind == "postgres" else duckdb_target(self.path)

    def sql(self, *statements: str) -> None:
        if self.kind == "postgres":
            with psycopg.connect(PG_DSN, autocommit=True) as conn:
                conn.execute(f'SET search_path = "{self.schema}"')
                for s in statements:
                    conn.execute(s)
        else:
            with duckdb.connect(str(self.path)) as conn:
                conn.execute(f'SET schema = {self.schema}')
                for s in statements:
                    conn.execute(s)


def make_target(kind: str, tmp_path: Path, request: Any) -> Target:
    return Target(kind, tmp_path, request.getfixturevalue("pg_schema") if kind == "postgres" else None)


def pipeline_config(tmp_path: Path, mysql_db: str, target: Target, tables: dict[str, Any]) -> Path:
    return build_config(tmp_path / "config", mysql_db, target.config, local_storage(tmp_path / "lake"), tables)


def verify(config_dir: Path, tables: list[str], deep: bool = False) -> dict[str, Any]:
    """{table: TableReport} through the library."""
    from lakeshift.config.loader import load_config
    from lakeshift.verify.pipeline import verify_pipeline

    cfg = load_config(str(config_dir))
    reports = verify_pipeline(cfg, cfg.pipeline("p1"), tables, deep=deep)
    return {r.table: r for r in reports}
