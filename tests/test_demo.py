"""The README's first command: `lakeshift demo` syncs the sample shop into
DuckDB twice and the counts match MySQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import mysql_connect, unique


def test_demo_full_then_incremental(cli: Any, tmp_path: Path) -> None:
    database = unique("ls_demo")
    try:
        result = cli("demo", "--workdir", str(tmp_path / "demo"), "--database", database)
        assert result.exit_code == 0, result.output + result.stderr
        out = result.output
        assert "3. Full sync" in out and "5. Incremental sync" in out
        assert out.count(" equal") == 3 and "DIFFERENT" not in out
        assert (tmp_path / "demo" / "shop.duckdb").is_file()
    finally:
        with mysql_connect() as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
