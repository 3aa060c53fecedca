"""Helpers for the verify tests: a pipeline on a test target (kit.targets'
Target), SQL that tampers with the target, and verify run through the library."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import psycopg
from kit.config import build_config
from kit.lake import local_storage
from kit.targets import Target

from conftest import PG_DSN


def tamper(tgt: Target, *statements: str) -> None:
    """Run statements on the target, with the table's schema as the default one."""
    if tgt.kind == "postgres":
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'SET search_path = "{tgt.schema}"')
            for s in statements:
                conn.execute(s)
        return
    with duckdb.connect(str(tgt.path)) as conn:
        conn.execute(f"SET schema = '{tgt.schema}'")
        for s in statements:
            conn.execute(s)


def pipeline_config(tmp_path: Path, mysql_db: str, tgt: Target, tables: dict[str, Any]) -> Path:
    return build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(tmp_path / "lake"), tables)


def verify(config_dir: Path, tables: list[str], deep: bool = False, repair: bool = False) -> dict[str, Any]:
    """{table: TableReport} through the library."""
    from lakeshift.config.loader import load_config
    from lakeshift.verify.pipeline import verify_pipeline

    cfg = load_config(str(config_dir))
    return {r.table: r for r in verify_pipeline(cfg, cfg.pipeline("p1"), tables, deep=deep, repair=repair)}


def example_ids(report: Any, kind: str, column: str = "id") -> list[Any]:
    return sorted(k[column] for k in report.examples.get(kind, []))
