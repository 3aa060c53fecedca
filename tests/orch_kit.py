"""A pipeline of five tables with dependencies for the orchestrator suites
(test_dagster_assets.py, test_airflow_dag.py, test_sync_api.py):
a; b and c after a; d after b and c; e alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kit.checks import assert_loaded_once, assert_mirrors
from kit.config import build_config
from kit.source import HYBRID, create_items
from kit.targets import Target

DEPS: dict[str, list[str]] = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": []}
ROWS = {"a": 40, "b": 30, "c": 20, "d": 10, "e": 25}


def five_tables(mysql: Any, mysql_db: str, root: Path, target: Target, storage: dict[str, Any],
                max_connections: int = 5, **table_extra: dict[str, Any]) -> Path:
    """The five source tables and a config folder (pipeline p1) loading them into `target`."""
    for name, n in ROWS.items():
        create_items(mysql, n, table=name, name=name)
    tables = {name: {**HYBRID, "depends_on": deps, **table_extra.get(name, {})} for name, deps in DEPS.items()}
    config = build_config(root, mysql_db, target.config, storage, tables)
    from kit.config import set_source

    set_source(config, connection_pool={"retry_attempts": 1, "max_connections": max_connections})
    return config


def assert_all_mirrored(target: Target, mysql_db: str, storage: dict[str, Any], tables: Any = DEPS) -> None:
    for name in tables:
        assert_mirrors(target, mysql_db, table=name)
        assert_loaded_once(target, storage, table=name)
