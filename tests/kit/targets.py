"""`Target`: the one handle tests have on a target, a PostgreSQL schema (on the
shared server or a throwaway cluster) or a DuckDB file. It gives the config
entry (`config`), the config model and a loader (`model`, `open`), and reads
(`query`, `rows`, `count`, `loads`, `runs`) that close their connection."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import psycopg

from conftest import PG_DSN
from kit.source import ITEMS, norm


def pg_config(schema: str | None = None, port: int = 5432, **extra: Any) -> dict[str, Any]:
    """A `connections.targets` entry for the test PostgreSQL (database `test`)."""
    base = {"type": "postgres", "host": "127.0.0.1", "port": port, "database": "test", "username": "postgres"}
    return {**base, **({"schema": schema} if schema is not None else {}), **extra}


def duckdb_config(path: Path, schema: str = "lake") -> dict[str, Any]:
    return {"type": "duckdb", "path": str(path), "schema": schema}


def qualify(schema: str) -> str:
    """'s' -> "s"; 'catalog.s' -> "catalog"."s"."""
    return ".".join(f'"{part}"' for part in schema.split("."))


@dataclass
class Target:
    kind: str  # postgres | duckdb
    config: dict[str, Any]
    schema: str
    path: Path | None = None  # DuckDB
    dsn: str = PG_DSN  # PostgreSQL
    # DuckDB: read-only connections coexist with other processes' readers; a
    # test whose loader holds the file in this process needs the loader's mode
    read_only: bool = True

    # ---- the loader under test

    def model(self) -> Any:
        """The validated config model (PostgresTarget / DuckDBTarget)."""
        from lakeshift.config.models import DuckDBTarget, PostgresTarget

        return (PostgresTarget if self.kind == "postgres" else DuckDBTarget)(**self.config)

    def open(self, **kw: Any) -> Any:
        """The target's loader, as the engine opens it."""
        from lakeshift.config.models import ConnectionSettings
        from lakeshift.load import open_target

        return open_target(self.model(), ConnectionSettings(), **kw)

    # ---- reads

    def connect(self) -> Any:
        """A new connection of the test's own (the caller closes it)."""
        if self.kind == "postgres":
            return psycopg.connect(self.dsn, autocommit=True)
        assert self.path is not None
        return duckdb.connect(str(self.path), read_only=self.read_only)

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        conn = self.connect()
        try:
            return [tuple(r) for r in conn.execute(sql, params).fetchall()]
        finally:
            conn.close()

    def name(self, table: str) -> str:
        return f'{qualify(self.schema)}."{table}"'

    def exists(self, table: str) -> bool:
        if self.kind == "duckdb" and (self.path is None or not self.path.exists()):
            return False
        schema = self.schema.split(".")[-1]
        return bool(self.query("SELECT 1 FROM information_schema.tables WHERE table_schema = "
                               f"'{schema}' AND table_name = '{table}'"))

    def rows(self, table: str = "items", columns: list[str] = ITEMS, order_by: str = "id") -> list[tuple[Any, ...]]:
        """Every row, values normalised across drivers; [] while the table does not exist."""
        if not self.exists(table):
            return []
        return [tuple(norm(v) for v in r) for r in self.raw_rows(table, columns, order_by)]

    def raw_rows(self, table: str, columns: list[str], order_by: str) -> list[tuple[Any, ...]]:
        """The driver's own values, not normalised (decimals keep their scale)."""
        cols = ", ".join(f'"{c}"' for c in columns)
        return self.query(f"SELECT {cols} FROM {self.name(table)} ORDER BY {order_by}")

    def count(self, table: str = "items", distinct: str | None = None) -> int:
        what = f"COUNT(DISTINCT {distinct})" if distinct else "COUNT(*)"
        return int(self.query(f"SELECT {what} FROM {self.name(table)}")[0][0])

    def loads(self, pipeline: str | None = None, table: str | None = None) -> list[tuple[str, int]]:
        """(batch_id, rows) of every batch recorded as loaded (of `pipeline`/`table` if given), oldest first."""
        if not self.exists("_lakeshift_loads"):
            return []
        where = [f'"{col}" = \'{value}\'' for col, value in (("pipeline", pipeline), ("table_name", table)) if value]
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        return [(r[0], int(r[1])) for r in self.query(
            f'SELECT "batch_id", "rows" FROM {self.name("_lakeshift_loads")}{clause} ORDER BY "batch_id"')]

    def runs(self) -> list[tuple[Any, ...]]:
        """(status, rows_extracted, rows_loaded, error) of every run, oldest first."""
        return self.query(f'SELECT "status", "rows_extracted", "rows_loaded", "error" FROM {self.name("_lakeshift_runs")} '
                          'ORDER BY "started_at", "finished_at"')

    def staging_tables(self) -> list[str]:
        """PostgreSQL staging tables left in the schema (DuckDB stages in TEMP tables)."""
        if self.kind != "postgres":
            return []
        return [r[0] for r in self.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_name LIKE '\\_ls\\_stage\\_%%'",
            (self.schema,))]


def pg_target(schema: str, port: int = 5432, **extra: Any) -> Target:
    """A schema on the shared PostgreSQL (or, with `port`, a throwaway cluster's); `extra`: more config keys."""
    return Target("postgres", pg_config(schema, port, **extra), schema,
                  dsn=f"host=127.0.0.1 port={port} user=postgres dbname=test")


def duck_target(path: Path, schema: str = "lake", read_only: bool = True) -> Target:
    return Target("duckdb", duckdb_config(path, schema), schema, path=path, read_only=read_only)


def make_target(kind: str, request: Any, tmp_path: Path, name: str = "target", duck_schema: str = "lake") -> Target:
    """`kind` of a parametrised test: a fresh schema (fixture `pg_schema`) or a DuckDB file in `tmp_path`."""
    if kind == "postgres":
        return pg_target(request.getfixturevalue("pg_schema"))
    return duck_target(tmp_path / f"{name}.duckdb", duck_schema)
