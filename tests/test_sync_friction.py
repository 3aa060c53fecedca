"""Issue 15 item 7, everyday friction of `sync` against real MariaDB -> DuckDB:
--dry-run and the final Error line name every bad table (not the first), the
summary wraps a long error instead of cutting it, --parallel N on the command
line, and --wait SECONDS for a table another run holds (saying what it waits for)."""

from __future__ import annotations

import hashlib
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from kit.cli import error_lines, one_error_line
from kit.config import build_config
from kit.lake import table_lake
from kit.source import HYBRID, create_items, insert_items
from kit.targets import duck_target

from conftest import mysql_connect

WIDE = "widgets_with_a_name_long_enough_to_wrap_in_the_summary"
BAD = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "no_such_column", "cdc_id_column": "id"}


@pytest.fixture
def setup(tmp_path: Path, mysql: Any, mysql_db: str) -> tuple[Path, Any, dict[str, Any]]:
    create_items(mysql, 10)
    create_items(mysql, 10, table="things")
    create_items(mysql, 10, table=WIDE)
    storage = {"type": "local", "path": str(tmp_path / "lake")}
    target = duck_target(tmp_path / "t.duckdb")
    tables = {"items": HYBRID, "things": {**BAD, "full_name": "things"}, "widgets": {**BAD, "full_name": WIDE}}
    return build_config(tmp_path / "config", mysql_db, target.config, storage, tables), target, storage


def _flat(text: str) -> str:
    """Table output without borders and spaces: a cell's wrapped lines join up again."""
    return re.sub(r"[\s│┃┆|]+", "", text)


def test_every_bad_table_is_named(cli, setup: tuple[Path, Any, dict[str, Any]]) -> None:
    config, target, _ = setup
    dry = cli("sync", "pipeline", "-p", "p1", "--all", "--dry-run", config_dir=config)
    line = one_error_line(dry)
    assert line.startswith("2 of 3 table(s) would fail: things: ") and "; widgets: " in line
    assert dry.stdout.count("ERROR: ") == 2 and "merge on" in dry.stdout  # the good table is still previewed

    run = cli("sync", "pipeline", "-p", "p1", "--all", config_dir=config)
    assert run.exit_code == 1
    [line] = [x[len("Error: "):] for x in error_lines(run.stderr)]
    assert line.startswith("2 table(s) failed (things, widgets); things: ")
    assert "; widgets: " in line  # each table with its own error (they name their own table)
    assert target.count("items") == 10  # the good table ran
    error = line.split("; widgets: ", 1)[1]
    assert len(error) > 120 and _flat(error) in _flat(run.stdout)  # the summary note is whole, wrapped


def test_parallel_on_the_command_line(cli, setup: tuple[Path, Any, dict[str, Any]]) -> None:
    config, target, _ = setup
    r = cli("sync", "pipeline", "-p", "p1", "-t", "items", "-t", "things", "--parallel", "2", config_dir=config)
    assert "(parallel, 2 table(s))" in r.stdout
    r = cli("sync", "pipeline", "-p", "p1", "-t", "items", "--parallel", "0", config_dir=config)
    assert r.exit_code == 2 and "--parallel" in r.stderr


def _hold_extract_lock(storage: dict[str, Any], seconds: float) -> threading.Thread:
    """Hold the table's extract lock (as another run would) for `seconds`."""
    scope = table_lake(storage, "p1", "items").uri()
    name = "lakeshift:" + hashlib.sha1(f"p1\0items\0{scope}".encode()).hexdigest()[:40]
    held = threading.Event()

    def hold() -> None:
        with mysql_connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT GET_LOCK(%s, 0)", (name,))
            held.set()
            time.sleep(seconds)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert held.wait(10)
    return thread


def test_wait_for_a_locked_table(cli, setup: tuple[Path, Any, dict[str, Any]]) -> None:
    config, target, storage = setup
    holder = _hold_extract_lock(storage, 3)
    busy = cli("sync", "pipeline", "-p", "p1", "-t", "items", config_dir=config)
    assert busy.exit_code == 1 and "another lakeshift run holds the lock" in busy.stderr
    r = cli("sync", "pipeline", "-p", "p1", "-t", "items", "--wait", "60", config_dir=config)
    assert r.exit_code == 0, r.output
    assert "p1.items: another lakeshift run holds the lock" in r.stderr and "waiting up to 60s" in r.stderr
    assert target.count("items") == 10
    holder.join()


def test_duckdb_file_held_by_another_process_says_so(cli, setup: tuple[Path, Any, dict[str, Any]]) -> None:
    import subprocess
    import sys

    config, target, _ = setup
    assert target.path is not None
    hold = "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(3)"
    holder = subprocess.Popen([sys.executable, "-c", hold, str(target.path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        r = cli("sync", "pipeline", "-p", "p1", "-t", "items", config_dir=config)
        assert r.exit_code == 0, r.output
        waits = [line for line in r.stderr.splitlines() if "is open in another process" in line]
        assert len(waits) == 1 and "waiting up to 20s for it to close" in waits[0]
    finally:
        holder.wait(30)
    assert target.count("items") == 10


def test_progress_lines_without_a_terminal() -> None:
    import logging

    from lakeshift.engine.runner import Progress

    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("lakeshift.engine")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        Progress(["items"], live=False).add("items", 10)  # the default interval: no line for a quick table
        assert not [m for m in seen if "extracting" in m]
        chatty = Progress(["items"], live=False, interval=0)
        chatty.add("items", 1500)
        chatty.add("items", 500)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    lines = [m for m in seen if "extracting" in m]
    assert len(lines) == 2 and lines[-1].startswith("items: extracting, 2,000 rows read so far (")


@pytest.fixture
def phased(tmp_path: Path, mysql: Any, mysql_db: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Any]:
    """A snapshot table and an incremental one, read 10 rows a page, a progress line for every page."""
    from lakeshift.engine.progress import Progress

    create_items(mysql, 30, table="snap")
    create_items(mysql, 30, table="items")
    with mysql.cursor() as cur:
        cur.execute("ANALYZE TABLE snap")  # the catalogue's estimate (TABLE_ROWS) is exact after it
        cur.fetchall()
    monkeypatch.setattr(Progress, "INTERVAL", 0)
    target = duck_target(tmp_path / "t.duckdb")
    tables = {"snap": {"cdc_strategy": "full_sync"}, "items": HYBRID}
    storage = {"type": "local", "path": str(tmp_path / "lake")}
    return build_config(tmp_path / "config", mysql_db, target.config, storage, tables,
                        processing={"batch_size": 10}), target


def test_progress_by_phase_without_a_terminal(cli, phased: tuple[Path, Any], mysql: Any) -> None:
    config, target = phased
    run = cli("sync", "pipeline", "-p", "p1", "--all", config_dir=config)
    assert run.exit_code == 0, run.output
    snap = [line for line in run.stderr.splitlines() if "snap: " in line]
    assert any("snap: extracting, 10 of ~30 rows read so far (33%) (" in line for line in snap), snap
    assert any("snap: extracting, 20 of ~30 rows read so far (66%) (" in line and "s left)" in line
               for line in snap), snap
    assert any(line.endswith("snap: loading batch 1 of 1 (30 rows read)") for line in snap), snap
    assert target.count("snap") == 30

    insert_items(mysql, 25)  # the next run of `items` reads its new rows only: no total known
    again = cli("sync", "pipeline", "-p", "p1", "-t", "items", config_dir=config)
    assert again.exit_code == 0, again.output
    items = [line for line in again.stderr.splitlines() if "items: extracting" in line]
    assert items and all("%" not in line and " of ~" not in line and "left" not in line for line in items), items
    assert any("items: extracting, 20 rows read so far (" in line for line in items), items
    assert target.count("items") == 55


def test_progress_bar_on_a_terminal() -> None:
    import io

    from rich.console import Console

    from lakeshift.engine.dag import Outcome
    from lakeshift.engine.progress import Progress

    def shown(*steps: tuple[str, str, Any]) -> str:
        out = io.StringIO()
        bar = Progress(["snap", "items"], live=True,
                       console=Console(file=out, force_terminal=True, width=180, color_system=None))
        with bar:  # its last frame is drawn when it stops
            for table, what, arg in steps:
                reporter = bar.table(table)
                if what == "failed":
                    bar.done(Outcome(table, "failed", error=RuntimeError("boom")))
                else:
                    reporter.rows(arg) if what == "rows" else reporter.phase(what, **arg)
        return out.getvalue()

    extract = shown(("snap", "extract", {"total": 1_000_000}), ("snap", "rows", 250_000),
                    ("items", "extract", {}), ("items", "rows", 1_234))
    assert "250,000 of ~1,000,000 rows" in extract and " 25% " in extract and "1,234 rows" in extract
    load = shown(("snap", "extract", {"total": 1_000_000}), ("snap", "rows", 250_000),
                 ("snap", "load", {"note": "batch 1 of 2"}))
    assert "snap load batch 1 of 2" in load and "250,000 rows" in load and "%" not in load
    failed = shown(("snap", "extract", {"total": 1_000_000}), ("snap", "rows", 250_000), ("snap", "failed", None))
    assert "snap failed" in failed and "%" not in failed
