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


def synced(kind: str, request: Any, tmp_path: Path, mysql_db: str, cli: Any, *tables: str) -> tuple[Target, Path]:
    """A test target (kit.targets) with `tables` copied there by a full_sync pipeline: (target, config dir)."""
    from kit.targets import make_target

    tgt = make_target(kind, request, tmp_path)
    config = pipeline_config(tmp_path, mysql_db, tgt, {t: {"cdc_strategy": "full_sync"} for t in tables})
    result = cli("sync", "pipeline", "-p", "p1", *[a for t in tables for a in ("-t", t)], config_dir=config)
    assert result.exit_code == 0, result.output
    return tgt, config


def deep_finds(tgt: Target, config: Path, table: str, changes: list[str], different: list[Any]) -> None:
    """The table is equal, then after `changes` on the target `verify --deep` finds exactly the rows
    `different` (ids) changed, none missing or extra."""
    assert verify(config, [table], deep=True)[table].equal
    tamper(tgt, *changes)
    r = verify(config, [table], deep=True)[table]
    assert (r.missing, r.extra, r.different) == (0, 0, len(different)), r.examples
    assert example_ids(r, "different") == sorted(different)
